"""`show "<content>" in "<slot>"`: what a website slot shows each contact, until replaced.

A `ContentStore` keeps, per contact, slot -> content. In Redis that is one hash per
contact, `<prefix>:{<contact_id>}:slots` (prefix `nudge` by default; hash-tagged so a contact's keys share a cluster
slot), each field holding `{"content", "ts", "action_id"}` as JSON. A show that is older
(by its action's `at`) than what the slot already holds does not overwrite it, so actions
delivered out of order still leave the newest content.

The collector serves `GET /v1/content/{contact_id}/{slot}` with `add_content_routes`:
`{"contact_id", "slot", "content"}`, 404 with `"content": null` when the slot is empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import web

from nudge.connectors.base import Action, Outcome, PermanentError, parse_at
from nudge.connectors.redis_client import AnyRedis

__all__ = [
    "ContentStore",
    "MemoryContentStore",
    "RedisContentStore",
    "ShowConnector",
    "add_content_routes",
    "slots_key",
]


def slots_key(contact_id: str, prefix: str = "nudge") -> str:
    return f"{prefix}:{{{contact_id}}}:slots"


class ContentStore(Protocol):
    async def put(
        self, contact_id: str, slot: str, content: str, *, ts: float = 0.0, action_id: str = ""
    ) -> bool:
        """Set the slot unless it holds newer content (a later `ts`); True if it was set."""
        ...

    async def get(self, contact_id: str, slot: str) -> str | None: ...

    async def slots(self, contact_id: str) -> dict[str, str]: ...


@dataclass(slots=True)
class _Entry:
    content: str
    ts: float
    action_id: str


class MemoryContentStore:
    """In-process store, for tests and embedded runs without Redis."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, _Entry]] = {}

    async def put(
        self, contact_id: str, slot: str, content: str, *, ts: float = 0.0, action_id: str = ""
    ) -> bool:
        slots = self._data.setdefault(contact_id, {})
        current = slots.get(slot)
        if current is not None and current.ts > ts:
            return False
        slots[slot] = _Entry(content, ts, action_id)
        return True

    async def get(self, contact_id: str, slot: str) -> str | None:
        entry = self._data.get(contact_id, {}).get(slot)
        return None if entry is None else entry.content

    async def slots(self, contact_id: str) -> dict[str, str]:
        return {slot: e.content for slot, e in self._data.get(contact_id, {}).items()}


# Compare and set in one step: keep the slot when it already holds a later `ts`.
_PUT = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local ok, prev = pcall(cjson.decode, old)
  if ok and type(prev) == 'table' and tonumber(prev['ts']) and
     tonumber(prev['ts']) > tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


class RedisContentStore:
    def __init__(self, redis: AnyRedis, *, prefix: str = "nudge") -> None:
        self.redis = redis
        self.prefix = prefix
        self._put = redis.register_script(_PUT)

    async def put(
        self, contact_id: str, slot: str, content: str, *, ts: float = 0.0, action_id: str = ""
    ) -> bool:
        value = orjson.dumps({"content": content, "ts": ts, "action_id": action_id})
        result = await self._put(
            keys=[slots_key(contact_id, self.prefix)], args=[slot, value, repr(ts)]
        )
        return bool(result)

    async def get(self, contact_id: str, slot: str) -> str | None:
        raw = await self.redis.hget(slots_key(contact_id, self.prefix), slot)
        return None if raw is None else _content(raw)

    async def slots(self, contact_id: str) -> dict[str, str]:
        raw = await self.redis.hgetall(slots_key(contact_id, self.prefix))
        return {_text(slot): _content(value) for slot, value in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _content(raw: bytes | str) -> str:
    entry = orjson.loads(raw)
    return str(entry["content"]) if isinstance(entry, dict) else str(entry)


def _timestamp(action: Action) -> float:
    at = parse_at(action)
    return 0.0 if at is None else at.timestamp()


class ShowConnector:
    """Delivers `show` actions into a ContentStore."""

    def __init__(self, store: ContentStore) -> None:
        self.store = store

    async def deliver(self, action: Action) -> Outcome:
        contact_id, slot, content = (
            action.get("contact_id"),
            action.get("slot"),
            action.get("content"),
        )
        if not isinstance(contact_id, str) or not isinstance(slot, str) or not slot:
            raise PermanentError("a show action needs `contact_id` and `slot`")
        if not isinstance(content, str):
            raise PermanentError("a show action needs `content`")
        stored = await self.store.put(
            contact_id, slot, content, ts=_timestamp(action), action_id=str(action.get("id", ""))
        )
        return Outcome("sent", detail="stored" if stored else "kept newer content")


def _json(body: Mapping[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"},
    )


def add_content_routes(app: web.Application, store: ContentStore) -> None:
    """Serve `GET /v1/content/{contact_id}/{slot}` from `store` on `app`."""

    async def lookup(request: web.Request) -> web.StreamResponse:
        contact_id, slot = request.match_info["contact_id"], request.match_info["slot"]
        content = await store.get(contact_id, slot)
        body = {"contact_id": contact_id, "slot": slot, "content": content}
        return _json(body, 200 if content is not None else 404)

    app.router.add_get("/v1/content/{contact_id}/{slot}", lookup)
