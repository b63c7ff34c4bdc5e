"""Saves held back until commit: loads and due timers see the held states meanwhile."""

from __future__ import annotations

from nudge.engine.events import Event
from nudge.engine.partitioning import partition_for
from nudge.engine.state import ContactState, Timer
from nudge.engine.stores.memory import MemoryStore
from nudge.engine.write_behind import WriteBehindStore

T0 = 1_795_000_000.0


def timer(cid: str, tid: str, due: float) -> Timer:
    e = Event("e1", "cart_updated", cid, due - 60, "2026-11-17T00:00:00Z", {})
    return Timer(tid, cid, "r", "nfb", due, {"event": e})


async def test_saves_wait_for_commit() -> None:
    inner = MemoryStore(4)
    store = WriteBehindStore(inner)
    state = ContactState("c1", traits={"stage": "prospect"})
    state.timers["t1"] = timer("c1", "t1", T0 + 10)
    await store.save([state])
    assert store.pending == 1
    assert await inner.due_timers(T0 + 100) == []
    assert (await store.load(["c1"]))["c1"] is state
    assert [r.timer_id for r in await store.due_timers(T0 + 100)] == ["t1"]
    shard = partition_for("c1", 4)
    assert await store.due_timers(T0 + 100, shards=[(shard + 1) % 4]) == []
    assert await store.commit() == 1
    assert store.pending == 0
    assert [r.timer_id for r in await inner.due_timers(T0 + 100)] == ["t1"]


async def test_held_state_hides_its_stale_index_entries() -> None:
    inner = MemoryStore(4)
    state = ContactState("c1", traits={"stage": "prospect"})
    state.timers["t1"] = timer("c1", "t1", T0 + 10)
    await inner.save([state])
    store = WriteBehindStore(inner)
    changed = ContactState("c1", traits={"stage": "prospect"})  # the timer fired: gone
    await store.save([changed])
    assert await store.due_timers(T0 + 100) == []
    store.discard()
    assert [r.timer_id for r in await store.due_timers(T0 + 100)] == ["t1"]


class CountingStore(MemoryStore):
    """Counts the index queries that reach the store."""

    def __init__(self, partitions: int) -> None:
        super().__init__(partitions)
        self.queries = 0

    async def due_timers(self, now, shards=None, limit=1000):  # type: ignore[no-untyped-def]
        self.queries += 1
        return await super().due_timers(now, shards, limit)


async def test_timer_window_answers_from_memory_and_follows_commits() -> None:
    inner = CountingStore(4)
    store = WriteBehindStore(inner, lookahead=10.0)
    owned = {0, 1, 2, 3}
    state = ContactState("c1", traits={"stage": "prospect"})
    state.timers["t1"] = timer("c1", "t1", T0 + 5)
    await inner.save([state])
    assert [r.timer_id for r in await store.due_timers(T0 + 6, owned)] == ["t1"]
    assert await store.due_timers(T0 + 1, owned) == []
    assert inner.queries == 1  # one query for the whole window
    # A timer armed and saved through this store shows without asking the store again.
    later = ContactState("c2", traits={"stage": "prospect"})
    later.timers["t2"] = timer("c2", "t2", T0 + 7)
    await store.save([later])
    await store.commit()
    fired = ContactState("c1", traits={"stage": "prospect"})  # t1 fired: gone
    await store.save([fired])
    await store.commit()
    assert [r.timer_id for r in await store.due_timers(T0 + 8, owned)] == ["t2"]
    assert inner.queries == 1
    # Past the window, or for other shards, it asks again.
    assert await store.due_timers(T0 + 20, owned) != []
    assert inner.queries == 2
    await store.due_timers(T0 + 20, {0})
    assert inner.queries == 3
    store.invalidate()
    await store.due_timers(T0 + 20, {0})
    assert inner.queries == 4
