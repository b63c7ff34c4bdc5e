"""A `ContactStore` wrapper that holds saves back until `commit()`.

The streaming worker runs the engine, publishes the actions, and only then saves the states
(`commit()`): a crash in between leaves the events unseen, so they run again and give the
same actions (same ids), which the publisher recognises as already published. Saving first
would lose them: the events would be seen, with their actions never sent.

Until committed, the held states are what `load` returns (so a runner that saves and loads
again within one batch sees its own changes), and `due_timers` answers from them for their
contacts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from .partitioning import partition_for
from .state import ContactState, ContactStore, TimerRef, TimerSummary

__all__ = ["WriteBehindStore"]


class WriteBehindStore:
    """Wraps a store; `save` is held in memory until `commit()` (or dropped by `discard()`)."""

    def __init__(self, store: ContactStore) -> None:
        self.store = store
        self.partitions = store.partitions
        self._held: dict[str, ContactState] = {}

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

    async def save(self, states: Iterable[ContactState]) -> None:
        held = self._held
        for state in states:
            held[state.contact_id] = state

    async def commit(self) -> int:
        """Save every held state in one call; return how many."""
        held, self._held = self._held, {}
        if held:
            await self.store.save(held.values())
        return len(held)

    def discard(self) -> None:
        """Forget the held states (after a failure: they are recomputed on the next try)."""
        self._held = {}

    async def due_timers(
        self, now: float, shards: Collection[int] | None = None, limit: int = 1000
    ) -> list[TimerRef]:
        held = self._held
        refs = await self.store.due_timers(now, shards, limit)
        if not held:
            return refs
        out = [ref for ref in refs if ref.contact_id not in held]
        for cid, state in held.items():
            if shards is not None and partition_for(cid, self.partitions) not in shards:
                continue
            out.extend(TimerRef(t.due, cid, t.id) for t in state.timers.values() if t.due <= now)
        out.sort()
        return out[:limit]

    async def timer_summary(self, shards: Collection[int] | None = None) -> TimerSummary:
        return await self.store.timer_summary(shards)

    async def close(self) -> None:
        self._held = {}
        await self.store.close()
