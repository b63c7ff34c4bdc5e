"""The delivery ledger: an action id is claimed once, so it is never sent twice.

`claim` is atomic (Redis `SET key NX` with a TTL): of two workers, or a worker and its
restarted self, one gets the action and the other skips it. After the attempts end,
`record` keeps the outcome under the same key. A claim is `release`d only when it is
certain nothing went out (cancelled while waiting between attempts); a worker that dies in
the middle of a send leaves its claim, and the action is not sent again: delivery is at
most once.

Redis key: `<prefix>:{<contact_id>}:sent:<action_id>` (prefix `nudge` unless the setting
`redis_key_prefix` says otherwise; hash-tagged per contact), holding JSON:
`{"state": "claimed", "owner", "ts"}` or `{"state": "done", "status", "detail",
"provider_id", "ts"}`; it expires after `ttl` seconds (setting `ledger_ttl`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson

from nudge.connectors.base import Outcome
from nudge.connectors.redis_client import AnyRedis

__all__ = ["DeliveryLedger", "LedgerEntry", "MemoryLedger", "RedisLedger", "ledger_key"]

DEFAULT_TTL = 30 * 86_400.0


def ledger_key(contact_id: str, action_id: str, prefix: str = "nudge") -> str:
    return f"{prefix}:{{{contact_id}}}:sent:{action_id}"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    state: Literal["claimed", "done"]
    ts: float
    owner: str | None = None
    outcome: Outcome | None = None

    def to_json(self) -> dict[str, Any]:
        if self.outcome is None:
            return {"state": self.state, "owner": self.owner, "ts": self.ts}
        return {"state": self.state, "ts": self.ts, **self.outcome.to_json()}

    @classmethod
    def from_json(cls, raw: bytes | str) -> LedgerEntry:
        data = orjson.loads(raw)
        if data.get("state") == "done":
            outcome = Outcome(data["status"], data.get("detail", ""), data.get("provider_id"))
            return cls("done", float(data.get("ts", 0)), outcome=outcome)
        return cls("claimed", float(data.get("ts", 0)), owner=data.get("owner"))


class DeliveryLedger(Protocol):
    async def claim(self, action_id: str, contact_id: str) -> bool:
        """Take the action for delivery; False if it was taken (or done) before."""
        ...

    async def release(self, action_id: str, contact_id: str) -> None:
        """Give back our own claim of an action not sent; a recorded outcome stays."""
        ...

    async def record(
        self, action_id: str, contact_id: str, outcome: Outcome, ts: float | None = None
    ) -> None:
        """Keep the outcome (at `ts`, epoch seconds; default now), replacing the claim."""
        ...

    async def get(self, action_id: str, contact_id: str) -> LedgerEntry | None: ...


class MemoryLedger:
    """In-process ledger: survives a new Dispatcher, not a new process. Entries never expire."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.owner = uuid.uuid4().hex
        self._clock = clock
        self._entries: dict[tuple[str, str], LedgerEntry] = {}

    async def claim(self, action_id: str, contact_id: str) -> bool:
        key = (contact_id, action_id)
        if key in self._entries:
            return False
        self._entries[key] = LedgerEntry("claimed", self._clock(), owner=self.owner)
        return True

    async def release(self, action_id: str, contact_id: str) -> None:
        key = (contact_id, action_id)
        entry = self._entries.get(key)
        if entry is not None and entry.state == "claimed" and entry.owner == self.owner:
            del self._entries[key]

    async def record(
        self, action_id: str, contact_id: str, outcome: Outcome, ts: float | None = None
    ) -> None:
        when = self._clock() if ts is None else ts
        self._entries[(contact_id, action_id)] = LedgerEntry("done", when, outcome=outcome)

    async def get(self, action_id: str, contact_id: str) -> LedgerEntry | None:
        return self._entries.get((contact_id, action_id))


_RELEASE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, entry = pcall(cjson.decode, raw)
if ok and type(entry) == 'table' and entry['state'] == 'claimed' and entry['owner'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLedger:
    """Shared by every delivery worker and across restarts; `owner` tells this one's claims."""

    def __init__(
        self,
        redis: AnyRedis,
        *,
        ttl: float = DEFAULT_TTL,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
        prefix: str = "nudge",
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = max(1, round(ttl))
        self.owner = owner or uuid.uuid4().hex
        self._clock = clock
        self._release = redis.register_script(_RELEASE)

    async def claim(self, action_id: str, contact_id: str) -> bool:
        entry = LedgerEntry("claimed", self._clock(), owner=self.owner)
        done = await self.redis.set(
            ledger_key(contact_id, action_id, self.prefix),
            orjson.dumps(entry.to_json()),
            nx=True,
            ex=self.ttl,
        )
        return bool(done)

    async def release(self, action_id: str, contact_id: str) -> None:
        await self._release(
            keys=[ledger_key(contact_id, action_id, self.prefix)], args=[self.owner]
        )

    async def record(
        self, action_id: str, contact_id: str, outcome: Outcome, ts: float | None = None
    ) -> None:
        entry = LedgerEntry("done", self._clock() if ts is None else ts, outcome=outcome)
        await self.redis.set(
            ledger_key(contact_id, action_id, self.prefix),
            orjson.dumps(entry.to_json()),
            ex=self.ttl,
        )

    async def get(self, action_id: str, contact_id: str) -> LedgerEntry | None:
        raw = await self.redis.get(ledger_key(contact_id, action_id, self.prefix))
        return None if raw is None else LedgerEntry.from_json(raw)
