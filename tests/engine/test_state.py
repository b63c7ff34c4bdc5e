"""ContactState: JSON round trips and the window history the plan's `count` reads."""

from __future__ import annotations

import orjson

from nudge.engine.actions import Action
from nudge.engine.decision import Context, Decision
from nudge.engine.events import Event
from nudge.engine.state import ContactState, Timer
from nudge.engine.timers import arm_event_timer


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


def test_an_identify_s_traits_stay_its_fields_through_json_and_are_kept_once() -> None:
    traits = {"email": "ann@corp.com"}
    state = ContactState("c-1")
    state.last_inbound = Event(
        "i1", "identify", "c-1", 10.0, "1970-01-01T00:00:10Z", traits, traits
    )
    data = state.to_dict()
    assert "properties" not in data["last_inbound"]  # written once, as traits
    back = ContactState.from_dict(orjson.loads(orjson.dumps(data)))
    assert back == state
    assert back.last_inbound is not None
    assert back.last_inbound.properties["email"] == "ann@corp.com"


def test_to_json_is_the_json_of_to_dict_every_time() -> None:
    state = ContactState("c-1", traits={"stage": "lead"}, seen={"e1": 10.0})
    event = Event("e1", "cart_updated", "c-1", 10.0, "1970-01-01T00:00:10Z", {"value": 3.5})
    state.timers["nfb:r"] = Timer("nfb:r", "c-1", "r", "nfb", 70.0, {"event": event})
    first = state.to_json()
    assert first == orjson.dumps(state.to_dict())
    state.traits["score"] = 5  # the state changes, its timer does not
    second = state.to_json()
    assert second == orjson.dumps(state.to_dict())
    assert ContactState.from_dict(orjson.loads(second)) == state


def test_rearming_at_the_same_time_saves_the_newer_event() -> None:
    state = ContactState("c-1")
    ctx = Context(state, 10.0, Decision())
    older = Event("e1", "cart_updated", "c-1", 10.0, "1970-01-01T00:00:10Z", {"n": 1})
    newer = Event("e2", "cart_updated", "c-1", 10.0, "1970-01-01T00:00:10Z", {"n": 2})
    arm_event_timer(ctx, "r", "nfb", 70.0, older)
    state.to_json()  # the timer's JSON is made here
    arm_event_timer(ctx, "r", "nfb", 70.0, newer)
    saved = orjson.loads(state.to_json())["timers"]["nfb:r"]
    assert saved["due"] == 70.0
    assert saved["payload"]["event"]["$event"]["id"] == "e2"


def test_holds_anything_besides_the_id() -> None:
    assert not ContactState("c-1").holds_anything()
    assert ContactState("c-1", seen={"e1": 1.0}).holds_anything()
    assert ContactState("c-1", merged_into="c-2").holds_anything()
    assert ContactState("c-1", engagement={"email": 1.0}).holds_anything()


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
