"""A `ContactStore` wrapper for the streaming worker: saves held back until `commit()`, and
the near future of the timer index kept in memory.

Write-behind: the worker runs the engine, publishes the actions, and only then saves the
states (`commit()`): a crash in between leaves the events unseen, so they run again and give
the same actions (same ids), which the publisher recognises as already published. Saving
first would lose them: the events would be seen, their actions never sent. Until committed,
the held states are what `load` returns (so a runner that saves and loads again within one
batch sees its own changes), and `due_timers` answers from them for their contacts.

Timer window: the runner asks for due timers before every batch, and asking Redis costs a
round trip over every owned shard. Instead, one query fetches the timers due within the
next `lookahead` seconds; later questions up to that time are answered from memory. The
window stays exact because every state this worker saves goes through `commit()`, which
replaces the window's entries for that contact. (A contact of an owned shard saved by
another worker, one an anonymous contact merged into, is seen at the next refresh.)
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Awaitable, Collection, Iterable, Sequence

from .events import Event
from .partitioning import partition_for
from .state import ContactState, ContactStore, Timer, TimerRef, TimerSummary

__all__ = ["WriteBehindStore"]

_WINDOW_LIMIT = 100_000


class WriteBehindStore:
    """Wraps a store; `save` is held in memory until `commit()` (or dropped by `discard()`)."""

    def __init__(self, store: ContactStore, *, lookahead: float = 0.5) -> None:
        self.store = store
        self.partitions = store.partitions
        self.lookahead = lookahead
        self._held: dict[str, ContactState] = {}
        # The window: refs due up to `_complete_until`, for `_window_shards`, sorted.
        self._window: list[TimerRef] = []
        self._window_shards: frozenset[int] | None = None
        self._complete_until = -math.inf
        self._shard_of: dict[str, int] = {}

    @property
    def pending(self) -> int:
        return len(self._held)

    async def load(self, contact_ids: Collection[str]) -> dict[str, ContactState]:
        held = self._held
        if not held:
            return await self.store.load(contact_ids)
        out: dict[str, ContactState] = {}
        missing: list[str] = []
        for cid in contact_ids:
            state = held.get(cid)
            if state is None:
                missing.append(cid)
            else:
                out[cid] = state
        if missing:
            out.update(await self.store.load(missing))
        return out

    async def save(
        self,
        states: Iterable[ContactState],
        after: Awaitable[object] | None = None,
        armed: Iterable[Timer] | None = None,
    ) -> None:
        """Hold the states until `commit()` (after `after`, when given). `commit` saves them
        without `armed`: the wrapped store looks through their timers."""
        if after is not None:
            await after
        held = self._held
        for state in states:
            held[state.contact_id] = state

    async def commit(self, after: Awaitable[object] | None = None) -> int:
        """Save every held state in one call; return how many. With `after` (the broker's
        acknowledgement of the batch's actions), they are written once it is done, and
        prepared meanwhile; if it raises, nothing is written."""
        held, self._held = self._held, {}
        if not held:
            if after is not None:
                await after
            return 0
        await self.store.save(held.values(), after)
        if self._window_shards is not None:
            self._update_window(held.values())
        return len(held)

    def discard(self) -> None:
        """Forget the held states (after a failure: they are recomputed on the next try)."""
        self._held = {}

    def invalidate(self) -> None:
        """Forget the timer window (the owned shards changed, or after a failure)."""
        self._window = []
        self._window_shards = None
        self._complete_until = -math.inf

    async def due_timers(
        self, now: float, shards: Collection[int] | None = None, limit: int = 1000
    ) -> list[TimerRef]:
        if shards is None:
            refs = await self.store.due_timers(now, None, limit)
        else:
            refs = await self._from_window(now, frozenset(shards), limit)
        held = self._held
        if not held:
            return refs
        out = [ref for ref in refs if ref.contact_id not in held]
        for cid, state in held.items():
            if shards is not None and self._shard(cid) not in shards:
                continue
            out.extend(TimerRef(t.due, cid, t.id) for t in state.timers.values() if t.due <= now)
        out.sort()
        return out[:limit]

    async def timer_summary(self, shards: Collection[int] | None = None) -> TimerSummary:
        return await self.store.timer_summary(shards)

    async def claim_ids(self, events: Sequence[Event], ttl: float, now: float) -> set[int]:
        """Straight through: a claim by the holder itself is no duplicate, so a claim made for
        a batch that is then discarded does no harm."""
        return await self.store.claim_ids(events, ttl, now)

    async def close(self) -> None:
        self._held = {}
        self.invalidate()
        await self.store.close()

    # ------------------------------------------------------------------ the window

    async def _from_window(self, now: float, shards: frozenset[int], limit: int) -> list[TimerRef]:
        if shards != self._window_shards or now > self._complete_until:
            await self._refresh(now, shards)
        if now > self._complete_until:  # more due at once than the window holds
            return await self.store.due_timers(now, shards, limit)
        window = self._window
        end = bisect_right(window, (now, "\U0010ffff", "\U0010ffff"))
        return window[: min(end, limit)]

    async def _refresh(self, now: float, shards: frozenset[int]) -> None:
        until = now + self.lookahead
        refs = await self.store.due_timers(until, shards, _WINDOW_LIMIT)
        if len(refs) >= _WINDOW_LIMIT:
            # Complete only below the last due time (others may share it).
            last = refs[-1].due
            refs = [r for r in refs if r.due < last]
            until = math.nextafter(last, -math.inf)
        self._window = refs
        self._window_shards = shards
        self._complete_until = until

    def _update_window(self, states: Iterable[ContactState]) -> None:
        """Replace the window's entries of the saved contacts by their current timers."""
        shards = self._window_shards
        assert shards is not None
        until = self._complete_until
        saved: set[str] = set()
        fresh: list[TimerRef] = []
        for state in states:
            cid = state.contact_id
            saved.add(cid)
            if state.timers and self._shard(cid) in shards:
                fresh.extend(
                    TimerRef(t.due, cid, t.id) for t in state.timers.values() if t.due <= until
                )
        if not fresh and not any(ref.contact_id in saved for ref in self._window):
            return
        kept = [ref for ref in self._window if ref.contact_id not in saved]
        kept.extend(fresh)
        kept.sort()
        self._window = kept

    def _shard(self, contact_id: str) -> int:
        shard = self._shard_of.get(contact_id)
        if shard is None:
            if len(self._shard_of) > 1_000_000:
                self._shard_of.clear()
            shard = self._shard_of[contact_id] = partition_for(contact_id, self.partitions)
        return shard
