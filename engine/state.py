"""A contact's engine state, its timers, and the `ContactStore` Protocol that keeps them.

The engine mutates a `ContactState` in place while it handles events; a store loads states in
batches and saves them back, each contact atomically together with the index of its timers.
`to_dict()` / `from_dict()` give a JSON-native form for stores that serialise (Redis).

Timers are records inside the contact's state (so they move, merge and vanish with it) and
are also indexed by due time per shard, the Kafka partition of the contact id, so that each
worker finds the due timers of the partitions it owns.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Awaitable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

import orjson

from .actions import Action
from .events import Event

__all__ = [
    "ContactState",
    "ContactStore",
    "InProcessStore",
    "Timer",
    "TimerRef",
    "TimerSummary",
    "event_from_data",
    "event_to_data",
]

TIMER_KINDS = ("nfb", "inactive", "wait", "deliver")


class TimerRef(NamedTuple):
    """An entry of the due-time index. Orders by due time, then contact, then timer id."""

    due: float
    contact_id: str
    timer_id: str


class TimerSummary(NamedTuple):
    """How many timers are pending, and when the next one falls due."""

    pending: int
    next_due: float | None


@dataclass(slots=True)
class Timer:
    """A durable timer of one contact.

    `kind` and `payload`:
    - `nfb` (a `not followed by` wait) and `inactive`: `{"event": Event}`, the event the
      rule fires with.
    - `wait` (the rest of a rule after `wait D`): `{"bindings": {name: Event}, "step": int,
      "trigger": str}`: the bound events, the index of the next step, the triggering event id.
    - `deliver` (an action deferred by quiet hours): `{"action": Action}`.

    A timer is never changed once armed (neither its `due` nor its payload): re-arming makes
    a new `Timer`. Stores rely on it: the memory store indexes timers by identity, and
    `encoded()` keeps the timer's JSON.
    """

    id: str
    contact_id: str
    rule: str
    kind: str
    due: float
    payload: dict[str, Any]
    _json: orjson.Fragment | None = field(default=None, init=False, compare=False, repr=False)

    def encoded(self) -> orjson.Fragment:
        """`to_dict()` as JSON, made once: a state is saved after every batch that touches it,
        and its timers (events, bindings, actions) are most of its bytes and objects."""
        out = self._json
        if out is None:
            out = self._json = orjson.Fragment(orjson.dumps(self.to_dict()))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "contact_id": self.contact_id,
            "rule": self.rule,
            "kind": self.kind,
            "due": self.due,
            "payload": _payload_to_data(self.payload),
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Timer:
        return cls(
            obj["id"],
            obj["contact_id"],
            obj["rule"],
            obj["kind"],
            float(obj["due"]),
            _payload_from_data(obj["payload"]),
        )


@dataclass(slots=True)
class ContactState:
    """Everything the engine keeps about one contact.

    - `traits`: the contact as rules see it: its traits plus `score`, `stage`, `first_seen`,
      `last_seen` and `segments`. Empty for a contact never seen.
    - `seen`: event id -> timestamp, for de-duplication (pruned past the dedup window).
    - `seen_floor`: the time up to which `seen` was pruned: an event older than it may have
      been seen and forgotten, so it counts as a duplicate (a replay run twice stays idempotent).
    - `firings`: rule -> timestamps of its firings (for `limit`; `once` keeps the first).
    - `sends`: channel -> timestamps of its actions (for `policy <channel> limit`).
    - `windows`: window id -> sorted timestamps of matching events (for `count` and `N E`).
    - `pending`: rule -> recent matching first events of a `followed by` trigger.
    - `timers`: timer id -> Timer.
    - `last_send`: rule -> when the rule last sent to the contact (for goals).
    - `engagement`: channel -> when the contact last engaged with it (for `send best`).
    - `merged_into`: set once this (anonymous) contact was merged into a known one.
    - `last_inbound`: the contact's latest inbound event (for `inactive for`).
    - `segments_mark`: not kept by stores: which engine last brought `segments` up to date
      in this object (the engine then skips re-evaluating them while nothing changes).
    """

    contact_id: str
    traits: dict[str, Any] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    firings: dict[str, list[float]] = field(default_factory=dict)
    sends: dict[str, list[float]] = field(default_factory=dict)
    windows: dict[str, list[float]] = field(default_factory=dict)
    pending: dict[str, list[Event]] = field(default_factory=dict)
    timers: dict[str, Timer] = field(default_factory=dict)
    last_send: dict[str, float] = field(default_factory=dict)
    engagement: dict[str, float] = field(default_factory=dict)
    merged_into: str | None = None
    last_inbound: Event | None = None
    seen_floor: float | None = None
    segments_mark: object = field(default=None, compare=False, repr=False)

    @property
    def is_new(self) -> bool:
        """Whether the engine has never initialised this contact."""
        return "stage" not in self.traits

    def count(self, window_id: str, seconds: float, now: float) -> int:
        """How many events matched the window in `[now - seconds, now]` (the plan's `h`)."""
        times = self.windows.get(window_id)
        if not times:
            return 0
        if times[-1] <= now:
            return len(times) - bisect_left(times, now - seconds)
        return bisect_left(times, now + 1e-9) - bisect_left(times, now - seconds)

    def add_to_window(self, window_id: str, ts: float, horizon: float) -> None:
        """Record a matching event at `ts`, dropping entries older than the horizon."""
        times = self.windows.get(window_id)
        if times is None:
            self.windows[window_id] = [ts]
            return
        if not times or times[-1] <= ts:
            times.append(ts)
        else:
            insort(times, ts)
        cutoff = times[-1] - horizon
        if times[0] < cutoff:
            del times[: bisect_left(times, cutoff)]

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, Any]:
        """A JSON-native form of the state (it shares containers with it: serialise at once)."""
        return self._data({tid: t.to_dict() for tid, t in self.timers.items()})

    def to_json(self) -> bytes:
        """`to_dict()` serialised, each timer's JSON made once (`Timer.encoded`)."""
        return orjson.dumps(self._data({tid: t.encoded() for tid, t in self.timers.items()}))

    def holds_anything(self) -> bool:
        """Whether there is more to keep than the contact id."""
        return bool(
            self.traits
            or self.seen
            or self.timers
            or self.firings
            or self.sends
            or self.windows
            or self.pending
            or self.last_send
            or self.engagement
            or self.merged_into is not None
            or self.last_inbound is not None
        )

    def _data(self, timers: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "contact_id": self.contact_id,
            "traits": self.traits,
            "seen": self.seen,
            "firings": self.firings,
            "sends": self.sends,
            "windows": self.windows,
            "pending": {
                rule: [event_to_data(e) for e in events] for rule, events in self.pending.items()
            },
            "timers": timers,
            "last_send": self.last_send,
            "engagement": self.engagement,
            "merged_into": self.merged_into,
            "last_inbound": None if self.last_inbound is None else event_to_data(self.last_inbound),
        }
        if self.seen_floor is not None:
            data["seen_floor"] = self.seen_floor
        return data

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ContactState:
        last = obj.get("last_inbound")
        return cls(
            contact_id=obj["contact_id"],
            traits=obj.get("traits") or {},
            seen=obj.get("seen") or {},
            firings=obj.get("firings") or {},
            sends=obj.get("sends") or {},
            windows=obj.get("windows") or {},
            pending={
                rule: [event_from_data(e) for e in events]
                for rule, events in (obj.get("pending") or {}).items()
            },
            timers={tid: Timer.from_dict(t) for tid, t in (obj.get("timers") or {}).items()},
            last_send=obj.get("last_send") or {},
            engagement=obj.get("engagement") or {},
            merged_into=obj.get("merged_into"),
            last_inbound=None if last is None else event_from_data(last),
            seen_floor=obj.get("seen_floor"),
        )


def event_to_data(event: Event) -> dict[str, Any]:
    """An event as JSON-native data, with its epoch `ts` kept (no re-parsing on the way back)."""
    out: dict[str, Any] = {
        "id": event.id,
        "event": event.type,
        "contact_id": event.contact_id,
        "ts": event.ts,
        "timestamp": event.timestamp,
    }
    if event.properties is not event.traits:  # an identify's fields are its traits: kept once
        out["properties"] = event.properties
    if event.traits is not None:
        out["traits"] = event.traits
    if event.anonymous_id is not None:
        out["anonymous_id"] = event.anonymous_id
    if not event.inbound:
        out["inbound"] = False
    return out


def event_from_data(obj: dict[str, Any]) -> Event:
    traits = obj.get("traits")
    properties = obj.get("properties")
    if properties is None:
        properties = {} if traits is None else traits
    return Event(
        obj["id"],
        obj["event"],
        obj["contact_id"],
        float(obj["ts"]),
        obj["timestamp"],
        properties,
        traits,
        obj.get("anonymous_id"),
        obj.get("inbound", True),
    )


def _payload_to_data(payload: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, Event):
            out[key] = {"$event": event_to_data(value)}
        elif isinstance(value, Action):
            out[key] = {"$action": value.to_json(full=True)}
        elif key == "bindings":
            out[key] = {name: event_to_data(e) for name, e in value.items()}
        else:
            out[key] = value
    return out


def _payload_from_data(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and "$event" in value:
            out[key] = event_from_data(value["$event"])
        elif isinstance(value, dict) and "$action" in value:
            out[key] = Action.from_json(value["$action"])
        elif key == "bindings":
            out[key] = {name: event_from_data(e) for name, e in value.items()}
        else:
            out[key] = value
    return out


@runtime_checkable
class ContactStore(Protocol):
    """Where contact states live. Async and batch-oriented: one call per batch of events.

    - `load(ids)`: the state of each id; a contact never saved comes back as a fresh
      `ContactState(contact_id)`. Loading never creates anything.
    - `save(states, after, armed)`: each state is written atomically together with its timer
      index (timers added, moved or removed since it was loaded). A later `load` returns
      equal states. With `after`, nothing is written before that awaitable is done (nor at
      all if it raises): the streaming worker passes the broker's acknowledgement of the
      batch's actions, and the store prepares the write (encodes the states) meanwhile.
      `armed`, when the caller knows them (the runner: `Decision.timers`), are the timers
      armed or moved since the states were loaded: a store may index just those rather than
      look through every state's timers. A timer a state no longer holds is never due.
    - `due_timers(now, shards, limit)`: refs of timers with `due <= now`, of contacts in the
      given shards (None: all), sorted by (due, contact id, timer id), at most `limit`. It does
      not remove them: a timer leaves the index when a saved state no longer holds it.
      `shard` is `partition_for(contact_id, store.partitions)`.
    - `timer_summary(shards)`: how many timers are pending and the earliest due time.
    - `claim_ids(events, ttl, now)`: claim each event's id for its contact, in order; the
      first claim of an id wins. Returns the positions of the events whose id another contact
      holds: those are duplicates (an id is unique across contacts, LANGUAGE.md section 1).
      A claim holds for events up to `ttl` seconds after the claiming event's timestamp (event
      time, as the contact's own `seen`); past that, another contact's event takes the id over.
      Stores keep claims at least `ttl` seconds (`now`: the caller's clock) and may drop them
      after.
      A claim by the holder itself is no duplicate here: the contact's own `seen` decides,
      atomically with its state, so a batch retried after a crash is handled again.
    - `close()`: release connections.
    """

    partitions: int

    async def load(self, contact_ids: Collection[str]) -> dict[str, ContactState]: ...

    async def save(
        self,
        states: Iterable[ContactState],
        after: Awaitable[object] | None = None,
        armed: Iterable[Timer] | None = None,
    ) -> None: ...

    async def due_timers(
        self, now: float, shards: Collection[int] | None = None, limit: int = 1000
    ) -> list[TimerRef]: ...

    async def timer_summary(self, shards: Collection[int] | None = None) -> TimerSummary: ...

    async def claim_ids(self, events: Sequence[Event], ttl: float, now: float) -> set[int]: ...

    async def close(self) -> None: ...


@runtime_checkable
class InProcessStore(ContactStore, Protocol):
    """A `ContactStore` that holds the states themselves, not copies of them.

    `live()` is its mapping of contact id to state, where looking up a contact it does not
    hold yet keeps a fresh state for it. A runner works on that mapping directly (no `load`
    per batch) and calls `save` with no states, only to index the timers it armed.
    """

    def live(self) -> dict[str, ContactState]: ...
