"""The `ContactStore` contract: every store passes these tests.

Use it by subclassing `StoreContract` in a test module that defines an async `store` fixture
yielding a fresh, empty store:

    from store_contract import StoreContract

    class TestMemoryStore(StoreContract):
        @pytest.fixture
        async def store(self) -> AsyncIterator[ContactStore]:
            s = MemoryStore(partitions=4)
            yield s
            await s.close()
"""

from __future__ import annotations

import asyncio
import math

import orjson
import pytest

from nudge.engine.actions import Action
from nudge.engine.events import Event
from nudge.engine.partitioning import partition_for
from nudge.engine.state import ContactState, ContactStore, Timer, TimerRef

T0 = 1_795_000_000.0  # 2026-11-17T...Z


def _event(eid: str, cid: str, ts: float, **props: object) -> Event:
    return Event(eid, "cart_updated", cid, ts, "2026-11-17T00:00:00Z", dict(props))


def _timer(cid: str, tid: str, due: float, kind: str = "wait") -> Timer:
    payload: dict[str, object]
    if kind == "wait":
        payload = {"bindings": {"event": _event("e1", cid, due - 60)}, "step": 2, "trigger": "e1"}
    elif kind == "deliver":
        action = Action("a-1", "r", cid, "email", "2026-11-17T08:00:00Z", template="t", to="x@y")
        payload = {"action": action}
    else:
        payload = {"event": _event("e1", cid, due - 60)}
    return Timer(tid, cid, "r", kind, due, payload)


def _full_state(cid: str) -> ContactState:
    state = ContactState(cid)
    state.traits.update(
        {"email": "ann@example.se", "score": 5, "stage": "lead", "segments": ["vip"], "n": None}
    )
    state.seen["e1"] = T0
    state.firings["r"] = [T0, T0 + 1]
    state.sends["email"] = [T0]
    state.windows["w1"] = [T0 - 5, T0]
    state.pending["fb"] = [_event("e0", cid, T0, cart_id="k1")]
    state.timers["wait:r:e1:2"] = _timer(cid, "wait:r:e1:2", T0 + 3600)
    state.timers["deliver:a-1"] = _timer(cid, "deliver:a-1", T0 + 7200, "deliver")
    state.timers["nfb:r"] = _timer(cid, "nfb:r", T0 + 60, "nfb")
    state.last_send["r"] = T0
    state.engagement["email"] = T0
    state.last_inbound = _event("e1", cid, T0)
    return state


def _claims(*pairs: tuple[str, str]) -> list[Event]:
    """Events of (id, contact id)."""
    return [_event(eid, cid, T0) for eid, cid in pairs]


def _as_data(state: ContactState) -> object:
    return orjson.loads(orjson.dumps(state.to_dict()))


class StoreContract:
    """The behaviour every `ContactStore` must have. Subclasses supply the `store` fixture."""

    async def test_is_a_contact_store(self, store: ContactStore) -> None:
        assert isinstance(store, ContactStore)
        assert store.partitions >= 1

    async def test_load_of_unknown_contacts_gives_fresh_states(self, store: ContactStore) -> None:
        states = await store.load(["c-1", "c-2"])
        assert set(states) == {"c-1", "c-2"}
        for cid, state in states.items():
            assert state.contact_id == cid
            assert state.is_new
            assert _as_data(state) == _as_data(ContactState(cid))

    async def test_load_creates_nothing(self, store: ContactStore) -> None:
        states = await store.load(["c-1"])
        states["c-1"].traits["email"] = "x@y"  # changed but never saved
        states["c-1"].timers["t"] = _timer("c-1", "t", T0)
        summary = await store.timer_summary()
        assert summary.pending == 0
        assert await store.due_timers(math.inf) == []

    async def test_save_then_load_round_trips(self, store: ContactStore) -> None:
        await store.save([_full_state("c-1"), _full_state("c-2")])
        loaded = await store.load(["c-1", "c-2", "c-3"])
        assert _as_data(loaded["c-1"]) == _as_data(_full_state("c-1"))
        assert _as_data(loaded["c-2"]) == _as_data(_full_state("c-2"))
        assert loaded["c-3"].is_new
        pending = loaded["c-1"].pending["fb"][0]
        assert (pending.id, pending.ts, pending.properties) == ("e0", T0, {"cart_id": "k1"})
        deliver = loaded["c-1"].timers["deliver:a-1"].payload["action"]
        assert isinstance(deliver, Action)
        assert deliver.template == "t"

    async def test_save_after_writes_once_that_is_done(self, store: ContactStore) -> None:
        gate = asyncio.Event()

        async def acknowledged() -> None:
            await gate.wait()

        ids = [f"c-{n}" for n in range(200)]
        saving = asyncio.ensure_future(store.save([_full_state(c) for c in ids], acknowledged()))
        await asyncio.sleep(0.05)
        assert not saving.done()
        assert (await store.load(["c-7"]))["c-7"].is_new
        assert await store.due_timers(math.inf) == []
        gate.set()
        await saving
        loaded = await store.load(ids)
        assert all(_as_data(loaded[c]) == _as_data(_full_state(c)) for c in ids)

    async def test_save_after_that_fails_writes_nothing(self, store: ContactStore) -> None:
        async def broker_error() -> None:
            raise RuntimeError("not acknowledged")

        with pytest.raises(RuntimeError, match="not acknowledged"):
            await store.save([_full_state("c-1")], broker_error())
        assert (await store.load(["c-1"]))["c-1"].is_new
        assert await store.due_timers(math.inf) == []

    async def test_save_replaces_the_whole_state(self, store: ContactStore) -> None:
        await store.save([_full_state("c-1")])
        state = (await store.load(["c-1"]))["c-1"]
        del state.traits["email"]
        state.seen.clear()
        state.merged_into = "c-9"
        await store.save([state])
        again = (await store.load(["c-1"]))["c-1"]
        assert "email" not in again.traits
        assert again.seen == {}
        assert again.merged_into == "c-9"

    async def test_due_timers_in_due_order_up_to_now_inclusive(self, store: ContactStore) -> None:
        await store.save([_full_state("c-1"), _full_state("c-2")])
        due = await store.due_timers(T0 + 3600)
        assert due == [
            TimerRef(T0 + 60, "c-1", "nfb:r"),
            TimerRef(T0 + 60, "c-2", "nfb:r"),
            TimerRef(T0 + 3600, "c-1", "wait:r:e1:2"),
            TimerRef(T0 + 3600, "c-2", "wait:r:e1:2"),
        ]
        assert await store.due_timers(T0 + 59) == []

    async def test_due_timers_respects_the_limit(self, store: ContactStore) -> None:
        await store.save([_full_state(f"c-{i}") for i in range(5)])
        due = await store.due_timers(math.inf, limit=7)
        assert len(due) == 7
        everything = await store.due_timers(math.inf, limit=100)
        assert due == everything[:7]
        assert len(everything) == 15
        assert everything == sorted(everything)

    async def test_due_timers_does_not_consume(self, store: ContactStore) -> None:
        await store.save([_full_state("c-1")])
        first = await store.due_timers(math.inf)
        assert await store.due_timers(math.inf) == first

    async def test_a_timer_removed_from_the_state_leaves_the_index(
        self, store: ContactStore
    ) -> None:
        await store.save([_full_state("c-1")])
        state = (await store.load(["c-1"]))["c-1"]
        del state.timers["nfb:r"]
        await store.save([state])
        ids = [ref.timer_id for ref in await store.due_timers(math.inf)]
        assert ids == ["wait:r:e1:2", "deliver:a-1"]
        state.timers.clear()
        await store.save([state])
        assert await store.due_timers(math.inf) == []
        assert (await store.timer_summary()).pending == 0

    async def test_a_rearmed_timer_moves_in_the_index(self, store: ContactStore) -> None:
        await store.save([_full_state("c-1")])
        state = (await store.load(["c-1"]))["c-1"]
        state.timers["nfb:r"] = _timer("c-1", "nfb:r", T0 + 10_000, "nfb")
        await store.save([state])
        refs = await store.due_timers(math.inf)
        assert [r.timer_id for r in refs] == ["wait:r:e1:2", "deliver:a-1", "nfb:r"]
        assert refs[-1].due == T0 + 10_000
        # and back again: no stale or doubled entry
        state.timers["nfb:r"] = _timer("c-1", "nfb:r", T0 + 60, "nfb")
        await store.save([state])
        state.timers["nfb:r"] = _timer("c-1", "nfb:r", T0 + 10_000, "nfb")
        await store.save([state])
        refs = await store.due_timers(math.inf)
        assert [r.timer_id for r in refs] == ["wait:r:e1:2", "deliver:a-1", "nfb:r"]

    async def test_saves_told_what_was_armed_index_the_same(self, store: ContactStore) -> None:
        # `armed`: the timers armed or moved since the load, as the runner passes them
        first = _full_state("c-1")
        await store.save([first], armed=list(first.timers.values()))
        state = (await store.load(["c-1"]))["c-1"]
        later = _timer("c-1", "nfb:r", T0 + 10_000, "nfb")
        state.timers["nfb:r"] = later  # moved
        del state.timers["deliver:a-1"]  # gone
        state.timers["wait:r:e2:1"] = _timer("c-1", "wait:r:e2:1", T0 + 120)  # new
        await store.save([state], armed=[later, state.timers["wait:r:e2:1"]])
        refs = await store.due_timers(math.inf)
        assert refs == [
            TimerRef(T0 + 120, "c-1", "wait:r:e2:1"),
            TimerRef(T0 + 3600, "c-1", "wait:r:e1:2"),
            TimerRef(T0 + 10_000, "c-1", "nfb:r"),
        ]
        assert await store.timer_summary() == (3, T0 + 120)

    async def test_a_timer_armed_then_dropped_before_the_save_is_not_due(
        self, store: ContactStore
    ) -> None:
        state = ContactState("c-1")
        timer = _timer("c-1", "wait:r:e1:2", T0 + 60)
        state.timers[timer.id] = timer
        del state.timers[timer.id]
        await store.save([state], armed=[timer])
        assert await store.due_timers(math.inf) == []

    async def test_timers_move_between_contacts(self, store: ContactStore) -> None:
        anon = _full_state("a-7")
        known = ContactState("c-42")
        await store.save([anon, known])
        anon, known = (await store.load(["a-7", "c-42"])).values()
        for tid, timer in list(anon.timers.items()):
            del anon.timers[tid]
            moved = Timer(f"{tid}~", "c-42", timer.rule, timer.kind, timer.due, timer.payload)
            known.timers[moved.id] = moved
        anon.merged_into = "c-42"
        await store.save([anon, known])
        refs = await store.due_timers(math.inf)
        assert {r.contact_id for r in refs} == {"c-42"}
        assert len(refs) == 3

    async def test_shards_select_contacts_by_partition(self, store: ContactStore) -> None:
        ids = [f"c-{i}" for i in range(40)]
        await store.save([_full_state(cid) for cid in ids])
        parts = store.partitions
        for shard in range(parts):
            refs = await store.due_timers(math.inf, shards=[shard], limit=10_000)
            expected = sorted(c for c in ids if partition_for(c, parts) == shard)
            assert sorted({r.contact_id for r in refs}) == expected
            summary = await store.timer_summary([shard])
            assert summary.pending == 3 * len(expected)
        every = await store.due_timers(math.inf, shards=range(parts), limit=10_000)
        assert every == await store.due_timers(math.inf, limit=10_000)

    async def test_timer_summary(self, store: ContactStore) -> None:
        assert await store.timer_summary() == (0, None)
        await store.save([_full_state("c-1"), _full_state("c-2")])
        assert await store.timer_summary() == (6, T0 + 60)

    async def test_states_of_one_save_are_independent(self, store: ContactStore) -> None:
        one, two = _full_state("c-1"), ContactState("c-2")
        two.traits["email"] = "bo@example.se"
        await store.save([one, two])
        loaded = await store.load(["c-2"])
        assert loaded["c-2"].traits == {"email": "bo@example.se"}
        assert loaded["c-2"].timers == {}

    async def test_the_first_claim_of_an_event_id_holds_it(self, store: ContactStore) -> None:
        week = 7 * 86400.0
        first = _claims(("e1", "c-1"), ("e2", "c-2"), ("e1", "c-2"))
        assert await store.claim_ids(first, week, T0) == {2}  # e1 is c-1's
        later = _claims(("e1", "c-1"), ("e2", "c-1"), ("e3", "c-3"), ("e1", "c-3"))
        assert await store.claim_ids(later, week, T0 + 60) == {1, 3}
        assert await store.claim_ids([], week, T0 + 60) == set()

    async def test_a_claim_by_the_holder_is_no_duplicate(self, store: ContactStore) -> None:
        # a batch handled again after a crash claims its ids again: the contact's own
        # `seen` decides whether it was handled
        week = 7 * 86400.0
        assert await store.claim_ids(_claims(("e1", "c-1")), week, T0) == set()
        again = _claims(("e1", "c-1"), ("e1", "c-1"))
        assert await store.claim_ids(again, week, T0) == set()

    async def test_a_claim_holds_for_the_ttl_after_its_event_then_the_id_is_free(
        self, store: ContactStore
    ) -> None:
        day = 86400.0
        first = [_event("e1", "c-1", T0)]
        assert await store.claim_ids(first, day, T0) == set()
        within = [_event("e1", "c-2", T0 + day - 1)]
        assert await store.claim_ids(within, day, T0 + day - 1) == {0}
        # a day and more after c-1's event (event time, whatever the clock): c-3 takes it
        later = [_event("e1", "c-3", T0 + day + 1), _event("e1", "c-1", T0 + day + 2)]
        assert await store.claim_ids(later, day, T0) == {1}
