"""Consent, `send best`, limits, channel caps with priority order, and quiet hours."""

from __future__ import annotations

import pytest
from conftest import Replay, at, ev, identify

SEND_BEST = """
rule nudge
    when ping
    then
        send best "hello"
end
"""


def test_email_needs_consent_email_exactly_true(replay: Replay) -> None:
    rules = """
rule hello
    when ping
    then
        send email "hello"
end
"""
    r = replay(
        rules,
        [
            identify("i1", "yes", at("09:00"), email="y@x.se", consent_email=True),
            identify("i2", "no", at("09:00"), email="n@x.se", consent_email=False),
            identify("i3", "str", at("09:00"), email="s@x.se", consent_email="true"),
            identify("i4", "none", at("09:00"), email="0@x.se"),
            *(ev(f"e{c}", "ping", c, at("10:00")) for c in ("yes", "no", "str", "none")),
        ],
        "--trace",
    )
    assert [a["contact_id"] for a in r.actions()] == ["yes"]
    assert [(x["contact_id"], x["suppressed"]) for x in r.suppressed()] == [
        ("no", "no_consent"),
        ("str", "no_consent"),
        ("none", "no_consent"),
    ]
    assert r.summary()["suppressed"] == "3 (no_consent 3)"


def test_sms_needs_consent_sms(replay: Replay) -> None:
    rules = """
rule hello
    when ping
    then
        send sms "hello"
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), phone="+1", consent_email=True),
            ev("e1", "ping", "c1", at("10:00")),
        ],
    )
    assert r.actions() == []
    assert r.summary()["suppressed"] == "1 (no_consent 1)"


@pytest.mark.parametrize(
    ("traits", "engaged", "expected"),
    [
        ({"consent_email": True}, [], ("email", "a@x.se")),
        ({"consent_sms": True}, [], ("sms", "+46")),
        ({"consent_email": True, "consent_sms": True}, [], ("email", "a@x.se")),
        ({"consent_email": True, "consent_sms": True}, ["sms_clicked"], ("sms", "+46")),
        (
            {"consent_email": True, "consent_sms": True},
            ["sms_clicked", "email_opened"],
            ("email", "a@x.se"),
        ),
        ({"consent_email": False, "consent_sms": True}, ["email_clicked"], ("sms", "+46")),
    ],
)
def test_send_best_picks_the_consented_channel_engaged_with_last(
    replay: Replay, traits: dict[str, bool], engaged: list[str], expected: tuple[str, str]
) -> None:
    events = [identify("i1", "c1", at("09:00"), email="a@x.se", phone="+46", **traits)]
    events += [ev(f"g{i}", kind, "c1", at(f"09:{10 + i}")) for i, kind in enumerate(engaged)]
    events.append(ev("e1", "ping", "c1", at("10:00")))
    r = replay(SEND_BEST, events)
    (action,) = r.actions()
    assert (action["kind"], action["to"]) == expected
    assert action["template"] == "hello"


def test_send_best_picks_the_consented_channel_the_contact_has_an_address_for(
    replay: Replay,
) -> None:
    both = {"consent_email": True, "consent_sms": True}
    events = [
        identify("i1", "phone_only", at("09:00"), phone="+46701", **both),
        identify("i2", "email_only", at("09:00"), email="e@x.se", **both),
        identify("i3", "neither", at("09:00"), **both),
        *(ev(f"e{c}", "ping", c, at("10:00")) for c in ("phone_only", "email_only", "neither")),
    ]
    r = replay(SEND_BEST, events, "--trace")
    assert [(a["contact_id"], a["kind"], a["to"]) for a in r.actions()] == [
        ("phone_only", "sms", "+46701"),
        ("email_only", "email", "e@x.se"),
    ]
    assert [(x["contact_id"], x["kind"], x["suppressed"]) for x in r.suppressed()] == [
        ("neither", "email", "no_address")  # no address either way: email, on the tie
    ]


def test_an_address_that_is_not_text_is_no_address(replay: Replay) -> None:
    rules = """
rule hello
    when ping
    then
        send email "hello" to ping.to
end
"""
    events = [
        identify("i1", "c1", at("09:00"), consent_email=True),
        ev("e1", "ping", "c1", at("10:00"), to="a@x.se"),
        ev("e2", "ping", "c1", at("10:01"), to={"a": 1}),
        ev("e3", "ping", "c1", at("10:02"), to=42),
        ev("e4", "ping", "c1", at("10:03"), to=" "),
    ]
    r = replay(rules, events, "--trace")
    assert [a["to"] for a in r.actions()] == ["a@x.se"]
    assert [(x["to"], x["suppressed"]) for x in r.suppressed()] == [(None, "no_address")] * 3


def test_a_limited_firing_s_preview_shows_no_address_that_is_not_text(replay: Replay) -> None:
    rules = """
rule hello
    when ping
    then
        send email "hello" to ping.to
    limit 1 per 1d
end
"""
    events = [
        identify("i1", "c1", at("09:00"), consent_email=True),
        ev("e1", "ping", "c1", at("10:00"), to="a@x.se"),
        ev("e2", "ping", "c1", at("10:01"), to=42),
    ]
    r = replay(rules, events, "--trace")
    assert [(x["to"], x["suppressed"]) for x in r.suppressed()] == [(None, "limited")]


def test_send_best_without_consent_is_suppressed_as_email(replay: Replay) -> None:
    r = replay(SEND_BEST, [ev("e1", "ping", "c1", at("10:00"))], "--trace")
    (x,) = r.suppressed()
    assert (x["kind"], x["suppressed"]) == ("email", "no_consent")


def test_limit_n_per_window(replay: Replay) -> None:
    rules = """
rule hello
    when ping
    then
        send webhook "hook"
        set contact.pinged = true
    limit 2 per 1h
end
"""
    times = ["10:00", "10:20", "10:40", "11:00", "11:10", "12:30"]
    r = replay(rules, [ev(f"e{i}", "ping", "c1", at(t)) for i, t in enumerate(times)], "--trace")
    # 10:00 and 10:20 fire; 10:40 is the third in an hour; at 11:00 the 10:00 one has left the
    # window (exactly 1h old), so it fires; 11:10 is the third with 10:20 and 11:00.
    fired = [a["at"] for a in r.actions()]
    assert fired == [at("10:00"), at("10:20"), at("11:00"), at("12:30")]
    limited = [x["at"] for x in r.suppressed("limited")]
    assert limited == [at("10:40"), at("11:10")]
    assert all(x["kind"] == "webhook" for x in r.suppressed())
    assert len(r.records("trait")) == 1  # a limited firing runs no steps


def test_a_limited_firing_without_actions_is_traced(replay: Replay) -> None:
    rules = """
rule points
    when ping
    then
        score += 1
    limit 1 per 1h
end
"""
    times = ["10:00", "10:20", "11:30"]
    r = replay(rules, [ev(f"e{i}", "ping", "c1", at(t)) for i, t in enumerate(times)], "--trace")
    assert [(x["rule"], x["at"], x["event_id"]) for x in r.records("limited")] == [
        ("points", at("10:20"), "e1")
    ]
    assert [x["to"] for x in r.records("score")] == [1, 2]


def test_once_means_once_ever(replay: Replay) -> None:
    rules = """
rule hello
    when ping
    then
        send webhook "hook"
    once
end
"""
    r = replay(rules, [ev(f"e{d}", "ping", "c1", at("10:00", day=d)) for d in (1, 2, 30)])
    assert [a["at"] for a in r.actions()] == [at("10:00", day=1)]
    assert r.summary()["suppressed"] == "2 (limited 2)"


def test_a_limit_counts_firings_whatever_their_sends_became(replay: Replay) -> None:
    rules = """
rule hello
    when ping
    then
        send email "hello"
    once
end
"""
    r = replay(
        rules,
        [
            ev("e1", "ping", "c1", at("10:00")),  # fires; the email has no consent
            identify("i1", "c1", at("10:30"), email="a@x.se", consent_email=True),
            ev("e2", "ping", "c1", at("11:00")),  # limited
        ],
    )
    assert r.actions() == []
    assert r.summary()["suppressed"] == "2 (limited 1, no_consent 1)"


def test_a_firing_whose_condition_fails_does_not_count(replay: Replay) -> None:
    rules = """
rule hello
    when ping
    if contact.ready
    then
        send webhook "hook"
    once
end
"""
    r = replay(
        rules,
        [
            ev("e1", "ping", "c1", at("10:00")),
            identify("i1", "c1", at("10:30"), ready=True),
            ev("e2", "ping", "c1", at("11:00")),
        ],
    )
    assert [a["at"] for a in r.actions()] == [at("11:00")]


def test_policy_cap_goes_to_the_higher_priority_rule(replay: Replay) -> None:
    rules = """
policy email limit 1 per 1d

rule a_low
    when order_completed
    then
        send email "low"
end

rule b_high
    when order_completed
    then
        send email "high"
    priority 10
end

rule c_mid_b
    when order_completed
    then
        send email "mid_b"
    priority 5
end

rule c_mid_a
    when order_completed
    then
        send email "mid_a"
    priority 5
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), email="a@x.se", consent_email=True),
            ev("e1", "order_completed", "c1", at("10:00")),
            ev("e2", "order_completed", "c1", at("10:00", day=21)),  # exactly a day later
        ],
        "--trace",
    )
    assert [a["template"] for a in r.actions()] == ["high", "high"]
    capped = [x["template"] for x in r.suppressed("capped")]
    assert capped == ["mid_a", "mid_b", "low"] * 2


def test_policy_caps_count_per_channel_and_contact(replay: Replay) -> None:
    rules = """
policy webhook limit 2 per 1h
policy audience limit 1 per 1h

rule hook
    when ping
    then
        send webhook "h"
        audience remove "x"
        audience remove "y"
end
"""
    r = replay(
        rules,
        [
            ev("e1", "ping", "c1", at("10:00")),
            ev("e2", "ping", "c1", at("10:10")),
            ev("e3", "ping", "c2", at("10:10")),
            ev("e4", "ping", "c1", at("10:20")),
        ],
    )
    got = [(a["contact_id"], a["kind"], a["name"]) for a in r.actions()]
    assert got == [
        ("c1", "webhook", "h"),
        ("c1", "audience_remove", "x"),
        ("c1", "webhook", "h"),
        ("c2", "webhook", "h"),
        ("c2", "audience_remove", "x"),
    ]


QUIET = """
policy quiet hours 21:00-08:00

rule hello
    when ping
    then
        send email "hello"
        send webhook "hook"
end

rule daytime
    when pong
    then
        send sms "pong"
    quiet hours 12:00-13:00
end

rule anytime
    when pang
    then
        send email "pang"
    no quiet hours
end
"""


def _contact(tz: str | None = None) -> dict[str, object]:
    traits: dict[str, object] = {
        "email": "a@x.se",
        "consent_email": True,
        "phone": "+1",
        "consent_sms": True,
    }
    if tz is not None:
        traits["timezone"] = tz
    return identify("i1", "c1", "2026-01-01T00:00:00Z", **traits)


@pytest.mark.parametrize(
    ("tz", "when", "due"),
    [
        (None, "2026-11-20T22:00:00Z", "2026-11-21T08:00:00Z"),  # evening: next morning
        (None, "2026-11-20T03:00:00Z", "2026-11-20T08:00:00Z"),  # after midnight: same morning
        (None, "2026-11-20T21:00:00Z", "2026-11-21T08:00:00Z"),  # the start is inside
        (None, "2026-11-20T08:00:00Z", "2026-11-20T08:00:00Z"),  # the end is outside
        (None, "2026-11-20T20:59:59Z", "2026-11-20T20:59:59Z"),
        ("Europe/Stockholm", "2026-11-20T20:30:00Z", "2026-11-21T07:00:00Z"),  # 21:30 local
        ("Europe/Stockholm", "2026-11-20T19:30:00Z", "2026-11-20T19:30:00Z"),  # 20:30 local
        ("America/New_York", "2026-11-20T12:00:00Z", "2026-11-20T13:00:00Z"),  # 07:00 local
        ("Not/AZone", "2026-11-20T22:00:00Z", "2026-11-21T08:00:00Z"),  # unknown: UTC
        # Daylight saving starts in Stockholm on 2026-03-29 (02:00 -> 03:00): 08:00 local is
        # then 06:00 UTC, no longer 07:00.
        ("Europe/Stockholm", "2026-03-28T22:00:00Z", "2026-03-29T06:00:00Z"),
        # ... and ends on 2026-10-25 (03:00 -> 02:00): 08:00 local is 07:00 UTC again.
        ("Europe/Stockholm", "2026-10-24T21:00:00Z", "2026-10-25T07:00:00Z"),
    ],
)
def test_quiet_hours_defer_email_to_the_end_of_the_period(
    replay: Replay, tz: str | None, when: str, due: str
) -> None:
    r = replay(
        QUIET, [_contact(tz), ev("e1", "ping", "c1", when)], "--until", "2026-12-31T00:00:00Z"
    )
    assert [(a["kind"], a["at"]) for a in r.actions()] == sorted(
        [("email", due), ("webhook", when)], key=lambda x: x[1]
    )


def test_a_rule_has_its_own_quiet_hours_or_none(replay: Replay) -> None:
    r = replay(
        QUIET,
        [
            _contact(),
            ev("e1", "pong", "c1", at("12:30")),  # the rule's own period: 12:00-13:00
            ev("e2", "pong", "c1", at("23:00")),  # outside the rule's period; policy ignored
            ev("e3", "pang", "c1", at("23:30")),  # no quiet hours
        ],
        "--until",
        at("00:00", day=25),
    )
    got = [(a["kind"], a["at"]) for a in r.actions()]
    assert got == [("sms", at("13:00")), ("sms", at("23:00")), ("email", at("23:30"))]


def test_deferred_actions_are_pending_timers_until_due(replay: Replay) -> None:
    r = replay(QUIET, [_contact(), ev("e1", "ping", "c1", at("22:00"))])
    assert [a["kind"] for a in r.actions()] == ["webhook"]
    assert f"next due {at('08:00', day=21)}" in r.summary()["timers"]


def test_timers_due_at_one_instant_fire_in_priority_order(replay: Replay) -> None:
    # Rules fire in priority order, so a higher priority takes the cap: also when their
    # timers (`not followed by`, `inactive for`, the steps after a `wait`) fall due together.
    rules = """
policy email limit 1 per 1d

rule a_low_wait
    when cart_updated not followed by order_completed within 1h
    then
        send email "low"
    priority 1
end

rule b_high_wait
    when cart_updated not followed by order_completed within 1h
    then
        send email "high"
    priority 9
end

rule c_low_steps
    when signed_up
    then
        wait 1h
        send email "low_steps"
    priority 1
end

rule d_high_steps
    when signed_up
    then
        wait 1h
        send email "high_steps"
    priority 9
end
"""
    consent = {"email": "a@x.se", "consent_email": True}
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), **consent),
            identify("i2", "c2", at("09:00"), **consent),
            ev("e1", "cart_updated", "c1", at("10:00")),
            ev("e2", "signed_up", "c2", at("10:00")),
        ],
        "--until",
        at("12:00"),
    )
    assert [(a["contact_id"], a["template"]) for a in r.actions()] == [
        ("c1", "high"),
        ("c2", "high_steps"),
    ]


def test_entered_rules_take_their_turn_among_the_event_s_rules_by_priority(
    replay: Replay,
) -> None:
    # The order enters `vip`; `entered vip` and the order's own rule fire by priority, and two
    # segments entered at once fire their rules by priority, not by declaration order.
    rules = """
policy email limit 1 per 1d
policy sms limit 1 per 1d

segment vip = count(order_completed within 365d) >= 1
segment s1 = contact.x > 1
segment s2 = contact.x > 2

rule a_order
    when order_completed
    then
        send email "order"
    priority 99
end

rule b_vip
    when entered vip
    then
        send email "vip"
    priority 9
end

rule c_s1
    when entered s1
    then
        send sms "s1"
    priority 1
end

rule d_s2
    when entered s2
    then
        send sms "s2"
    priority 9
end
"""
    consent = {"email": "a@x.se", "consent_email": True, "phone": "+4670", "consent_sms": True}
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), **consent),
            ev("e1", "order_completed", "c1", at("10:00")),
            identify("i2", "c2", at("09:00"), **consent),
            identify("i3", "c2", at("10:00"), x=5),
        ],
    )
    assert [(a["contact_id"], a["template"]) for a in r.actions()] == [
        ("c1", "order"),
        ("c2", "s2"),
    ]


def test_the_channel_cap_counts_a_deferred_email_when_it_goes_out(replay: Replay) -> None:
    rules = """
policy email limit 1 per 1d
policy quiet hours 21:00-08:00

rule a_night
    when night_ping
    then
        send email "night"
    exit on cancel_ping
end

rule b_now
    when late_ping
    then
        send email "late"
    no quiet hours
end
"""
    consent = {"email": "a@x.se", "consent_email": True}
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), **consent),
            identify("i2", "c2", at("09:00"), **consent),
            # c1: "night" goes out at 08:00 on the 21st; "late" at 23:00 the same day would
            # make two emails within a day
            ev("e1", "night_ping", "c1", at("22:00")),
            ev("e2", "late_ping", "c1", at("23:00", day=21)),
            # c2: "night" is cancelled before it goes out, so "late" fits
            ev("e3", "night_ping", "c2", at("22:00")),
            ev("e4", "cancel_ping", "c2", at("23:00")),
            ev("e5", "late_ping", "c2", at("09:00", day=21)),
        ],
        "--trace",
        "--until",
        at("00:00", day=23),
    )
    sent = [(a["contact_id"], a["template"], a["at"]) for a in r.actions()]
    assert sent == [("c1", "night", at("08:00", day=21)), ("c2", "late", at("09:00", day=21))]
    assert [(a["contact_id"], a["template"]) for a in r.suppressed("capped")] == [("c1", "late")]


def test_sends_deferred_to_one_instant_go_out_as_they_were_decided(replay: Replay) -> None:
    rules = """
policy quiet hours 21:00-08:00

rule evening
    when ping
    then
        send email "first"
        send sms "second"
        send email "third"
end
"""
    r = replay(
        rules,
        [
            _contact(),
            ev("e1", "ping", "c1", at("22:00")),
            ev("e2", "ping", "c1", at("23:00")),
        ],
        "--until",
        at("12:00", day=21),
    )
    assert [(a["template"], a["at"]) for a in r.actions()] == [
        (template, at("08:00", day=21))
        for _ in ("e1", "e2")
        for template in ("first", "second", "third")
    ]
    assert len({a["id"] for a in r.actions()}) == 6


def test_a_suppressed_action_is_traced_at_when_it_would_have_been_due(replay: Replay) -> None:
    rules = """
policy quiet hours 21:00-08:00
policy sms limit 1 per 1d

rule evening
    when ping
    then
        send sms "kept"
        send sms "capped"
        send email "unconsented"
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), phone="+1", consent_sms=True, email="a@x.se"),
            ev("e1", "ping", "c1", at("22:00")),
        ],
        "--trace",
        "--until",
        at("12:00", day=21),
    )
    morning = at("08:00", day=21)
    assert [(a["template"], a["at"]) for a in r.actions()] == [("kept", morning)]
    assert [(x["template"], x["suppressed"], x["at"]) for x in r.suppressed()] == [
        ("capped", "capped", morning),
        ("unconsented", "no_consent", morning),
    ]


def test_an_event_id_another_contact_holds_is_a_duplicate(replay: Replay) -> None:
    rules = """
rule hello
    when ping
    then
        send webhook "crm"
end
"""
    r = replay(
        rules,
        [
            ev("same", "ping", "c1", at("10:00")),
            ev("same", "ping", "c2", at("10:00")),
            ev("other", "ping", "c2", at("10:01")),
            ev("same", "ping", "c2", at("10:02")),
        ],
    )
    assert [(a["contact_id"], a["at"]) for a in r.actions()] == [
        ("c1", at("10:00")),
        ("c2", at("10:01")),
    ]
    assert "4 read, 2 processed, 2 duplicates" in r.stderr


def test_an_id_another_contact_had_long_ago_is_free_again(replay: Replay) -> None:
    rules = 'rule hello\n    when ping\n    then\n        send webhook "crm"\nend\n'
    r = replay(
        rules,
        [
            ev("x", "ping", "c1", at("10:00", month=9)),
            ev("x", "ping", "c2", at("10:00", month=11)),  # two months on: past the window
        ],
    )
    assert [a["contact_id"] for a in r.actions()] == ["c1", "c2"]


def test_a_deferred_send_needs_consent_still_when_it_goes_out(replay: Replay) -> None:
    rules = """
policy quiet hours 21:00-08:00
policy email limit 1 per 1d

rule evening
    when ping
    then
        send email "late"
    no quiet hours
end

rule night
    when pong
    then
        send email "deferred"
end
"""
    r = replay(
        rules,
        [
            _contact(),
            ev("p1", "pong", "c1", at("22:00")),
            {**ev("u1", "unsubscribed", "c1", at("23:00")), "origin": "connector"},
            identify("i2", "c1", at("08:30", day=21), consent_email=True),  # again, later
            ev("p2", "ping", "c1", at("09:00", day=21)),  # the cap was given back
        ],
        "--trace",
        "--until",
        at("12:00", day=21),
    )
    assert [(a["template"], a["at"]) for a in r.actions()] == [("late", at("09:00", day=21))]
    assert [(x["template"], x["suppressed"], x["at"]) for x in r.suppressed()] == [
        ("deferred", "no_consent", at("08:00", day=21))
    ]


def test_rules_of_one_priority_fire_by_name_alphabetically_case_aside(replay: Replay) -> None:
    rules = "".join(
        f'rule {name}\n    when ping\n    then\n        send webhook "{name}"\nend\n\n'
        for name in ("Beta", "alpha", "Alpha", "gamma")
    )
    r = replay(rules, [ev("e1", "ping", "c1", at("10:00"))])
    assert [a["name"] for a in r.actions()] == ["Alpha", "alpha", "Beta", "gamma"]
