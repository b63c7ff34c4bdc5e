"""MemoryStore: contact states in a dict, timers in a due-ordered heap per shard.

For replay, tests and single-process runs. States are held by reference: `load` returns the
stored object itself, so the engine's in-place changes cost nothing to keep, and `live()`
hands the runner the mapping itself (no `load` per batch); `save` only brings the timer
index up to date: it pushes the timers it is told were armed (`armed`, as
the runner passes them), else the ones of each state it has not indexed yet. An index entry
is checked against the contact's timers when it falls due: one whose timer is gone or was
moved is skipped then. The refs `due_timers` returns leave the heap until the next call,
which puts back those whose timers are still there.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Awaitable, Collection, Iterable, Sequence
from operator import is_

from ..events import Event
from ..partitioning import partition_for
from ..state import ContactState, Timer, TimerRef, TimerSummary

__all__ = ["MemoryStore"]


class _States(dict[str, ContactState]):
    """Contact id -> state; looking up a contact not held yet keeps a fresh state for it."""

    def __missing__(self, contact_id: str) -> ContactState:
        state = self[contact_id] = ContactState(contact_id)
        return state


class MemoryStore:
    """The in-process `ContactStore`."""

    def __init__(self, partitions: int = 8) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        self.partitions = partitions
        self._states = _States()
        # Per shard, a heap of refs; stale entries (timer gone or moved) are skipped lazily.
        self._heaps: list[list[TimerRef]] = [[] for _ in range(partitions)]
        # Per shard, the refs the last `due_timers` handed out, out of the heap: most fire
        # before the next call, and those that did not go back then (a pop, not three heap
        # operations, per timer that fires).
        self._lent: list[list[TimerRef]] = [[] for _ in range(partitions)]
        # For saves without `armed`: contact id -> its Timer objects as last indexed. A timer
        # re-armed is a new Timer (the engine never moves one's `due`), so a save compares
        # these by identity.
        self._indexed: dict[str, tuple[Timer, ...]] = {}
        self._shard_of: dict[str, int] = {}
        # Event id -> (the contact that claimed it, its event's time), in two generations:
        # claims go to the current one; when it is `ttl` old (by the caller's clock) it becomes
        # the previous one, and the previous one is dropped (kept between `ttl` and twice that).
        self._claims: dict[str, tuple[str, float]] = {}
        self._old_claims: dict[str, tuple[str, float]] = {}
        self._claims_since = -math.inf

    def __len__(self) -> int:
        return len(self._states)

    def live(self) -> dict[str, ContactState]:
        """The states themselves (see `InProcessStore`)."""
        return self._states

    async def load(self, contact_ids: Collection[str]) -> dict[str, ContactState]:
        states = self._states
        out: dict[str, ContactState] = {}
        for cid in contact_ids:
            state = states.get(cid)
            out[cid] = ContactState(cid) if state is None else state
        return out

    async def save(
        self,
        states: Iterable[ContactState],
        after: Awaitable[object] | None = None,
        armed: Iterable[Timer] | None = None,
    ) -> None:
        if after is not None:
            await after
        store = self._states
        if armed is not None:
            for state in states:
                store[state.contact_id] = state
            for timer in armed:
                cid = timer.contact_id
                heapq.heappush(self._heaps[self._shard(cid)], TimerRef(timer.due, cid, timer.id))
            return
        indexed = self._indexed
        for state in states:
            cid = state.contact_id
            store[cid] = state
            timers = state.timers
            if not timers:
                if cid in indexed:
                    del indexed[cid]
                continue
            now = tuple(timers.values())
            known = indexed.get(cid)
            if known is not None and len(known) == len(now) and all(map(is_, known, now)):
                continue  # the usual case: the same Timer objects
            heap = self._heaps[self._shard(cid)]
            old = {id(t) for t in known} if known else set()  # `known` keeps them alive
            for timer in now:
                if id(timer) not in old:
                    heapq.heappush(heap, TimerRef(timer.due, cid, timer.id))
            indexed[cid] = now

    async def due_timers(
        self, now: float, shards: Collection[int] | None = None, limit: int = 1000
    ) -> list[TimerRef]:
        chosen = range(self.partitions) if shards is None else shards
        found: list[TimerRef] = []
        for shard in chosen:
            found.extend(self._due_in(shard, now, limit))
        found.sort()
        return found[:limit]

    async def timer_summary(self, shards: Collection[int] | None = None) -> TimerSummary:
        pending = 0
        next_due: float | None = None
        for cid, state in self._states.items():
            timers = state.timers
            if not timers or (shards is not None and self._shard(cid) not in shards):
                continue
            pending += len(timers)
            earliest = min(t.due for t in timers.values())
            if next_due is None or earliest < next_due:
                next_due = earliest
        return TimerSummary(pending, next_due)

    async def claim_ids(self, events: Sequence[Event], ttl: float, now: float) -> set[int]:
        if now - self._claims_since >= ttl:
            self._old_claims = self._claims if now - self._claims_since < 2 * ttl else {}
            self._claims = {}
            self._claims_since = now
        claims = self._claims
        claim = claims.setdefault
        old = self._old_claims
        foreign: set[int] = set()
        for i, e in enumerate(events):
            contact_id = e.contact_id
            if old:
                earlier = old.get(e.id)
                held = claim(e.id, (contact_id, e.ts) if earlier is None else earlier)
            else:
                held = claim(e.id, (contact_id, e.ts))
            owner = held[0]
            if owner is contact_id or owner == contact_id:
                continue
            if e.ts - held[1] > ttl:  # another contact's, but long ago: the id is free again
                claims[e.id] = (contact_id, e.ts)
            else:
                foreign.add(i)
        return foreign

    async def close(self) -> None:
        return None

    def _shard(self, contact_id: str) -> int:
        shard = self._shard_of.get(contact_id)
        if shard is None:
            shard = self._shard_of[contact_id] = partition_for(contact_id, self.partitions)
        return shard

    def _due_in(self, shard: int, now: float, limit: int) -> list[TimerRef]:
        """The valid refs of `shard` due by `now`, in order, lent out of its heap."""
        states = self._states
        heap = self._heaps[shard]
        lent = self._lent[shard]
        for ref in lent:  # handed out last time: back in the heap unless fired or moved
            state = states.get(ref.contact_id)
            timer = None if state is None else state.timers.get(ref.timer_id)
            if timer is not None and timer.due == ref.due:
                heapq.heappush(heap, ref)
        valid: list[TimerRef] = []
        while heap and heap[0].due <= now and len(valid) < limit:
            ref = heapq.heappop(heap)
            state = states.get(ref.contact_id)
            timer = None if state is None else state.timers.get(ref.timer_id)
            if (
                timer is not None
                and timer.due == ref.due
                and (not valid or valid[-1] != ref)  # not a ref pushed twice
            ):
                valid.append(ref)
        self._lent[shard] = valid
        return valid
