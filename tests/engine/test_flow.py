"""Exits, goals, internal events (stage, score, segments, unsubscribed) and merges."""

from __future__ import annotations

from conftest import Replay, at, ev, identify

SERIES = """
rule series
    when signed_up
    then
        send webhook "one"
        wait 1d
        send webhook "two"
        wait 1d
        send webhook "three"
    exit on order_completed where order_completed.value > 10
end
"""


def test_exit_cancels_pending_waits(replay: Replay) -> None:
    r = replay(
        SERIES,
        [
            ev("e1", "signed_up", "c1", at("10:00")),
            ev("e2", "signed_up", "c2", at("10:00")),
            ev("e3", "order_completed", "c1", at("12:00", day=21), value=50),
            ev("e4", "order_completed", "c2", at("12:00", day=21), value=5),  # no match
        ],
        "--until",
        at("00:00", day=30),
        "--trace",
    )
    got = [(a["contact_id"], a["name"]) for a in r.actions()]
    assert got == [("c1", "one"), ("c2", "one"), ("c1", "two"), ("c2", "two"), ("c2", "three")]
    (exit_record,) = r.records("exit")
    assert (exit_record["rule"], exit_record["contact_id"], exit_record["cancelled"]) == (
        "series",
        "c1",
        1,
    )
    assert r.summary()["timers"] == "none pending"


def test_exit_also_cancels_sends_deferred_by_quiet_hours(replay: Replay) -> None:
    rules = """
policy quiet hours 21:00-08:00

rule reminder
    when cart_updated
    then
        send email "cart"
    exit on order_completed
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), email="a@x.se", consent_email=True),
            ev("e1", "cart_updated", "c1", at("22:00")),
            ev("e2", "order_completed", "c1", at("23:00")),
        ],
        "--until",
        at("12:00", day=21),
    )
    assert r.actions() == []


CART_SERIES = """
policy quiet hours 21:00-08:00

rule cart_series
    when cart_updated as cart where cart.value > 0
    then
        send webhook "first" with { cart: cart.cart_id }
        wait 1h
        send email "second" with { cart: cart.cart_id }
        wait 1d
        send email "third" with { cart: cart.cart_id }
    exit on order_completed where order_completed.cart_id == cart.cart_id
end
"""


def _carts_then_order(first: str, order: str) -> list[dict[str, object]]:
    return [
        identify("i1", "c1", at("09:00"), email="a@x.se", consent_email=True),
        ev("e1", "cart_updated", "c1", at(first), cart_id="k1", value=10),
        ev("e2", "cart_updated", "c1", at(first[:3] + "05"), cart_id="k2", value=20),
        ev("e3", "order_completed", "c1", at(order), cart_id="k1", value=10),
    ]


def test_an_exit_that_names_the_trigger_s_event_ends_only_the_runs_it_matches(
    replay: Replay,
) -> None:
    r = replay(CART_SERIES, _carts_then_order("10:00", "10:30"), "--until", at("00:00", day=25))
    got = [(a["name"] if a["kind"] == "webhook" else a["template"], a["data"]) for a in r.actions()]
    assert got == [
        ("first", {"cart": "k1"}),
        ("first", {"cart": "k2"}),
        ("second", {"cart": "k2"}),
        ("third", {"cart": "k2"}),
    ]


def test_such_an_exit_ends_a_run_s_send_deferred_by_quiet_hours(replay: Replay) -> None:
    # both carts at 22:00: their second emails wait for 08:00; the order at 23:30 is k1's
    r = replay(CART_SERIES, _carts_then_order("22:00", "23:30"), "--until", at("09:00", day=21))
    assert [(a["template"], a["data"], a["at"]) for a in r.actions("email")] == [
        ("second", {"cart": "k2"}, at("08:00", day=21))
    ]


def test_an_exit_may_name_the_first_event_of_a_not_followed_by(replay: Replay) -> None:
    rules = """
rule reminder
    when cart_updated as cart
         not followed by order_completed where order_completed.cart_id == cart.cart_id within 1h
    then
        send webhook "reminder" with { cart: cart.cart_id }
        wait 1d
        send webhook "again" with { cart: cart.cart_id }
    exit on order_completed where order_completed.cart_id == cart.cart_id
end
"""
    r = replay(
        rules,
        [
            ev("e1", "cart_updated", "c1", at("10:00"), cart_id="k1"),
            ev("e2", "order_completed", "c1", at("12:00"), cart_id="k9"),  # another cart
            ev("e3", "order_completed", "c1", at("13:00"), cart_id="k1"),
        ],
        "--until",
        at("00:00", day=23),
    )
    assert [a["name"] for a in r.actions()] == ["reminder"]


GOALS = """
rule first
    when signed_up
    then
        send webhook "welcome"
    goal order_completed where order_completed.value > 0 within 7d
end

rule second
    when cart_updated
    then
        send webhook "cart"
    goal order_completed within 7d
end

rule silent
    when cart_updated
    then
        set contact.x = 1
    goal order_completed within 7d
end
"""


def test_the_latest_rule_that_sent_gets_the_conversion(replay: Replay) -> None:
    r = replay(
        GOALS,
        [
            ev("e1", "signed_up", "c1", at("10:00")),
            ev("e2", "cart_updated", "c1", at("11:00")),
            ev("e3", "order_completed", "c1", at("12:00"), value=5),
            ev("e4", "order_completed", "c1", at("13:00"), value=5),
        ],
        "--trace",
    )
    conversions = [(x["rule"], x["event_id"], x["at"]) for x in r.records("conversion")]
    # last touch: each order goes to the latest rule that sent, the second one too
    assert conversions == [("second", "e3", at("12:00")), ("second", "e4", at("13:00"))]
    assert r.summary()["conversions"] == "2"


def test_an_email_deferred_by_quiet_hours_has_sent_when_it_goes_out(replay: Replay) -> None:
    # The goal's "after the rule sent something" counts from the deferred email's `at`; one
    # cancelled before it went out never sent.
    rules = """
policy quiet hours 21:00-08:00

rule daytime
    when signed_up
    then
        send email "a"
    goal order_completed within 7d
end

rule nightly
    when late_ping
    then
        send email "d"
    goal order_completed within 7d
end

rule offer
    when offer_ping
    then
        send email "o"
    exit on cancel_ping
    goal order_completed within 7d
end
"""
    consent = identify("i1", "c1", at("09:00"), email="a@x.se", consent_email=True)
    r = replay(
        rules,
        [
            consent,
            ev("e1", "signed_up", "c1", at("10:00")),
            ev("e2", "late_ping", "c1", at("22:00")),
            ev("o1", "order_completed", "c1", at("23:00")),  # before "d" went out
            ev("o2", "order_completed", "c1", at("09:00", day=21)),  # after it did
            ev("e3", "offer_ping", "c1", at("22:00", day=21)),
            ev("x1", "cancel_ping", "c1", at("23:00", day=21)),  # "o" never goes out
            ev("o3", "order_completed", "c1", at("23:30", day=21)),
        ],
        "--trace",
        "--until",
        at("12:00", day=22),
    )
    conversions = [(x["rule"], x["event_id"]) for x in r.records("conversion")]
    assert conversions == [("daytime", "o1"), ("nightly", "o2"), ("nightly", "o3")]
    assert [(a["template"], a["at"]) for a in r.actions()] == [
        ("a", at("10:00")),
        ("d", at("08:00", day=21)),
    ]


def test_a_goal_outside_its_window_or_condition_does_not_count(replay: Replay) -> None:
    r = replay(
        GOALS,
        [
            ev("e1", "signed_up", "c1", at("10:00")),
            ev("e3", "signed_up", "c2", at("10:00")),
            ev("e5", "signed_up", "c3", at("10:00")),
            ev("e6", "order_completed", "c3", at("11:00"), value=0),  # where fails
            ev("e2", "order_completed", "c1", at("10:00", day=27), value=5),  # 7d + 0s: counts
            ev("e4", "order_completed", "c2", at("10:01", day=27), value=5),  # too late
        ],
    )
    assert r.summary()["conversions"] == "1"


def test_stage_and_score_changes_are_events_rules_trigger_on(replay: Replay) -> None:
    rules = """
rule lead
    when demo_requested
    then
        set contact.stage = "lead"
        score += 30
end

rule on_stage
    when stage_changed as s
    then
        send webhook "stage" with { from: s.from, to: s.to }
end

rule on_score
    when score_changed as s where s.to >= 30
    then
        send webhook "hot" with { from: s.from, to: s.to }
end
"""
    r = replay(rules, [ev("e1", "demo_requested", "c1", at("10:00"))], "--trace")
    got = [(a["name"], a["data"]) for a in r.actions()]
    assert got == [("stage", {"from": "prospect", "to": "lead"}), ("hot", {"from": 0, "to": 30})]
    assert [(x["from"], x["to"]) for x in r.records("stage")] == [("prospect", "lead")]


def test_identify_changing_the_stage_emits_stage_changed(replay: Replay) -> None:
    rules = """
rule on_stage
    when stage_changed as s
    then
        send webhook "stage" with { to: s.to }
end
"""
    r = replay(rules, [identify("i1", "c1", at("10:00"), stage="customer")])
    assert [a["data"] for a in r.actions()] == [{"to": "customer"}]


def test_segment_changes_emit_events_and_trace_records(replay: Replay) -> None:
    rules = """
segment hot = contact.score >= 10

rule views
    when page_viewed
    then
        score += 5
end

rule entered_hot
    when segment_entered as s
    then
        send webhook "entered" with { segment: s.segment, in_it: contact in hot }
end

rule left_hot
    when segment_left as s
    then
        send webhook "left" with { segment: s.segment }
end

rule cool
    when cooled
    then
        score -= 100
end
"""
    r = replay(
        rules,
        [
            ev("e1", "page_viewed", "c1", at("10:00")),
            ev("e2", "page_viewed", "c1", at("10:01")),
            ev("e3", "page_viewed", "c1", at("10:02")),
            ev("e4", "cooled", "c1", at("10:03")),
        ],
        "--trace",
    )
    got = [(a["name"], a["data"], a["at"]) for a in r.actions()]
    assert got == [
        ("entered", {"segment": "hot", "in_it": True}, at("10:01")),
        ("left", {"segment": "hot"}, at("10:03")),
    ]
    assert [(x["segment"], x["entered"]) for x in r.records("segment")] == [
        ("hot", True),
        ("hot", False),
    ]


def test_unsubscribed_clears_email_consent(replay: Replay) -> None:
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
            identify("i1", "c1", at("09:00"), email="a@x.se", consent_email=True),
            ev("e1", "ping", "c1", at("10:00")),
            {**ev("u1", "unsubscribed", "c1", at("10:30")), "origin": "connector"},
            ev("e2", "ping", "c1", at("11:00")),
        ],
        "--trace",
    )
    assert [a["at"] for a in r.actions()] == [at("10:00")]
    assert [x["suppressed"] for x in r.suppressed()] == ["no_consent"]
    assert [(x["field"], x["to"]) for x in r.records("trait")][-1] == ("consent_email", False)


def test_emitted_unsubscribed_and_engagement_events_do_what_they_do(replay: Replay) -> None:
    # No rule triggers on `unsubscribed` or `sms_clicked`: they act by themselves all the same.
    rules = """
rule opt_out
    when quit
    then
        emit unsubscribed {}
end

rule texted
    when tapped
    then
        emit sms_clicked {}
end

rule hello
    when ping
    then
        send best "hello"
end
"""
    consent = {"email": "a@x.se", "consent_email": True, "phone": "+1", "consent_sms": True}
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), **consent),
            identify("i2", "c2", at("09:00"), **consent),
            ev("q1", "quit", "c1", at("10:00")),
            ev("t1", "tapped", "c2", at("10:00")),
            ev("p1", "ping", "c1", at("11:00")),
            ev("p2", "ping", "c2", at("11:00")),
        ],
    )
    assert [(a["contact_id"], a["kind"]) for a in r.actions()] == [("c1", "sms"), ("c2", "sms")]


MERGE = """
rule views
    when page_viewed
    then
        score += 1
end

rule third_view
    when 3 page_viewed within 1d
    then
        send webhook "three" with { email: contact.email }
end

rule abandoned
    when cart_updated as cart not followed by order_completed within 1h
    then
        send webhook "cart" with { cart: cart.cart_id, email: contact.email }
end
"""


def test_identify_merges_the_anonymous_contact(replay: Replay) -> None:
    r = replay(
        MERGE,
        [
            identify("i0", "a-7", at("09:00"), utm="ads", country="SE"),
            ev("e1", "page_viewed", "a-7", at("10:00")),
            ev("e2", "page_viewed", "a-7", at("10:05")),
            ev("e3", "cart_updated", "a-7", at("10:10"), cart_id="k1"),
            identify("i1", "c-42", at("10:20"), anonymous_id="a-7", email="ann@x.se", country="NO"),
            ev("e4", "page_viewed", "c-42", at("10:25")),  # the third view: counters merged
            ev("e5", "page_viewed", "a-7", at("10:26")),  # routed to c-42
        ],
        "--until",
        at("12:00"),
        "--trace",
    )
    got = [(a["name"], a["contact_id"], a["data"]) for a in r.actions()]
    assert got == [
        ("three", "c-42", {"email": "ann@x.se"}),
        ("cart", "c-42", {"cart": "k1", "email": "ann@x.se"}),  # the pending timer moved
    ]
    assert r.actions()[1]["at"] == at("11:10")
    scores = [(x["contact_id"], x["to"]) for x in r.records("score")]
    assert scores == [("a-7", 1), ("a-7", 2), ("c-42", 2), ("c-42", 3), ("c-42", 4)]
    (merge,) = r.records("merge")
    assert (merge["contact_id"], merge["from"]) == ("c-42", "a-7")
    # the traits the merge brought, then the identify's own
    moved = [
        (x["field"], x["from"], x["to"])
        for x in r.records("trait")
        if x["contact_id"] == "c-42" and x["at"] == at("10:20")
    ]
    assert moved[: len(moved) - 2] == [
        ("country", None, "SE"),
        ("first_seen", at("10:20"), at("09:00")),  # the visitor was seen first
        ("utm", None, "ads"),
    ]
    assert moved[-2:] == [("email", None, "ann@x.se"), ("country", "SE", "NO")]


def test_merged_traits_the_known_contact_wins_and_identify_wins_over_both(
    replay: Replay,
) -> None:
    rules = """
rule show_me
    when ping
    then
        send webhook "me" with { utm: contact.utm, country: contact.country, plan: contact.plan, stage: contact.stage }
end
"""
    r = replay(
        rules,
        [
            identify("i0", "a-7", at("09:00"), utm="ads", country="SE", plan="free"),
            identify("i1", "c-42", at("09:30"), plan="pro", country="DK"),
            identify("i2", "c-42", at("10:00"), anonymous_id="a-7", country="NO"),
            ev("e1", "ping", "c-42", at("10:30")),
        ],
    )
    assert r.actions()[0]["data"] == {
        "utm": "ads",
        "country": "NO",
        "plan": "pro",
        "stage": "prospect",
    }


def test_a_merge_keeps_the_stage_further_along_the_lifecycle(replay: Replay) -> None:
    rules = """
rule lead
    when signed_up
    then
        set contact.stage = "lead"
end

rule customer
    when order_completed
    then
        set contact.stage = "customer"
end

rule partner
    when partner_joined
    then
        set contact.stage = "partner"
end

rule stage_moves
    when stage_changed
    then
        send webhook "stage" with { from: stage_changed.from, to: stage_changed.to }
end
"""
    r = replay(
        rules,
        [
            ev("s1", "signed_up", "c-1", at("09:00")),  # a lead
            ev("o1", "order_completed", "a-7", at("10:00")),  # the visitor bought
            identify("i1", "c-1", at("10:05"), anonymous_id="a-7"),
            ev("s2", "signed_up", "c-2", at("09:00")),  # a lead who is further along...
            ev("v1", "page_viewed", "a-8", at("10:00")),  # ...than a prospect visitor
            identify("i2", "c-2", at("10:05"), anonymous_id="a-8"),
            ev("p1", "partner_joined", "c-3", at("09:00")),  # a stage of the ruleset's own
            ev("o2", "order_completed", "a-9", at("10:00")),
            identify("i3", "c-3", at("10:05"), anonymous_id="a-9"),
        ],
    )
    moves = [(a["contact_id"], a["at"], a["data"]) for a in r.actions()]
    assert [m for m in moves if m[1] == at("10:05")] == [
        ("c-1", at("10:05"), {"from": "lead", "to": "customer"})
    ]


def test_a_new_known_contact_takes_the_visitors_stage(replay: Replay) -> None:
    rules = """
rule visitor
    when page_viewed
    then
        set contact.stage = "visitor"
end

rule show_me
    when ping
    then
        send webhook "me" with { stage: contact.stage, first_seen: contact.first_seen }
end
"""
    r = replay(
        rules,
        [
            ev("e1", "page_viewed", "a-7", at("09:00")),
            identify("i1", "c-42", at("10:00"), anonymous_id="a-7", email="x@y"),
            ev("e2", "ping", "c-42", at("10:30")),
        ],
    )
    assert r.actions()[0]["data"] == {"stage": "visitor", "first_seen": at("09:00")}


def test_rules_read_an_identify_s_traits_as_its_fields(replay: Replay) -> None:
    rules = """
rule corporate
    when identify as i where i.email endswith "@corp.com"
    then
        send webhook "corp" with { email: event.email, name: identify.first_name }
end
"""
    segment_identify = {
        "type": "identify",
        "messageId": "s1",
        "userId": "c-2",
        "timestamp": at("10:05"),
        "traits": {"email": "bo@corp.com", "first_name": "Bo"},
    }
    events = [
        identify("i1", "c-1", at("10:00"), email="ann@corp.com", first_name="Ann"),
        identify("i2", "c-3", at("10:01"), email="cy@home.se"),
        segment_identify,
    ]
    assert [a["data"] for a in replay(rules, events).actions()] == [
        {"email": "ann@corp.com", "name": "Ann"},
        {"email": "bo@corp.com", "name": "Bo"},
    ]


def test_identify_imports_first_seen_but_never_last_seen(replay: Replay) -> None:
    rules = """
rule show_me
    when ping
    then
        send webhook "me" with { first: contact.first_seen, last: contact.last_seen }
end
"""

    def ping(eid: str, contact: str, when: str) -> dict[str, object]:
        return {**ev(eid, "ping", contact, when), "inbound": False}  # moves no last_seen

    events = [
        ev("e1", "page_viewed", "c-1", at("09:00")),
        # last_seen is the engine's: the identify's own time, whatever it says
        identify("i1", "c-1", at("10:00"), last_seen="2020-01-01T00:00:00Z"),
        ping("p1", "c-1", at("11:00")),
        ping("p2", "c-2", at("10:00", day=21)),
        identify("i2", "c-2", at("09:00", day=22), first_seen="2025-03-01T08:00:00Z"),
        identify("i3", "c-2", at("09:30", day=22), first_seen="garbage"),  # not a time
        identify("i4", "c-2", at("09:40", day=22), first_seen=None),  # would delete it
        ping("p3", "c-2", at("10:00", day=22)),
    ]
    data = [a["data"] for a in replay(rules, events).actions()]
    assert data == [
        {"first": at("09:00"), "last": at("10:00")},
        {"first": at("10:00", day=21), "last": None},
        {"first": "2025-03-01T08:00:00Z", "last": at("09:40", day=22)},
    ]


def test_duplicate_ids_are_processed_once(replay: Replay) -> None:
    rules = """
rule hook
    when ping
    then
        send webhook "h"
end
"""
    r = replay(
        rules,
        [
            ev("e1", "ping", "c1", at("10:00")),
            ev("e1", "ping", "c1", at("10:05")),
            ev("e2", "ping", "c1", at("10:10")),
        ],
    )
    assert [a["at"] for a in r.actions()] == [at("10:00"), at("10:10")]
    assert r.summary()["events"].startswith("3 read, 2 processed, 1 duplicate,")


def test_count_in_a_condition_sees_the_current_event(replay: Replay) -> None:
    rules = """
rule third_order
    when order_completed
    if count(order_completed where order_completed.value >= 100 within 30d) == 3
    then
        send webhook "loyal"
end
"""
    r = replay(
        rules,
        [
            ev("o1", "order_completed", "c1", at("10:00", day=1), value=100),
            ev("o2", "order_completed", "c1", at("10:00", day=5), value=20),
            ev("o3", "order_completed", "c1", at("10:00", day=10), value=150),
            ev("o4", "order_completed", "c1", at("10:00", day=20), value=300),  # the third
            ev("o5", "order_completed", "c1", at("10:00", day=29), value=300),  # a fourth
        ],
    )
    assert [a["at"] for a in r.actions()] == [at("10:00", day=20)]
