"""Webhooks, sms and audiences against a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from nudge.connectors.audiences import (
    AudienceConnector,
    hashed_identifiers,
    normalize_email,
    normalize_phone,
)
from nudge.connectors.base import PermanentError, RetryableError
from nudge.connectors.dispatch import Dispatcher, RetryPolicy
from nudge.connectors.ledger import MemoryLedger
from nudge.connectors.sms import SmsConnector
from nudge.connectors.templates import TemplateError, Templates
from nudge.connectors.webhook import WebhookConnector, sign, verify_signature

SECRET = "webhook-secret-for-tests"
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0) as client:
        yield client


def webhook(client: httpx.AsyncClient, url: str) -> WebhookConnector:
    return WebhookConnector(client, {"crm": f"{url}/hooks/crm"}, SECRET)


# ---------------------------------------------------------------------------- webhooks


async def test_webhook_body_is_the_action_signed(
    http_server: Any, client: httpx.AsyncClient, make_action: Callable[..., dict[str, Any]]
) -> None:
    action = make_action("webhook")
    outcome = await webhook(client, http_server.url).deliver(action)
    assert outcome.status == "sent"
    assert outcome.provider_id == "m-1"
    [request] = http_server.received
    assert (request.method, request.path) == ("POST", "/hooks/crm")
    assert orjson.loads(request.body) == action
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == action["id"]
    # What a receiver does: recompute over the raw body and the timestamp header.
    timestamp = request.headers["X-Nudge-Timestamp"]
    signature = request.headers["X-Nudge-Signature"]
    assert signature.startswith("sha256=")
    assert verify_signature(SECRET, request.body, timestamp, signature)
    assert not verify_signature("wrong-secret", request.body, timestamp, signature)
    assert not verify_signature(SECRET, request.body + b" ", timestamp, signature)
    assert not verify_signature(SECRET, request.body, str(int(timestamp) + 1), signature)
    assert not verify_signature(
        SECRET, request.body, timestamp, signature, now=int(timestamp) + 3600
    )


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":"a-1"}'
    digest = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, "1700000000", body) == f"sha256={digest}"


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
async def test_webhook_server_errors_are_retryable(
    http_server: Any, client: httpx.AsyncClient, make_action: Callable[..., dict[str, Any]],
    status: int,
) -> None:  # fmt: skip
    http_server.respond(status, "busy", headers={"Retry-After": "7"})
    with pytest.raises(RetryableError, match=f"HTTP {status}") as caught:
        await webhook(client, http_server.url).deliver(make_action("webhook"))
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422, 301])
async def test_webhook_client_errors_are_permanent(
    http_server: Any, client: httpx.AsyncClient, make_action: Callable[..., dict[str, Any]],
    status: int,
) -> None:  # fmt: skip
    http_server.respond(status, "no")
    with pytest.raises(PermanentError, match=f"HTTP {status}"):
        await webhook(client, http_server.url).deliver(make_action("webhook"))


async def test_webhook_timeouts_and_refusals_are_retryable(
    http_server: Any, closed_port: int, make_action: Callable[..., dict[str, Any]]
) -> None:
    http_server.respond(200, delay=2.0)
    async with httpx.AsyncClient(timeout=0.2) as quick:
        with pytest.raises(RetryableError, match="timed out"):
            await webhook(quick, http_server.url).deliver(make_action("webhook"))
        with pytest.raises(RetryableError, match="ConnectError"):
            await webhook(quick, f"http://127.0.0.1:{closed_port}").deliver(make_action("webhook"))


async def test_unknown_webhook_name_is_permanent(
    http_server: Any, client: httpx.AsyncClient, make_action: Callable[..., dict[str, Any]]
) -> None:
    with pytest.raises(PermanentError, match="no endpoint configured for webhook `erp`"):
        await webhook(client, http_server.url).deliver(make_action("webhook", name="erp"))
    assert http_server.received == []


async def test_dispatcher_retries_a_webhook_then_reports_delivery(
    http_server: Any, client: httpx.AsyncClient, make_action: Callable[..., dict[str, Any]],
    clock: Any, events: Any,
) -> None:  # fmt: skip
    http_server.respond(503)
    http_server.respond(500)
    d = Dispatcher(
        {"webhook": webhook(client, http_server.url)},
        MemoryLedger(),
        RetryPolicy(max_attempts=3),
        events,
        clock=clock,
    )
    outcome = await d.deliver(make_action("webhook"))
    assert outcome is not None and outcome.status == "sent"
    assert len(http_server.received) == 3
    assert len({r.headers["Idempotency-Key"] for r in http_server.received}) == 1
    assert events.names() == ["webhook_delivered"]
    assert events.items[0]["properties"]["name"] == "crm"


# ---------------------------------------------------------------------------- sms


async def test_sms_posts_the_rendered_text(
    http_server: Any, client: httpx.AsyncClient, make_action: Callable[..., dict[str, Any]]
) -> None:
    sms = SmsConnector(
        client, f"{http_server.url}/v1/messages", Templates(TEMPLATES), token="tok", sender="Shop"
    )
    action = make_action("sms")
    outcome = await sms.deliver(action)
    assert (outcome.status, outcome.provider_id) == ("sent", "m-1")
    [request] = http_server.received
    assert request.path == "/v1/messages"
    assert request.headers["Authorization"] == "Bearer tok"
    body = orjson.loads(request.body)
    assert body["to"] == "+46701234567"
    assert body["from"] == "Shop"
    assert body["reference"] == action["id"]
    assert body["body"].startswith("Hi Ann, your cart is saved: https://shop.example/cart?id=k1")


async def test_sms_failures(
    http_server: Any, client: httpx.AsyncClient, make_action: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:  # fmt: skip
    sms = SmsConnector(client, http_server.url, Templates(TEMPLATES))
    http_server.respond(503)
    with pytest.raises(RetryableError):
        await sms.deliver(make_action("sms"))
    http_server.respond(400, "invalid number")
    with pytest.raises(PermanentError, match="invalid number"):
        await sms.deliver(make_action("sms"))
    with pytest.raises(PermanentError, match="no phone number"):
        await sms.deliver(make_action("sms", to=None))
    with pytest.raises(TemplateError):
        await SmsConnector(client, http_server.url, Templates(tmp_path)).deliver(make_action("sms"))
    assert len(http_server.received) == 2


# ---------------------------------------------------------------------------- audiences


def test_identifiers_are_normalised() -> None:
    assert normalize_email("  Ann.Andersson@Example.SE ") == "ann.andersson@example.se"
    assert normalize_email("not-an-email") is None
    assert normalize_phone("+46 (0)70-123 45 67") == "46701234567"
    assert normalize_phone("+46 70-123 45 67") == "46701234567"
    assert normalize_phone("0046 70 123 45 67") == "46701234567"
    assert normalize_phone("070-123 45 67") is None  # national format: country unknown
    assert normalize_phone("+1 (555) 010-9999") == "15550109999"
    assert normalize_phone(None) is None
    assert hashed_identifiers({"email": " ANN@example.se", "phone": "+46701234567"}) == {
        "email_sha256": hashlib.sha256(b"ann@example.se").hexdigest(),
        "phone_sha256": hashlib.sha256(b"46701234567").hexdigest(),
    }


@pytest.mark.parametrize("kind", ["audience_add", "audience_remove"])
async def test_audience_requests_carry_only_hashes(
    http_server: Any, client: httpx.AsyncClient, make_action: Callable[..., dict[str, Any]],
    kind: str,
) -> None:  # fmt: skip
    audiences = AudienceConnector(client, f"{http_server.url}/api/", token="ads-token")
    contact = {"email": "Ann@Example.se", "phone": "+46 70 123 45 67", "first_name": "Ann"}
    action = make_action(kind, contact=contact)
    assert (await audiences.deliver(action)).status == "sent"
    [request] = http_server.received
    operation = "add" if kind == "audience_add" else "remove"
    assert request.path == f"/api/audiences/cart_abandoners/{operation}"
    assert request.headers["Authorization"] == "Bearer ads-token"
    body = orjson.loads(request.body)
    assert body == {
        "members": [
            {
                "email_sha256": hashlib.sha256(b"ann@example.se").hexdigest(),
                "phone_sha256": hashlib.sha256(b"46701234567").hexdigest(),
            }
        ],
        "action_id": action["id"],
    }
    assert b"@" not in request.body
    assert b"Ann" not in request.body


async def test_audience_without_identifiers_is_permanent(
    http_server: Any, client: httpx.AsyncClient, make_action: Callable[..., dict[str, Any]]
) -> None:
    audiences = AudienceConnector(client, http_server.url)
    with pytest.raises(PermanentError, match="no email or international phone"):
        await audiences.deliver(make_action("audience_add", contact={"phone": "0701234567"}))
    assert http_server.received == []
