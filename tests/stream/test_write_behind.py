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
