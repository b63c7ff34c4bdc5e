"""build_dispatcher: unconfigured channels go to the outbox; configured ones to real servers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
import structlog.testing
from structlog.testing import capture_logs

from nudge.config import ConfigError, Settings
from nudge.connectors import build_dispatcher
from nudge.connectors.build import DEV_TRACKING_SECRET
from nudge.connectors.content import MemoryContentStore
from nudge.connectors.ledger import RedisLedger
from nudge.connectors.tracking import verify_token
from nudge.connectors.webhook import verify_signature

TEMPLATES = str(Path(__file__).resolve().parents[2] / "templates")


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_unconfigured_channels_write_to_the_outbox(
    tmp_path: Path, make_action: Callable[..., dict[str, Any]], events: Any
) -> None:
    settings = Settings(outbox=str(tmp_path / "outbox"), templates=TEMPLATES)
    content = MemoryContentStore()
    with capture_logs() as logs:
        dispatcher = build_dispatcher(settings, on_outcome=events, content_store=content)
    warned = {
        entry["channel"]: entry["enable_with"]
        for entry in logs
        if entry["event"] == "delivery.outbox"
    }
    assert warned == {
        "email": "NUDGE_SMTP_URL (`smtp_url` in nudge.toml)",
        "sms": "NUDGE_SMS_URL (`sms_url` in nudge.toml)",
        "webhook": "NUDGE_WEBHOOKS (`webhooks` in nudge.toml)",
        "audience": "NUDGE_AUDIENCE_URL (`audience_url` in nudge.toml)",
    }
    email, sms = make_action("email"), make_action("sms")
    for action in (
        email,
        sms,
        make_action("webhook"),
        make_action("audience_add"),
        make_action("show"),
    ):
        outcome = await dispatcher.deliver(action)
        assert outcome is not None and outcome.status == "sent", outcome
    await dispatcher.aclose()

    [line] = read_lines(tmp_path / "outbox" / "email.jsonl")
    assert line["action"] == email
    rendered = line["rendered"]
    assert rendered["subject"] == "Ann, you left something in your cart"
    assert rendered["to"] == "ann@example.se"
    assert "/t/c/" in rendered["html"]
    assert "https://shop.example/cart?id=k1" in rendered["text"]
    token = rendered["list_unsubscribe"].strip("<>").rsplit("/", 1)[1]
    assert verify_token(DEV_TRACKING_SECRET, token, "unsubscribe")

    [sms_line] = read_lines(tmp_path / "outbox" / "sms.jsonl")
    assert sms_line["rendered"]["body"].startswith("Hi Ann, your cart is saved")
    assert sms_line["action"] == sms
    [audience] = read_lines(tmp_path / "outbox" / "audience.jsonl")
    assert (
        audience["rendered"]["members"][0]["email_sha256"]
        == hashlib.sha256(b"ann@example.se").hexdigest()
    )
    assert len(read_lines(tmp_path / "outbox" / "webhook.jsonl")) == 1
    assert await content.slots(make_action("show")["contact_id"]) == {}
    assert events.names() == [
        "email_sent",
        "sms_sent",
        "webhook_delivered",
        "audience_added",
        "content_shown",
    ]


async def test_a_missing_template_fails_in_the_outbox_too(
    tmp_path: Path, make_action: Callable[..., dict[str, Any]], dead_letters: Any
) -> None:
    settings = Settings(outbox=str(tmp_path), templates=str(tmp_path / "none"))
    with structlog.testing.capture_logs() as logs:
        dispatcher = build_dispatcher(settings, on_dead_letter=dead_letters)
    # said at the start, not only by every failed email
    assert [x["path"] for x in logs if x["event"] == "delivery.no_templates"] == [
        str(tmp_path / "none")
    ]
    outcome = await dispatcher.deliver(make_action("email"))
    assert outcome is not None and outcome.status == "failed"
    [line] = read_lines(tmp_path / "email.jsonl")
    assert "missing template file" in line["render_error"]
    assert "missing template file" in dead_letters.items[0]["reason"]
    await dispatcher.aclose()


@pytest.mark.redis
async def test_configured_channels_deliver_for_real(  # noqa: PLR0917
    tmp_path: Path, mail_server: Any, http_server: Any, redis_url: str,
    make_action: Callable[..., dict[str, Any]], events: Any,
) -> None:  # fmt: skip
    settings = Settings(
        templates=TEMPLATES,
        outbox=str(tmp_path / "outbox"),
        redis_url=redis_url,
        smtp_url=mail_server.url(),
        smtp_from="Shop <hello@shop.example>",
        smtp_starttls="off",
        tracking_url="https://t.shop.example",
        tracking_secret="ts",
        sms_url=f"{http_server.url}/sms",
        webhooks={"crm": f"{http_server.url}/crm"},
        webhook_secret="ws",
        audience_url=f"{http_server.url}/ads",
    )
    dispatcher = build_dispatcher(settings, on_outcome=events)
    assert isinstance(dispatcher.ledger, RedisLedger)
    actions = [make_action(kind) for kind in ("email", "sms", "webhook", "audience_remove", "show")]
    for action in actions:
        await dispatcher.deliver(action)
    for action in actions:  # again: nothing is sent twice
        await dispatcher.deliver(action)
    await dispatcher.aclose()

    [message] = mail_server.messages
    assert message["X-Nudge-Action"] == actions[0]["id"]
    assert [r.path for r in http_server.received] == [
        "/sms",
        "/crm",
        "/ads/audiences/cart_abandoners/remove",
    ]
    hook = http_server.received[1]
    assert verify_signature(
        "ws", hook.body, hook.headers["X-Nudge-Timestamp"], hook.headers["X-Nudge-Signature"]
    )
    assert not (tmp_path / "outbox").exists()
    assert events.names()[:5] == [
        "email_sent",
        "sms_sent",
        "webhook_delivered",
        "audience_removed",
        "content_shown",
    ]
    assert events.items[:5] == events.items[5:]  # replayed from the ledger, not re-sent


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            Settings(smtp_url="smtp://localhost", smtp_from="a@b.example"),
            "tracking_secret is required",
        ),
        (Settings(smtp_url="smtp://localhost", tracking_secret="x"), "smtp_from is required"),
        (Settings(webhooks={"crm": "https://crm.example/"}), "webhook_secret is required"),
    ],
)
def test_incomplete_channel_settings_are_refused(settings: Settings, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_dispatcher(settings)


def test_exported_names_exist() -> None:
    import importlib

    import nudge.connectors

    modules = ["audiences", "base", "build", "content", "dispatch", "email", "ledger"]
    modules += ["outbox", "sms", "templates", "tracking", "webhook"]
    for module in [
        nudge.connectors,
        *(importlib.import_module(f"nudge.connectors.{m}") for m in modules),
    ]:
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, f"{module.__name__} exports missing names {missing}"
