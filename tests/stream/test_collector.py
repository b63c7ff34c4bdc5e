"""The HTTP collector through aiohttp's test client, with an in-memory sink."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from nudge.connectors.content import MemoryContentStore
from nudge.connectors.tracking import TokenClaims, sign_token
from nudge.engine.collector import MAX_ERRORS_SHOWN, build_collector
from nudge.engine.events import MAX_EVENT_BYTES, Event, Rejected
from nudge.engine.sink import MemorySink

NOW = 1_795_000_000.0


def event(n: int = 1, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": f"evt-{n}",
        "event": "cart_updated",
        "contact_id": "c-42",
        "timestamp": "2026-11-20T10:00:00Z",
        "properties": {"cart_id": "k1", "value": 120.5},
    }
    base.update(changes)
    return base


async def client_for(app: web.Application) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
async def client(sink: MemorySink) -> AsyncIterator[TestClient[Any, Any]]:
    c = await client_for(build_collector(sink, clock=lambda: NOW))
    yield c
    await c.close()


async def post(client: TestClient[Any, Any], path: str, body: bytes) -> tuple[int, Any]:
    response = await client.post(path, data=body)
    return response.status, await response.json()


async def test_one_event_object(client: TestClient[Any, Any], sink: MemorySink) -> None:
    status, body = await post(client, "/v1/events", orjson.dumps(event()))
    assert status == 200
    assert body == {"success": True, "accepted": 1, "rejected": 0, "errors": []}
    assert [e.id for e in sink.events] == ["evt-1"]
    assert sink.events[0].properties == {"cart_id": "k1", "value": 120.5}


async def test_array_and_json_lines_keep_order(
    client: TestClient[Any, Any], sink: MemorySink
) -> None:
    status, _ = await post(client, "/v1/events", orjson.dumps([event(1), event(2)]))
    assert status == 200
    lines = b"\n".join(orjson.dumps(event(n)) for n in (3, 4, 5)) + b"\n"
    status, body = await post(client, "/v1/events", lines)
    assert status == 200
    assert body["accepted"] == 3
    assert [e.id for e in sink.events] == ["evt-1", "evt-2", "evt-3", "evt-4", "evt-5"]


async def test_some_bad_is_200_with_reasons_and_dead_letters(
    client: TestClient[Any, Any], sink: MemorySink
) -> None:
    items = [event(1), event(2, timestamp="yesterday"), {"id": "x"}, event(3)]
    status, body = await post(client, "/v1/events", orjson.dumps(items))
    assert status == 200
    assert body["accepted"] == 2 and body["rejected"] == 2
    assert [(e["index"], e["reason"]) for e in body["errors"]] == [
        (1, "bad_timestamp"),
        (2, "missing_field"),
    ]
    assert [e.id for e in sink.events] == ["evt-1", "evt-3"]
    assert [r.reason for r in sink.rejected] == ["bad_timestamp", "missing_field"]
    assert orjson.loads(sink.rejected[0].raw)["timestamp"] == "yesterday"


async def test_all_bad_is_400(client: TestClient[Any, Any], sink: MemorySink) -> None:
    status, body = await post(client, "/v1/events", b"{not json")
    assert status == 400
    assert body["success"] is False
    assert body["errors"][0]["reason"] == "not_json"
    status, body = await post(client, "/v1/events", b"")
    assert status == 400
    lines = b'{"id": 1}\n[1, 2]\n'
    status, body = await post(client, "/v1/events", lines)
    assert status == 400
    assert [e["reason"] for e in body["errors"]] == ["missing_field", "not_object"]
    assert sink.events == []
    assert len(sink.rejected) == 4


async def test_errors_shown_are_capped(client: TestClient[Any, Any]) -> None:
    bad = [{"id": str(n)} for n in range(MAX_ERRORS_SHOWN + 5)]
    status, body = await post(client, "/v1/events", orjson.dumps(bad))
    assert status == 400
    assert body["rejected"] == MAX_ERRORS_SHOWN + 5
    assert len(body["errors"]) == MAX_ERRORS_SHOWN
    assert body["errors_truncated"] is True


async def test_event_over_64k_rejected_body_over_limit_413(sink: MemorySink) -> None:
    client = await client_for(build_collector(sink, max_body=256 * 1024))
    try:
        big = event(1, properties={"blob": "x" * MAX_EVENT_BYTES})
        status, body = await post(client, "/v1/events", orjson.dumps([big, event(2)]))
        assert status == 200
        assert body["errors"][0]["reason"] == "too_large"
        response = await client.post("/v1/events", data=b"[" + b" " * 300 * 1024 + b"]")
        assert response.status == 413
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("path", "message", "expected_type"),
    [
        ("track", {"event": "Order Completed", "properties": {"value": 3}}, "order_completed"),
        ("page", {"name": "Home", "properties": {"url": "https://x.example/"}}, "page_viewed"),
        ("screen", {"name": "Cart"}, "screen_viewed"),
        ("identify", {"traits": {"email": "ann@example.se"}}, "identify"),
    ],
)
async def test_segment_endpoints(
    client: TestClient[Any, Any],
    sink: MemorySink,
    path: str,
    message: dict[str, Any],
    expected_type: str,
) -> None:
    body = {"userId": "u-1", "messageId": "m-1", "timestamp": "2026-11-20T10:00:00+01:00"}
    status, answer = await post(client, f"/v1/{path}", orjson.dumps({**body, **message}))
    assert status == 200, answer
    (got,) = sink.events
    assert (got.id, got.type, got.contact_id) == ("m-1", expected_type, "u-1")
    assert got.timestamp == "2026-11-20T09:00:00Z"


async def test_segment_identify_and_alias_merge(
    client: TestClient[Any, Any], sink: MemorySink
) -> None:
    ident = {"messageId": "m-1", "userId": "u-1", "anonymousId": "a-7", "traits": {"x": 1}}
    alias = {"messageId": "m-2", "userId": "u-2", "previousId": "a-8"}
    assert (await post(client, "/v1/identify", orjson.dumps(ident)))[0] == 200
    assert (await post(client, "/v1/alias", orjson.dumps(alias)))[0] == 200
    assert [(e.type, e.contact_id, e.anonymous_id) for e in sink.events] == [
        ("identify", "u-1", "a-7"),
        ("identify", "u-2", "a-8"),
    ]


async def test_segment_without_time_gets_received_at(
    client: TestClient[Any, Any], sink: MemorySink
) -> None:
    msg = {"messageId": "m-1", "anonymousId": "a-1", "event": "Signed Up"}
    status, _ = await post(client, "/v1/track", orjson.dumps(msg))
    assert status == 200
    assert sink.events[0].ts == NOW


async def test_segment_batch(client: TestClient[Any, Any], sink: MemorySink) -> None:
    batch = {
        "batch": [
            {"type": "track", "event": "Added To Cart", "userId": "u-1", "messageId": "m-1",
             "timestamp": "2026-11-20T10:00:00Z"},
            {"type": "identify", "userId": "u-1", "messageId": "m-2", "traits": {"a": 1},
             "timestamp": "2026-11-20T10:00:01Z"},
            {"event": "No Type", "userId": "u-1", "messageId": "m-3"},
            {"type": "track", "userId": "u-1", "messageId": "m-4", "event": "X"},
        ],
        "context": {"library": {"name": "analytics-python"}},
    }  # fmt: skip
    status, body = await post(client, "/v1/batch", orjson.dumps(batch))
    assert status == 200
    assert (body["accepted"], body["rejected"]) == (3, 1)
    assert [(e["index"], e["reason"]) for e in body["errors"]] == [(2, "missing_field")]
    assert "type" in body["errors"][0]["detail"]
    assert [e.type for e in sink.events] == ["added_to_cart", "identify", "x"]
    status, body = await post(client, "/v1/batch", orjson.dumps({"events": []}))
    assert status == 400


async def test_segment_message_missing_user_rejected(
    client: TestClient[Any, Any], sink: MemorySink
) -> None:
    status, body = await post(client, "/v1/track", orjson.dumps({"messageId": "m", "event": "A"}))
    assert status == 400
    assert body["errors"][0]["reason"] == "missing_field"
    assert sink.rejected[0].reason == "missing_field"


async def test_content_endpoint() -> None:
    store = MemoryContentStore()
    await store.put("c-1", "hero", "winter_sale", ts=1.0)
    client = await client_for(build_collector(MemorySink(), content_store=store))
    try:
        response = await client.get("/v1/content/c-1/hero")
        assert response.status == 200
        assert await response.json() == {
            "contact_id": "c-1",
            "slot": "hero",
            "content": "winter_sale",
        }
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        response = await client.get("/v1/content/c-1/sidebar")
        assert response.status == 404
        assert (await response.json())["content"] is None
    finally:
        await client.close()


async def test_tracking_routes_emit_to_sink(sink: MemorySink) -> None:
    secret = "s3cret"
    client = await client_for(build_collector(sink, tracking_secret=secret))
    try:
        token = sign_token(secret, TokenClaims("open", "a-1", "c-9", "welcome"))
        response = await client.get(f"/t/o/{token}")
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/gif"
        (opened,) = sink.events
        assert (opened.type, opened.contact_id) == ("email_opened", "c-9")
        response = await client.get("/t/o/forged.token")
        assert response.status == 403
        assert len(sink.events) == 1
    finally:
        await client.close()


async def test_no_tracking_or_content_routes_unless_configured(
    client: TestClient[Any, Any],
) -> None:
    assert (await client.get("/v1/content/c/s")).status == 404
    assert (await client.get("/t/o/x.y")).status == 404


async def test_healthz_and_cors(client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}
    response = await client.options("/v1/track")
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


class FailingSink(MemorySink):
    async def accept(self, events: list[Event]) -> None:
        raise ConnectionError("broker unreachable")

    async def reject(self, items: list[Rejected]) -> None:
        return None


async def test_sink_failure_is_503() -> None:
    client = await client_for(build_collector(FailingSink()))
    try:
        response = await client.post("/v1/events", data=orjson.dumps(event()))
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert "broker unreachable" in (await response.json())["error"]
    finally:
        await client.close()


async def test_gzip_bodies_as_segment_libraries_send_them(
    client: TestClient[Any, Any], sink: MemorySink
) -> None:
    import gzip

    body = {"batch": [{"type": "track", "event": "A", "userId": "u", "messageId": "m1"}]}
    response = await client.post(
        "/v1/batch",
        data=gzip.compress(orjson.dumps(body)),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status == 200
    assert [e.id for e in sink.events] == ["m1"]
