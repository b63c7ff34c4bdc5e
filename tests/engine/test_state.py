"""ContactState: JSON round trips and the window history the plan's `count` reads."""

from __future__ import annotations

import orjson

from nudge.engine.actions import Action
from nudge.engine.events import Event
from nudge.engine.state import ContactState, Timer


def test_round_trip_through_json() -> None:
    state = ContactState("c-1")
    state.traits.update({"score": 3, "stage": "lead", "segments": []})
    event = Event("e1", "identify", "c-1", 10.0, "1970-01-01T00:00:10Z", {}, {"a": 1}, "a-1")
    emitted = Event("e2", "score_changed", "c-1", 11.0, "1970-01-01T00:00:11Z", {}, inbound=False)
    state.pending["r"] = [event]
    state.last_inbound = event
    action = Action("a-1", "r", "c-1", "email", "1970-01-01T08:00:00Z", template="t", to="x")
    state.timers["deliver:a-1"] = Timer(
        "deliver:a-1", "c-1", "r", "deliver", 5.0, {"action": action}
    )
    state.timers["wait:r:e2:1"] = Timer(
        "wait:r:e2:1",
        "c-1",
        "r",
        "wait",
        6.0,
        {"bindings": {"event": emitted}, "step": 1, "trigger": "e2"},
    )
    back = ContactState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))
    assert back == state
    assert back.timers["wait:r:e2:1"].payload["bindings"]["event"].inbound is False


def test_window_counts_are_inclusive_at_both_ends() -> None:
    state = ContactState("c-1")
    for ts in (100.0, 150.0, 200.0):
        state.add_to_window("w", ts, horizon=1000)
    assert state.count("w", 100, 200.0) == 3
    assert state.count("w", 99, 200.0) == 2
    assert state.count("w", 100, 150.0) == 2  # a later entry is not counted
    assert state.count("other", 100, 200.0) == 0


def test_window_keeps_late_events_sorted_and_prunes_past_the_horizon() -> None:
    state = ContactState("c-1")
    for ts in (100.0, 300.0, 200.0, 1000.0):
        state.add_to_window("w", ts, horizon=750)
    assert state.windows["w"] == [300.0, 1000.0]
