"""The HTTP collector: events in over HTTP, validated, handed to an `EventSink`.

Routes (`build_collector`):

- `POST /v1/events`: one JSON object, a JSON array of objects, or JSON lines.
- Segment's HTTP tracking API: `POST /v1/track`, `/v1/identify`, `/v1/page`, `/v1/screen`,
  `/v1/alias` (one message; its `type` is the endpoint's), `/v1/batch` (`{"batch": [...]}`,
  each message with its own `type`). A Segment message without any time gets `receivedAt`,
  as Segment's own API does.
- `GET /v1/content/{contact_id}/{slot}`: what a website slot shows the contact (when a
  content store is given).
- `/t/o/...`, `/t/c/...`, `/t/u/...`: open, click and unsubscribe tracking (when a tracking
  secret is given); their events go to the same sink.
- `GET /healthz`.

Every item is validated by `nudge.engine.events`. The answer counts them::

    {"success": true, "accepted": 2, "rejected": 1,
     "errors": [{"index": 1, "reason": "bad_timestamp", "detail": "..."}]}

It is 200 when at least one item was accepted (or there were none), 400 when every item was
rejected, 413 when the body is over the limit, and 503 when the sink failed (nothing is lost
by retrying: events are de-duplicated by id). Rejected items also go to the sink's
dead-letter side with their reason.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import web

from .events import (
    MAX_EVENT_BYTES,
    Event,
    Rejected,
    event_from_dict,
    format_time,
    iter_jsonl,
    kind_of,
    not_json,
    parse_record,
)
from .sink import EventSink

__all__ = ["MAX_BODY_BYTES", "MAX_ERRORS_SHOWN", "build_collector", "parse_body"]

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_ERRORS_SHOWN = 100

SEGMENT_ENDPOINTS = ("track", "identify", "page", "screen", "alias")
# Where a Segment message may carry its time (nudge.engine.segment_spec reads them in this order).
SEGMENT_TIME_FIELDS = ("timestamp", "originalTimestamp", "receivedAt", "sentAt")

_log = structlog.get_logger("nudge.engine.collector")

Items = list[Event | Rejected]


def parse_body(body: bytes) -> Items:
    """A `/v1/events` body: one JSON object, a JSON array, a Segment batch, or JSON lines."""
    items = parse_record(body)
    if (
        len(items) == 1
        and isinstance(items[0], Rejected)
        and items[0].reason == "not_json"
        and b"\n" in body.strip()
    ):
        return list(iter_jsonl(io.BytesIO(body)))
    return items


def _segment_message(obj: Any, kind: str | None, received_at: str) -> Event | Rejected:
    """One Segment message; `kind` is the endpoint's type (None in a batch: its own)."""
    data = orjson.dumps(obj)
    if len(data) > MAX_EVENT_BYTES:
        return Rejected(
            "too_large", f"event is {len(data)} bytes, over the limit of {MAX_EVENT_BYTES}", data
        )
    if type(obj) is not dict:
        return Rejected("not_object", f"expected a JSON object, got {kind_of(obj)}", data)
    if kind is not None:
        obj["type"] = kind
    elif obj.get("type") not in SEGMENT_ENDPOINTS:
        return Rejected(
            "missing_field",
            "a Segment batch message needs `type`: track, identify, page, screen or alias",
            data,
        )
    if "contact_id" in obj:  # Nudge's own field would take the message off the Segment path
        del obj["contact_id"]
    if all(obj.get(name) is None for name in SEGMENT_TIME_FIELDS):
        obj["receivedAt"] = received_at
    return event_from_dict(obj, data)


def parse_segment(body: bytes, kind: str, received_at: str) -> Items:
    """A Segment endpoint's body: one message (`kind` the endpoint), or `batch`."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return [not_json(exc, body)]
    if kind != "batch":
        return [_segment_message(obj, kind, received_at)]
    batch = obj.get("batch") if type(obj) is dict else None
    if type(batch) is not list:
        return [
            Rejected(
                "not_object",
                "expected an object with a `batch` list of Segment messages",
                body[:MAX_EVENT_BYTES],
            )
        ]
    return [_segment_message(item, None, received_at) for item in batch]


def _answer(items: Items, accepted: int) -> web.Response:
    errors: list[dict[str, Any]] = []
    rejected = 0
    for index, item in enumerate(items):
        if isinstance(item, Rejected):
            rejected += 1
            if len(errors) < MAX_ERRORS_SHOWN:
                errors.append({"index": index, "reason": item.reason, "detail": item.detail})
    body: dict[str, Any] = {
        "success": accepted > 0 or rejected == 0,
        "accepted": accepted,
        "rejected": rejected,
        "errors": errors,
    }
    if rejected > len(errors):
        body["errors_truncated"] = True
    return _json(body, 400 if rejected and not accepted else 200)


def _json(body: dict[str, Any], status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store", **headers},
    )


async def _hand_over(sink: EventSink, items: Items) -> web.Response:
    events = [item for item in items if isinstance(item, Event)]
    rejected = [item for item in items if isinstance(item, Rejected)]
    try:
        await asyncio.gather(
            *([sink.accept(events)] if events else []),
            *([sink.reject(rejected)] if rejected else []),
        )
    except Exception as exc:
        _log.exception("collector.sink_failed", events=len(events), rejected=len(rejected))
        return _json(
            {"success": False, "error": f"could not store the events: {exc}; retry"},
            503,
            **{"Retry-After": "1"},
        )
    return _answer(items, len(events))


@web.middleware
async def _cors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Browsers may post events and read content from any site."""
    if request.method == "OPTIONS" and request.path.startswith("/v1/"):
        response: web.StreamResponse = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
        response.headers["Access-Control-Max-Age"] = "86400"
    else:
        response = await handler(request)
    if request.path.startswith("/v1/"):
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def build_collector(
    sink: EventSink,
    *,
    content_store: Any = None,
    tracking_secret: str | bytes | None = None,
    max_body: int = MAX_BODY_BYTES,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The collector's aiohttp application, handing events to `sink`.

    `content_store` (a `nudge.connectors.content.ContentStore`) adds the content route;
    `tracking_secret` adds the tracking routes. Bodies over `max_body` bytes get 413.
    """
    app = web.Application(client_max_size=max_body, middlewares=[_cors])

    async def events(request: web.Request) -> web.StreamResponse:
        return await _hand_over(sink, parse_body(await request.read()))

    def segment(kind: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            items = parse_segment(await request.read(), kind, format_time(clock()))
            return await _hand_over(sink, items)

        return handle

    async def healthz(request: web.Request) -> web.StreamResponse:
        return _json({"status": "ok"})

    app.router.add_post("/v1/events", events)
    for kind in (*SEGMENT_ENDPOINTS, "batch"):
        app.router.add_post(f"/v1/{kind}", segment(kind))
    app.router.add_get("/healthz", healthz)

    if content_store is not None:
        from nudge.connectors.content import add_content_routes

        add_content_routes(app, content_store)
    if tracking_secret is not None:
        from nudge.connectors.tracking import add_tracking_routes

        async def emit(obj: dict[str, Any]) -> None:
            event = event_from_dict(obj)
            if isinstance(event, Rejected):
                raise ValueError(f"tracking produced a bad event: {event.detail}")
            await sink.accept([event])

        add_tracking_routes(app, tracking_secret, emit)
    return app
