"""Per-rule figures in `Decision.rule_counts`, through the engine API."""

from __future__ import annotations

from typing import Any

from nudge.dsl import Source, load_sources
from nudge.dsl.plan import RuleSet
from nudge.engine.engine import Engine
from nudge.engine.events import Event, format_time, parse_time
from nudge.engine.state import ContactState

T = parse_time("2026-11-20T10:00:00Z")


def ruleset(text: str) -> RuleSet:
    loaded = load_sources([Source("t.rules", text)])
    assert loaded.ruleset is not None, [str(d) for d in loaded.diagnostics]
    return loaded.ruleset


def event(eid: str, typ: str, contact: str, ts: float, **props: Any) -> Event:
    return Event(eid, typ, contact, ts, format_time(ts), props)


RULES = ruleset(
    """
policy sms limit 1 per 1d

rule welcome
    when signed_up
    then
        send email "welcome"
        send sms "hi"
        send webhook "crm"
    goal order_completed within 3d
end

rule once_only
    when signed_up
    then
        send email "once"
        audience add "new"
    limit 1 per 1d
end

rule night
    when signed_up
    if contact.night == true
    then
        send email "late"
    quiet hours 22:00-07:00
end
"""
)


def test_fired_sent_and_suppressed_are_counted_per_rule() -> None:
    engine = Engine(RULES)
    state = ContactState("c1")
    state.traits.update({"email": "a@example.se", "consent_email": True, "consent_sms": False})
    d = engine.handle(event("e1", "signed_up", "c1", T), state, T)
    assert d.rule_counts == {
        ("welcome", "fired"): 1,
        ("welcome", "sent"): 2,  # the email and the webhook
        ("welcome", "suppressed:no_consent"): 1,  # the sms
        ("once_only", "fired"): 1,
        ("once_only", "sent"): 1,
        ("once_only", "suppressed:no_consent"): 1,  # audience add without consent_ads
    }
    sent = sum(n for (_, outcome), n in d.rule_counts.items() if outcome == "sent")
    assert sent == len(d.actions)


def test_limited_firings_count_each_action_they_hold_back() -> None:
    engine = Engine(RULES)
    state = ContactState("c1")
    state.traits.update({"email": "a@example.se", "consent_email": True})
    engine.handle(event("e1", "signed_up", "c1", T), state, T)
    d = engine.handle(event("e2", "signed_up", "c1", T + 60), state, T + 60)
    assert ("once_only", "fired") not in d.rule_counts
    assert d.rule_counts[("once_only", "suppressed:limited")] == 2
    assert d.rule_counts[("welcome", "fired")] == 1


def test_caps_and_missing_addresses_are_suppressions_of_the_rule() -> None:
    engine = Engine(RULES)
    state = ContactState("c1")
    state.traits.update({"consent_email": True, "consent_sms": True, "phone": "+4670"})
    d = engine.handle(event("e1", "signed_up", "c1", T), state, T)
    assert d.rule_counts[("welcome", "suppressed:no_address")] == 1  # no email address
    assert d.rule_counts[("welcome", "sent")] == 2  # the sms and the webhook
    d = engine.handle(event("e2", "signed_up", "c1", T + 3600), state, T + 3600)
    assert d.rule_counts[("welcome", "suppressed:capped")] == 1  # one sms a day


def test_a_deferred_send_counts_as_sent_when_it_goes_out() -> None:
    engine = Engine(RULES)
    state = ContactState("c1")
    state.traits.update({"email": "a@example.se", "consent_email": True, "night": True})
    late = parse_time("2026-11-20T23:00:00Z")
    d = engine.handle(event("e1", "signed_up", "c1", late), state, late)
    assert d.rule_counts[("night", "fired")] == 1
    assert ("night", "sent") not in d.rule_counts
    (timer,) = [t for t in state.timers.values() if t.rule == "night"]
    d = engine.fire(timer, state, timer.due)
    assert d.rule_counts == {("night", "sent"): 1}
    assert [a.template for a in d.actions] == ["late"]


def test_a_goal_conversion_is_counted_for_the_converting_rule() -> None:
    engine = Engine(RULES)
    state = ContactState("c1")
    state.traits.update({"email": "a@example.se", "consent_email": True})
    engine.handle(event("e1", "signed_up", "c1", T), state, T)
    d = engine.handle(event("e2", "order_completed", "c1", T + 3600), state, T + 3600)
    assert d.rule_counts == {("welcome", "converted"): 1}
    assert len(d.conversions) == 1
