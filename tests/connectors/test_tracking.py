"""Tracking: signed tokens, link rewriting, and the open/click/unsubscribe endpoints."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp import test_utils, web

from nudge.connectors.tracking import (
    PIXEL_GIF,
    InvalidToken,
    TokenClaims,
    Tracker,
    add_tracking_routes,
    sign_token,
    verify_token,
)

SECRET = "tracking-secret-for-tests"
BASE = "https://t.shop.example"
NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def path_of(url: str) -> str:
    assert url.startswith(BASE)
    return url[len(BASE) :]


@pytest.fixture
def action(make_action: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return make_action("email")


@pytest.fixture
def tracker() -> Tracker:
    return Tracker(SECRET, BASE + "/")


class Emitted:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail = False

    async def __call__(self, event: dict[str, Any]) -> None:
        if self.fail:
            raise ConnectionError("events topic unavailable")
        self.events.append(event)


@pytest.fixture
def emitted() -> Emitted:
    return Emitted()


@pytest.fixture
async def client(emitted: Emitted) -> AsyncIterator[test_utils.TestClient[Any, Any]]:
    app = web.Application()
    add_tracking_routes(app, SECRET, emitted, clock=lambda: NOW)
    async with test_utils.TestClient(test_utils.TestServer(app)) as client:
        yield client


# ---------------------------------------------------------------------------- tokens


def test_tokens_round_trip() -> None:
    claims = TokenClaims("click", "a-1", "c-1", "r", "https://shop.example/x?y=1")
    assert verify_token(SECRET, sign_token(SECRET, claims), "click") == claims
    opened = TokenClaims("open", "a-1", "c-1", "r")
    assert verify_token(SECRET.encode(), sign_token(SECRET, opened), "open") == opened


def test_forged_or_altered_tokens_are_rejected() -> None:
    token = sign_token(SECRET, TokenClaims("click", "a-1", "c-1", "r", "https://shop.example/"))
    payload, mac = token.split(".")
    evil = b64(orjson.dumps(["c", "a-1", "c-1", "r", "https://evil.example/"]))
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    for bad in (
        f"{evil}.{mac}",  # payload swapped, MAC kept
        f"{payload}.{flipped}",  # MAC altered
        sign_token("another-secret", TokenClaims("click", "a-1", "c-1", "r", "https://x.example/")),
        payload,
        "",
        "a.b.c",
        "!!!.???",
        "x" * 5000,
    ):
        with pytest.raises(InvalidToken):
            verify_token(SECRET, bad, "click")


def test_a_token_of_one_kind_is_not_another() -> None:
    token = sign_token(SECRET, TokenClaims("open", "a-1", "c-1", "r"))
    with pytest.raises(InvalidToken, match="not a unsubscribe token"):
        verify_token(SECRET, token, "unsubscribe")


def test_click_tokens_only_carry_web_urls() -> None:
    with pytest.raises(ValueError):
        sign_token(SECRET, TokenClaims("click", "a", "c", "r", "javascript:alert(1)"))


# ---------------------------------------------------------------------------- rewriting


def test_links_are_rewritten_and_a_pixel_appended(tracker: Tracker, action: dict[str, Any]) -> None:
    html = (
        "<html><body>"
        '<a href="https://shop.example/cart?a=1&amp;b=2">Cart</a>'
        "<A class='x' HREF='http://shop.example/other'>Other</A>"
        '<a href="mailto:help@shop.example">Mail</a>'
        '<a data-nudge-notrack href="https://shop.example/private">Private</a>'
        f'<a href="{tracker.unsubscribe_url(action)}">Unsubscribe</a>'
        "</body></html>"
    )
    out = tracker.rewrite_html(html, action)
    hrefs = re.findall(r"""href=["']([^"']*)["']""", out, re.IGNORECASE)
    clicks = [h for h in hrefs if h.startswith(BASE + "/t/c/")]
    targets = [verify_token(SECRET, c.rsplit("/", 1)[1], "click").url for c in clicks]
    assert targets == ["https://shop.example/cart?a=1&b=2", "http://shop.example/other"]
    assert "mailto:help@shop.example" in hrefs
    assert "https://shop.example/private" in hrefs
    assert tracker.unsubscribe_url(action) in hrefs
    pixel = re.search(r'<img src="([^"]+)"[^>]*></body>', out)
    assert pixel is not None
    claims = verify_token(SECRET, pixel.group(1).rsplit("/", 1)[1], "open")
    assert (claims.action_id, claims.contact_id, claims.rule) == (
        action["id"],
        action["contact_id"],
        action["rule"],
    )


def test_pixel_goes_at_the_end_without_a_body(tracker: Tracker, action: dict[str, Any]) -> None:
    out = tracker.rewrite_html("<p>hi</p>", action)
    assert out.startswith("<p>hi</p><img src=")


# ---------------------------------------------------------------------------- endpoints


async def test_open_pixel_emits_email_opened(
    client: test_utils.TestClient[Any, Any],
    tracker: Tracker,
    action: dict[str, Any],
    emitted: Emitted,
) -> None:
    url = path_of(tracker.open_url(action))
    for _ in range(2):
        response = await client.get(url)
        assert response.status == 200
        assert response.content_type == "image/gif"
        assert await response.read() == PIXEL_GIF
    first, second = emitted.events
    assert first == second  # the same open twice is one event id: processed once
    assert first == {
        "id": f"{action['id']}.email_opened",
        "event": "email_opened",
        "contact_id": action["contact_id"],
        "timestamp": "2026-11-20T12:30:00Z",
        "properties": {"action_id": action["id"], "rule": action["rule"]},
    }


async def test_click_redirects_to_the_signed_url_and_emits(
    client: test_utils.TestClient[Any, Any],
    tracker: Tracker,
    action: dict[str, Any],
    emitted: Emitted,
) -> None:
    target = "https://shop.example/cart?id=k1&utm_source=nudge"
    response = await client.get(path_of(tracker.click_url(action, target)), allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == target
    [event] = emitted.events
    assert event["event"] == "email_clicked"
    assert event["properties"]["url"] == target
    assert event["contact_id"] == action["contact_id"]
    other = await client.get(
        path_of(tracker.click_url(action, "https://shop.example/other")), allow_redirects=False
    )
    assert other.status == 302
    assert emitted.events[1]["id"] != event["id"]  # another link, another event


async def test_click_with_an_altered_url_is_refused(
    client: test_utils.TestClient[Any, Any],
    tracker: Tracker,
    action: dict[str, Any],
    emitted: Emitted,
) -> None:
    token = tracker.click_url(action, "https://shop.example/").rsplit("/", 1)[1]
    _, mac = token.split(".")
    evil = b64(
        orjson.dumps(
            ["c", action["id"], action["contact_id"], action["rule"], "https://evil.example/"]
        )
    )
    for path in (
        f"/t/c/{evil}.{mac}",
        "/t/c/garbage",
        f"/t/c/{token}x",
        path_of(tracker.open_url(action)).replace("/t/o/", "/t/c/"),
    ):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 403, path
        assert "Location" not in response.headers
    assert emitted.events == []


async def test_head_requests_do_not_count(
    client: test_utils.TestClient[Any, Any],
    tracker: Tracker,
    action: dict[str, Any],
    emitted: Emitted,
) -> None:
    response = await client.head(
        path_of(tracker.click_url(action, "https://shop.example/")), allow_redirects=False
    )
    assert response.status == 302
    assert (await client.head(path_of(tracker.open_url(action)))).status == 200
    assert emitted.events == []


async def test_unsubscribe_page_then_confirm(
    client: test_utils.TestClient[Any, Any],
    tracker: Tracker,
    action: dict[str, Any],
    emitted: Emitted,
) -> None:
    path = path_of(tracker.unsubscribe_url(action))
    page = await client.get(path)
    assert page.status == 200
    assert '<form method="post">' in await page.text()
    assert emitted.events == []
    confirmed = await client.post(path)
    assert confirmed.status == 200
    [event] = emitted.events
    assert event["event"] == "unsubscribed"
    assert event["id"] == f"{action['id']}.unsubscribed"
    assert event["contact_id"] == action["contact_id"]
    assert event["properties"]["method"] == "page"


async def test_one_click_unsubscribe(
    client: test_utils.TestClient[Any, Any],
    tracker: Tracker,
    action: dict[str, Any],
    emitted: Emitted,
) -> None:
    response = await client.post(
        path_of(tracker.unsubscribe_url(action)), data={"List-Unsubscribe": "One-Click"}
    )
    assert response.status == 200
    assert emitted.events[0]["properties"]["method"] == "one_click"


async def test_forged_unsubscribe_is_refused(
    client: test_utils.TestClient[Any, Any],
    tracker: Tracker,
    action: dict[str, Any],
    emitted: Emitted,
) -> None:
    opened = path_of(tracker.open_url(action)).replace("/t/o/", "/t/u/")
    for path in (opened, "/t/u/abc.def"):
        assert (await client.get(path)).status == 403
        assert (await client.post(path)).status == 403
    assert emitted.events == []


async def test_unsubscribe_asks_to_retry_when_it_cannot_be_recorded(
    client: test_utils.TestClient[Any, Any],
    tracker: Tracker,
    action: dict[str, Any],
    emitted: Emitted,
) -> None:
    emitted.fail = True
    response = await client.post(path_of(tracker.unsubscribe_url(action)))
    assert response.status == 503
    # Opens and clicks still answer when events cannot be emitted.
    assert (await client.get(path_of(tracker.open_url(action)))).status == 200
