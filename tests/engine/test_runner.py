"""The engine and runner through their Python API: decisions, dedup windows, timer order,
routing of merged contacts, and the clock."""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudge.dsl import Source, load_sources
from nudge.dsl.plan import RuleSet
from nudge.engine.clock import ManualClock, WallClock
from nudge.engine.delivery_rules import quiet_until, zone
from nudge.engine.engine import Engine
from nudge.engine.events import Event, format_time, parse_time
from nudge.engine.runner import Runner
from nudge.engine.state import ContactState
from nudge.engine.stores.memory import MemoryStore

T = parse_time("2026-11-20T10:00:00Z")


def ruleset(text: str) -> RuleSet:
    loaded = load_sources([Source("t.rules", text)])
    assert loaded.ruleset is not None, [str(d) for d in loaded.diagnostics]
    return loaded.ruleset


def event(eid: str, typ: str, contact: str, ts: float, **props: Any) -> Event:
    return Event(eid, typ, contact, ts, format_time(ts), props)


HOOK = ruleset(
    """
rule hook
    when ping as p
    then
        send webhook "h" with { n: p.n }
end

rule later
    when pong as p
    then
        wait 1h
        send webhook "later" with { n: p.n }
end
"""
)


def test_handle_returns_a_decision_and_mutates_the_state() -> None:
    engine = Engine(HOOK)
    state = ContactState("c1")
    d = engine.handle(event("e1", "ping", "c1", T, n=1), state, T)
    assert [a.name for a in d.actions] == ["h"]
    assert d.dirty and not d.duplicate
    assert state.traits["stage"] == "prospect"
    assert state.traits["first_seen"] == state.traits["last_seen"] == "2026-11-20T10:00:00Z"
    again = engine.handle(event("e1", "ping", "c1", T + 5, n=1), state, T + 5)
    assert again.duplicate and not again.dirty and again.actions == []


def test_ids_are_forgotten_after_the_dedup_window() -> None:
    engine = Engine(HOOK, dedup_seconds=3600)
    state = ContactState("c1")
    for i in range(200):  # enough new ids for the window to be pruned on the way
        engine.handle(event(f"x{i}", "ping", "c1", T + i * 60, n=i), state, T + i * 60)
    later = T + 200 * 60
    d = engine.handle(event("x0", "ping", "c1", later, n=0), state, later)
    assert not d.duplicate
    assert len(state.seen) < 200
    d = engine.handle(event("x199", "ping", "c1", later, n=0), state, later)
    assert d.duplicate


def test_a_timer_fires_once_and_only_while_armed() -> None:
    engine = Engine(HOOK)
    state = ContactState("c1")
    engine.handle(event("e1", "pong", "c1", T, n=7), state, T)
    (timer,) = state.timers.values()
    assert timer.due == T + 3600
    d = engine.fire(timer, state, timer.due)
    assert [(a.name, a.data, a.at) for a in d.actions] == [
        ("later", {"n": 7}, "2026-11-20T11:00:00Z")
    ]
    assert state.timers == {}
    assert engine.fire(timer, state, timer.due).actions == []


async def test_actions_come_out_in_due_order_across_contacts() -> None:
    runner = Runner(Engine(HOOK), MemoryStore(), ManualClock())
    out = await runner.process(
        [
            event("e1", "pong", "c1", T, n=1),  # its webhook is due at 11:00
            event("e2", "pong", "c2", T + 600, n=2),  # 11:10
            event("e3", "ping", "c3", T + 3600, n=3),  # 11:00, after the timer due then
            event("e4", "ping", "c3", T + 3900, n=4),  # 11:05
        ]
    )
    got = [(a.contact_id, a.name, a.at[11:16]) for a in out.actions]
    assert got == [("c3", "h", "11:00"), ("c1", "later", "11:00"), ("c3", "h", "11:05")]
    rest = await runner.advance(T + 2 * 3600)
    assert [(a.contact_id, a.name, a.at[11:16]) for a in rest.actions] == [("c2", "later", "11:10")]


async def test_batches_and_timer_chunks_do_not_change_the_order() -> None:
    events = [event(f"e{i}", "pong", f"c{i % 7}", T + i * 97, n=i) for i in range(60)]
    one = Runner(Engine(HOOK), MemoryStore(), ManualClock())
    whole = (await one.process(events)).actions + (await one.advance(T + 86400)).actions
    small = Runner(Engine(HOOK), MemoryStore(), ManualClock(), timer_batch=3)
    parts = []
    for i in range(0, len(events), 4):
        parts += (await small.process(events[i : i + 4])).actions
    parts += (await small.advance(T + 86400)).actions
    assert [a.to_json() for a in parts] == [a.to_json() for a in whole]
    assert small.stats.timers_fired == one.stats.timers_fired == 60


class CountingStore(MemoryStore):
    """A MemoryStore that counts its due-timer queries."""

    def __init__(self) -> None:
        super().__init__()
        self.queries = 0

    async def due_timers(self, *args: Any, **kwargs: Any) -> Any:
        self.queries += 1
        return await super().due_timers(*args, **kwargs)


async def test_more_timers_due_at_one_instant_than_a_query_returns() -> None:
    """At the end of quiet hours every deferred action falls due at once: the events around
    that instant still see them in due order, and the batch is not re-queried per event."""
    arming = [event(f"p{i}", "pong", f"c{i}", T + i * 1e-3, n=i) for i in range(40)]
    at_once = T + 3600  # every `later` timer falls due at 11:00 (to the millisecond)
    around = [event(f"q{i}", "ping", f"d{i}", at_once - 5 + i * 0.25, n=100 + i) for i in range(40)]
    whole = Runner(Engine(HOOK), MemoryStore(), ManualClock())
    await whole.process(arming)
    expected = (await whole.process(around)).actions
    store = CountingStore()
    chunked = Runner(Engine(HOOK), store, ManualClock(), timer_batch=8)
    await chunked.process(arming)
    store.queries = 0
    got = (await chunked.process(around)).actions
    assert [a.to_json() for a in got] == [a.to_json() for a in expected]
    names = [a.name for a in got]
    assert names.index("later") > 0 and names.count("later") == 40  # pings at 10:59:55 first
    assert store.queries <= 2 * (40 // 8 + 2)


async def test_events_of_a_merged_contact_go_to_the_known_one_in_later_batches() -> None:
    rules = ruleset(
        """
rule views
    when page_viewed
    then
        score += 1
end
"""
    )
    store = MemoryStore()
    runner = Runner(Engine(rules), store, ManualClock())
    await runner.process([event("e1", "page_viewed", "a-1", T)])
    known = Event("i1", "identify", "c-1", T + 60, format_time(T + 60), {}, {"email": "x"}, "a-1")
    await runner.process([known])
    await runner.process([event("e2", "page_viewed", "a-1", T + 120)])
    states = await store.load(["a-1", "c-1"])
    assert states["a-1"].merged_into == "c-1"
    assert states["a-1"].traits == {}
    assert states["c-1"].traits["score"] == 2
    assert "e2" in states["c-1"].seen
    # a replayed event of the anonymous contact is still recognised
    again = await runner.process([event("e1", "page_viewed", "a-1", T + 180)])
    assert runner.stats.duplicates == 1
    assert again.actions == []


async def test_late_events_are_handled_at_the_clock() -> None:
    rules = ruleset(
        """
rule hook
    when ping
    then
        send webhook "h"
end
"""
    )
    clock = ManualClock()
    runner = Runner(Engine(rules), MemoryStore(), clock)
    out = await runner.process([event("e1", "ping", "c1", T), event("e0", "ping", "c2", T - 3600)])
    assert [a.at for a in out.actions] == ["2026-11-20T10:00:00Z"] * 2
    assert clock.now() == T


def test_clocks() -> None:
    clock = ManualClock()
    assert clock.now() == -math.inf
    assert clock.observe(T) == T
    assert clock.observe(T - 10) == T  # never back
    assert clock.advance(T + 5) == T + 5
    wall = WallClock()
    assert abs(wall.observe(0.0) - wall.now()) < 5


@pytest.mark.parametrize(
    ("local", "tz", "start", "end", "expected"),
    [
        # spring forward in Stockholm: 02:00 -> 03:00 on 2026-03-29; a period ending at 02:30
        # local ends when the clocks jump past it (01:00 UTC)
        ("2026-03-29T00:30:00Z", "Europe/Stockholm", 60, 150, "2026-03-29T01:00:00Z"),
        # fall back: 03:00 -> 02:00 on 2026-10-25; 02:30 happens twice, the first one counts
        ("2026-10-24T23:30:00Z", "Europe/Stockholm", 60, 150, "2026-10-25T00:30:00Z"),
        ("2026-11-20T12:00:00Z", "UTC", 12 * 60, 13 * 60, "2026-11-20T13:00:00Z"),
        ("2026-11-20T13:00:00Z", "UTC", 12 * 60, 13 * 60, None),
        ("2026-11-20T23:59:59Z", "UTC", 22 * 60, 0, "2026-11-21T00:00:00Z"),
    ],
)
def test_quiet_until(local: str, tz: str, start: int, end: int, expected: str | None) -> None:
    got = quiet_until(parse_time(local), start, end, zone(tz))
    assert (None if got is None else format_time(got)) == expected


@given(
    st.integers(min_value=1_577_836_800, max_value=1_893_456_000),  # 2020 to 2030
    st.sampled_from(
        [
            "Europe/Stockholm",
            "America/New_York",
            "Australia/Adelaide",
            "Asia/Kathmandu",
            "Pacific/Chatham",
            "Australia/Lord_Howe",
            "America/St_Johns",
        ]
    ),
    st.integers(min_value=0, max_value=1439),
    st.integers(min_value=0, max_value=1439),
)
@settings(max_examples=500)
def test_quiet_until_agrees_with_the_local_time_of_the_zone(
    ts: int, name: str, start: int, end: int
) -> None:
    # one answer whether the zone's offset is remembered for the quarter hour or not
    tz = zone(name)
    got = quiet_until(ts, start, end, tz)
    assert (got is not None) == _quiet_at(ts, start, end, tz)
    assert quiet_until(ts, start, end, tz) == got  # and again, from what it remembered
    if got is not None:  # the end of the period: outside it
        assert got >= ts and not _quiet_at(got, start, end, tz)


def _quiet_at(ts: float, start: int, end: int, tz: tzinfo) -> bool:
    local = datetime.fromtimestamp(ts, tz)
    minute = local.hour * 60 + local.minute
    if start == end:
        return False
    return start <= minute < end if start < end else (minute >= start or minute < end)


def test_zone_falls_back_to_utc() -> None:
    assert zone(None) is zone("Not/AZone") is zone(42) is UTC
    assert quiet_until(
        parse_time("2026-11-20T22:00:00Z"), 21 * 60, 8 * 60, zone("Nope/Nope")
    ) == parse_time("2026-11-21T08:00:00Z")


async def test_one_event_after_more_due_timers_than_a_chunk_comes_after_them() -> None:
    runner = Runner(Engine(HOOK), MemoryStore(), ManualClock(), timer_batch=2)
    await runner.process([event(f"p{i}", "pong", f"c{i}", T + i, n=i) for i in range(5)])
    out = await runner.process([event("late", "ping", "z", T + 7200, n=9)])
    got = [(a.contact_id, a.name) for a in out.actions]
    assert got == [*((f"c{i}", "later") for i in range(5)), ("z", "h")]


async def test_a_contact_s_timers_of_one_instant_fire_together_across_chunks() -> None:
    # Three deferred emails per contact fall due at 08:00; queries return 5 timers at a
    # time, so a contact's three would be cut in two: each contact's still fire by priority.
    rules = "policy quiet hours 21:00-08:00\n" + "".join(
        f'rule {name}\n    when night\n    then\n        send email "{name}"\n'
        f"    priority {priority}\nend\n"
        for name, priority in (("a", 1), ("b", 9), ("c", 5))
    )
    runner = Runner(Engine(ruleset(rules)), MemoryStore(), ManualClock(), timer_batch=5)
    identify_at = parse_time("2026-11-20T20:00:00Z")
    night_at = parse_time("2026-11-20T22:00:00Z")
    events = []
    for i in range(4):
        cid = f"c{i}"
        traits = {"email": "x@y", "consent_email": True}
        events.append(
            Event(f"i{i}", "identify", cid, identify_at, format_time(identify_at), {}, traits)
        )
        events.append(event(f"n{i}", "night", cid, night_at))
    await runner.process(events)
    out = await runner.advance(parse_time("2026-11-21T09:00:00Z"))
    by_contact: dict[str, list[str]] = {}
    for a in out.actions:
        by_contact.setdefault(a.contact_id, []).append(a.template or "")
    assert by_contact == {f"c{i}": ["b", "c", "a"] for i in range(4)}
