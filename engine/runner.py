"""The runner: batches of events through the engine against a store, timers in due order.

    runner = Runner(engine, store, ManualClock())
    out = await runner.process(events)     # a Decision holding the batch's actions, in due order
    out = await runner.advance(until)      # fire what falls due up to `until`

Per batch: one claim of its event ids (`claim_ids`: an id another contact holds makes its
event a duplicate), then one `load` for every contact involved (the events'
contacts, anonymous contacts to merge, contacts with timers falling due within the batch's
time span; an in-process store hands over its states instead), then, for each
event in input order: fire the timers due before it (strictly: events at T come before
timers due at T), handle it; then one `save` of every state that changed. When more timers
fall due within a batch than one query returns (`timer_batch`, say at the end of quiet hours,
when every deferred email falls due at once), the batch is cut after the last event those
timers cover, and the rest runs with a query of its own.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from .clock import Clock
from .decision import Decision
from .engine import Engine
from .events import Event
from .state import ContactState, ContactStore, InProcessStore, TimerRef

__all__ = ["RunStats", "Runner"]

_MAX_REDIRECTS = 8


@dataclass(slots=True)
class RunStats:
    events: int = 0  # handled, duplicates included
    duplicates: int = 0
    timers_fired: int = 0


class Runner:
    """Drives an `Engine` over a `ContactStore`. Not safe for concurrent calls."""

    def __init__(
        self,
        engine: Engine,
        store: ContactStore,
        clock: Clock,
        *,
        shards: Collection[int] | None = None,
        timer_batch: int = 10_000,
    ) -> None:
        self.engine = engine
        self.store = store
        self.clock = clock
        self.shards = shards
        self.timer_batch = timer_batch
        self.stats = RunStats()
        # An in-process store's own mapping: nothing to load or write back per batch.
        self._live = store.live() if isinstance(store, InProcessStore) else None
        # Timers armed while a batch runs are indexed locally only if due before this.
        self._horizon = -math.inf

    # ------------------------------------------------------------------ events

    async def process(self, batch: Sequence[Event]) -> Decision:
        """Handle a batch of events (any contacts, in input order)."""
        out = Decision()
        if not batch:
            return out
        # One due-timer query covers the batch: timers due before its first event fire
        # before that event, as before any other.
        await self._process(batch, out)
        return out

    async def _due_before(self, horizon: float) -> list[TimerRef]:
        return await self.store.due_timers(
            math.nextafter(horizon, -math.inf), self.shards, self.timer_batch
        )

    async def _process(
        self, batch: Sequence[Event], out: Decision, *, drained: bool = False
    ) -> None:
        horizon = max(self.clock.now(), *(e.ts for e in batch))
        refs = await self._due_before(horizon)
        if len(refs) >= self.timer_batch:
            # More due within the batch than one query returns. The refs are the earliest
            # ones: complete for the events up to the last ref's due time (an event at T
            # comes before the timers due at T). Run those events, then the rest afresh.
            last = refs[-1].due
            now = self.clock.now()
            k = 0
            for e in batch:
                now = max(now, e.ts)
                if now > last:
                    break
                k += 1
            if k:
                await self._process(batch[:k], out)
                await self._process(batch[k:], out)
                return
            if not drained:  # a backlog before the first event: fire it in chunks, ask again
                await self._fire_until(math.nextafter(now, -math.inf), out)
                await self._process(batch, out, drained=True)
                return
            # what is left due before the first event cannot fire (stale index entries)
        # ids another contact holds: duplicates (the contact's own `seen` finds the others)
        foreign = await self.store.claim_ids(batch, self.engine.dedup_seconds, horizon)
        live = self._live
        if live is None:
            ids: set[str] = {e.contact_id for e in batch}
            ids.update(e.anonymous_id for e in batch if e.anonymous_id is not None)
            ids.update(ref.contact_id for ref in refs)
            states = await self._load(ids)
        else:
            states = live
        heap = list(refs)  # sorted, hence a heap
        self._horizon = horizon
        dirty: dict[str, ContactState] = {}
        engine = self.engine
        handle = engine.handle
        observe = self.clock.observe
        stats = self.stats
        timers = out.timers
        for i, e in enumerate(batch):
            now = observe(e.ts)
            if heap and heap[0][0] < now:
                await self._fire_heap(heap, now, states, dirty, out, inclusive=False)
            if foreign and i in foreign:
                stats.events += 1
                stats.duplicates += 1
                continue
            state = states[e.contact_id]
            if state.merged_into is not None:
                state = await self._route(state, states)
            merge_from = None
            if e.anonymous_id is not None:
                merge_from = states[e.anonymous_id]
            before = len(timers)
            handle(e, state, now, merge_from, out)
            stats.events += 1
            if out.duplicate:
                stats.duplicates += 1
                continue
            dirty[state.contact_id] = state
            if merge_from is not None:
                dirty[merge_from.contact_id] = merge_from
            if len(timers) != before:
                for timer in timers[before:]:
                    if timer.due < horizon:
                        heapq.heappush(heap, TimerRef(timer.due, timer.contact_id, timer.id))
        try:
            if dirty:
                await self.store.save(dirty.values() if live is None else (), armed=timers)
        finally:
            timers.clear()

    # ------------------------------------------------------------------ timers

    async def advance(self, until: float) -> Decision:
        """Move the clock to `until` and fire every timer due by then, in due order."""
        out = Decision()
        self.clock.observe(until)
        await self._fire_until(until, out)
        return out

    async def _fire_until(self, until: float, out: Decision) -> None:
        """Fire timers due at or before `until`, in chunks of `timer_batch`."""
        store = self.store
        previous: list[TimerRef] = []
        while True:
            refs = await store.due_timers(until, self.shards, self.timer_batch)
            if not refs or refs == previous:  # none left, or none that can fire (stale)
                return
            previous = refs
            full = len(refs) >= self.timer_batch
            if full:
                # The last contact's timers of the last instant may go on past the chunk: they
                # come whole with the next one, to fire in rule order (`Engine.firing_order`).
                last = refs[-1]
                cut = len(refs)
                while cut and refs[cut - 1][:2] == last[:2]:
                    cut -= 1
                if cut:
                    refs = refs[:cut]
            # A full chunk may leave timers due before its last one for the next chunk:
            # fire timers armed meanwhile only up to that point, to keep due order.
            limit = refs[-1].due if full else until
            live = self._live
            states = await self._load({r.contact_id for r in refs}) if live is None else live
            dirty: dict[str, ContactState] = {}
            heap = list(refs)
            self._horizon = math.nextafter(limit, math.inf)
            await self._fire_heap(heap, limit, states, dirty, out, inclusive=True)
            try:
                if dirty:
                    await store.save(dirty.values() if live is None else (), armed=out.timers)
            finally:
                out.timers.clear()
            if not full:
                return

    async def _fire_heap(
        self,
        heap: list[TimerRef],
        until: float,
        states: dict[str, ContactState],
        dirty: dict[str, ContactState],
        out: Decision,
        *,
        inclusive: bool,
    ) -> None:
        """Pop and fire the timers due before `until` (or at it, when inclusive)."""
        fire = self.engine.fire
        timers = out.timers
        horizon = self._horizon
        while heap and (heap[0][0] < until or (inclusive and heap[0][0] == until)):
            due, cid, tid = heapq.heappop(heap)
            group = [tid]  # the contact's timers due at this instant fire in rule order
            while heap and heap[0][0] == due and heap[0][1] == cid:
                group.append(heapq.heappop(heap)[2])
            state = states.get(cid)
            if state is None:
                state = (await self._load({cid}))[cid]
                states[cid] = state
            if len(group) > 1:
                group.sort(key=lambda t: self.engine.firing_order(state.timers.get(t)))
            for tid in group:
                timer = state.timers.get(tid)
                if timer is None or timer.due != due:
                    continue
                before = len(timers)
                fire(timer, state, due, out)
                if not out.dirty:
                    continue
                self.stats.timers_fired += 1
                dirty[cid] = state
                for new in timers[before:]:
                    if new.due < horizon and new.contact_id in states:
                        heapq.heappush(heap, TimerRef(new.due, new.contact_id, new.id))

    # ------------------------------------------------------------------ states

    async def _load(self, ids: Iterable[str]) -> dict[str, ContactState]:
        """Load states, and the known contacts that merged anonymous ones point to."""
        states = await self.store.load(list(ids))
        missing = {s.merged_into for s in states.values() if s.merged_into is not None}
        for _ in range(_MAX_REDIRECTS):
            missing -= states.keys()
            if not missing:
                break
            more = await self.store.load(list(missing))
            states.update(more)
            missing = {s.merged_into for s in more.values() if s.merged_into is not None}
        return states

    async def _route(self, state: ContactState, states: dict[str, ContactState]) -> ContactState:
        """The state that events of a merged (anonymous) contact go to."""
        for _ in range(_MAX_REDIRECTS):
            target = state.merged_into
            if target is None or target == state.contact_id:
                return state
            nxt = states.get(target)
            if nxt is None:
                nxt = (await self._load({target}))[target]
                states[target] = nxt
            state = nxt
        return state

    async def close(self) -> None:
        await self.store.close()
