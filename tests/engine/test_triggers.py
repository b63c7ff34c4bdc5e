"""Each trigger kind, through `nudge replay` on rules written in the language."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from conftest import RanTests, Replay, at, ev, identify

from nudge.dsl import Source, load_sources
from nudge.engine.engine import Engine
from nudge.engine.events import Event, parse_event
from nudge.engine.state import ContactState

CONSENT = {"email": "ann@example.se", "consent_email": True}


def test_event_trigger_fires_on_each_matching_event(replay: Replay) -> None:
    rules = """
rule big_cart
    when cart_updated as cart where cart.value > 100
    then
        send webhook "crm" with { value: cart.value }
end
"""
    r = replay(
        rules,
        [
            ev("e1", "cart_updated", "c1", at("10:00"), value=120),
            ev("e2", "cart_updated", "c1", at("10:01"), value=50),
            ev("e3", "cart_updated", "c2", at("10:02"), value=300),
            ev("e4", "page_viewed", "c1", at("10:03"), value=500),
        ],
    )
    assert r.code == 0
    got = [(a["contact_id"], a["data"]["value"], a["at"]) for a in r.actions("webhook")]
    assert got == [("c1", 120, at("10:00")), ("c2", 300, at("10:02"))]


def test_followed_by_fires_on_the_second_event_within_the_window(replay: Replay) -> None:
    rules = """
rule viewed_then_bought
    when product_viewed as view followed by order_completed as order
         where order.product == view.product within 1h
    then
        send webhook "crm" with { product: view.product, order: order.order_id }
end
"""
    r = replay(
        rules,
        [
            ev("e1", "product_viewed", "c1", at("10:00"), product="p1"),
            ev("e2", "order_completed", "c1", at("10:30"), product="p2", order_id="o0"),
            ev("e3", "order_completed", "c1", at("10:40"), product="p1", order_id="o1"),
            ev("e4", "product_viewed", "c2", at("10:00"), product="p1"),
            ev("e5", "order_completed", "c2", at("11:00:01"), product="p1", order_id="o2"),
        ],
    )
    got = [(a["contact_id"], a["data"], a["at"]) for a in r.actions("webhook")]
    assert got == [("c1", {"product": "p1", "order": "o1"}, at("10:40"))]


def test_followed_by_window_is_inclusive(replay: Replay) -> None:
    rules = """
rule quick
    when signed_up followed by order_completed within 1h
    then
        send webhook "crm"
end
"""
    r = replay(
        rules,
        [
            ev("e1", "signed_up", "c1", at("10:00")),
            ev("e2", "order_completed", "c1", at("11:00")),  # exactly 1h later: counts
        ],
    )
    assert [a["at"] for a in r.actions("webhook")] == [at("11:00")]


def test_followed_by_fires_on_every_second_event_within_the_window(replay: Replay) -> None:
    """LANGUAGE.md: it fires "on an E2 ... that comes at most D after a matching E1"."""
    rules = """
rule pair
    when signed_up as s followed by order_completed within 1d
    then
        send webhook "crm" with { since: s.id }
end
"""
    r = replay(
        rules,
        [
            ev("e1", "signed_up", "c1", at("10:00")),
            ev("e2", "order_completed", "c1", at("11:00")),
            ev("e3", "order_completed", "c1", at("12:00")),
            ev("e4", "signed_up", "c1", at("13:00")),
            ev("e5", "order_completed", "c1", at("14:00")),
            ev("e6", "order_completed", "c1", at("13:00", day=21)),  # e4 exactly 1d before
            ev("e7", "order_completed", "c1", at("13:30", day=21)),  # none within 1d
        ],
    )
    got = [(a["at"], a["data"]["since"]) for a in r.actions("webhook")]
    assert got == [
        (at("11:00"), "e1"),
        (at("12:00"), "e1"),
        (at("14:00"), "e4"),  # the most recent first event
        (at("13:00", day=21), "e4"),
    ]


def test_not_followed_by_fires_after_the_wait(replay: Replay) -> None:
    rules = """
rule abandoned
    when cart_updated as cart not followed by order_completed
         where order_completed.cart_id == cart.cart_id within 1h
    then
        send email "cart_reminder" with { cart_id: cart.cart_id }
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), **CONSENT),
            identify("i2", "c2", at("09:00"), **CONSENT),
            ev("e1", "cart_updated", "c1", at("10:00"), cart_id="k1"),
            ev("e2", "cart_updated", "c2", at("10:00"), cart_id="k2"),
            ev("e3", "order_completed", "c2", at("10:30"), cart_id="k2"),
            ev("e4", "page_viewed", "c3", at("12:00")),
        ],
    )
    got = [(a["contact_id"], a["data"]["cart_id"], a["at"]) for a in r.actions("email")]
    assert got == [("c1", "k1", at("11:00"))]


def test_not_followed_by_ignores_a_second_event_that_does_not_match(replay: Replay) -> None:
    rules = """
rule abandoned
    when cart_updated as cart not followed by order_completed
         where order_completed.cart_id == cart.cart_id within 1h
    then
        send webhook "crm"
end
"""
    r = replay(
        rules,
        [
            ev("e1", "cart_updated", "c1", at("10:00"), cart_id="k1"),
            ev("e2", "order_completed", "c1", at("10:30"), cart_id="other"),
        ],
        "--until",
        at("12:00"),
    )
    assert [a["at"] for a in r.actions("webhook")] == [at("11:00")]


def test_not_followed_by_restarts_on_a_newer_first_event(replay: Replay) -> None:
    rules = """
rule abandoned
    when cart_updated as cart not followed by order_completed within 1h
    then
        send webhook "crm" with { value: cart.value }
end
"""
    r = replay(
        rules,
        [
            ev("e1", "cart_updated", "c1", at("10:00"), value=1),
            ev("e2", "cart_updated", "c1", at("10:45"), value=2),
        ],
        "--until",
        at("13:00"),
    )
    got = [(a["at"], a["data"]["value"]) for a in r.actions("webhook")]
    assert got == [(at("11:45"), 2)]


def test_not_followed_by_checks_if_at_the_end_of_the_wait(replay: Replay) -> None:
    rules = """
rule abandoned
    when cart_updated not followed by order_completed within 1h
    if contact.consent_email
    then
        send email "cart_reminder"
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), email="a@b.se"),
            ev("e1", "cart_updated", "c1", at("10:00")),
            identify("i2", "c1", at("10:30"), consent_email=True),  # consent came meanwhile
        ],
        "--until",
        at("12:00"),
    )
    assert [a["at"] for a in r.actions("email")] == [at("11:00")]


def test_not_followed_by_timer_waits_for_until(replay: Replay) -> None:
    rules = """
rule abandoned
    when cart_updated not followed by order_completed within 1h
    then
        send webhook "crm"
end
"""
    events = [ev("e1", "cart_updated", "c1", at("10:00"))]
    early = replay(rules, events)
    assert early.actions() == []
    assert "1 pending" in early.summary()["timers"]
    assert f"--until {at('11:00')}" in early.summary()["timers"]
    late = replay(rules, events, "--until", at("11:00"))  # due exactly at --until: fires
    assert [a["at"] for a in late.actions()] == [at("11:00")]
    assert late.summary()["timers"] == "none pending"


def test_repeated_fires_when_the_window_holds_exactly_n(replay: Replay) -> None:
    rules = """
rule pricing
    when 3 page_viewed where page_viewed.path startswith "/pricing" within 7d
    then
        send webhook "sales"
end
"""
    day = [1, 3, 4, 5, 20, 21, 27]
    events = [
        ev(f"e{d}", "page_viewed", "c1", at("10:00", day=d), path="/pricing/team") for d in day
    ]
    events.insert(2, ev("x1", "page_viewed", "c1", at("11:00", day=3), path="/blog"))
    r = replay(rules, events)
    # day 4 holds 3 (1, 3, 4); day 5 holds 4 in the last 7 days; day 27 holds 3 (20, 21, 27)
    assert [a["at"] for a in r.actions()] == [at("10:00", day=4), at("10:00", day=27)]


def test_repeated_window_is_inclusive(replay: Replay) -> None:
    rules = """
rule twice
    when 2 page_viewed within 1h
    then
        send webhook "sales"
end
"""
    r = replay(
        rules,
        [
            ev("e1", "page_viewed", "c1", at("10:00")),
            ev("e2", "page_viewed", "c1", at("11:00")),  # exactly 1h: both in the window
        ],
    )
    assert [a["at"] for a in r.actions()] == [at("11:00")]


def test_inactive_fires_after_the_last_inbound_event(replay: Replay) -> None:
    rules = """
rule quiet
    when inactive for 2h
    then
        send webhook "crm" with { last: event.event }
end
"""
    r = replay(
        rules,
        [
            ev("e1", "page_viewed", "c1", at("10:00")),
            ev("e2", "cart_updated", "c1", at("11:00")),
            ev("e3", "page_viewed", "c2", at("11:30")),
        ],
        "--until",
        at("20:00"),
    )
    got = [(a["contact_id"], a["at"], a["data"]["last"]) for a in r.actions()]
    assert got == [("c1", at("13:00"), "cart_updated"), ("c2", at("13:30"), "page_viewed")]


def test_inactive_ignores_events_that_are_not_inbound(replay: Replay) -> None:
    rules = """
rule quiet
    when inactive for 2h
    then
        send webhook "crm"
end

rule score_views
    when page_viewed
    then
        score += 1
end
"""
    r = replay(
        rules,
        [
            ev("e1", "page_viewed", "c1", at("10:00")),  # also emits score_changed
            {**ev("e2", "email_delivered", "c1", at("11:00")), "inbound": False},
            {**ev("e3", "email_sent", "c1", at("11:30")), "inbound": False},
        ],
        "--until",
        at("20:00"),
    )
    assert [a["at"] for a in r.actions()] == [at("12:00")]


def test_inactive_ignores_engine_and_delivery_event_types_without_a_flag(replay: Replay) -> None:
    """LANGUAGE.md: `inactive for` counts from the last event not emitted by the engine or
    the connectors; their event types are known, so hand-written input needs no flag."""
    rules = """
rule quiet
    when inactive for 2h
    then
        send webhook "crm"
end
"""
    r = replay(
        rules,
        [
            ev("e1", "page_viewed", "c1", at("10:00")),
            ev("e2", "email_sent", "c1", at("10:30")),
            ev("e3", "score_changed", "c1", at("11:00")),
            ev("e4", "email_bounced", "c1", at("11:30")),
            ev("e5", "page_viewed", "c2", at("10:00")),
            ev("e6", "email_opened", "c2", at("11:00")),  # tracking: the contact's own doing
            {**ev("e7", "page_viewed", "c3", at("10:00"))},
            {**ev("e8", "email_sent", "c3", at("11:00")), "inbound": True},  # said otherwise
        ],
        "--until",
        at("20:00"),
    )
    got = sorted((a["contact_id"], a["at"]) for a in r.actions())
    assert got == [("c1", at("12:00")), ("c2", at("13:00")), ("c3", at("13:00"))]


def test_inactive_ignores_events_with_an_origin(replay: Replay) -> None:
    rules = """
rule quiet
    when inactive for 2h
    then
        send webhook "crm"
end
"""
    r = replay(
        rules,
        [
            ev("e1", "page_viewed", "c1", at("10:00")),
            {**ev("e2", "email_delivered", "c1", at("11:00")), "origin": "connector"},
        ],
        "--until",
        at("20:00"),
    )
    assert [a["at"] for a in r.actions()] == [at("12:00")]


def test_inactive_fires_once(replay: Replay) -> None:
    rules = """
rule quiet
    when inactive for 1h
    then
        send webhook "crm"
end
"""
    r = replay(rules, [ev("e1", "page_viewed", "c1", at("10:00"))], "--until", at("10:00", day=25))
    assert len(r.actions()) == 1


def test_entered_and_left_segment(replay: Replay) -> None:
    rules = """
segment vip = contact.total_spent > 1000

rule welcome_vip
    when entered vip
    then
        send webhook "crm" with { why: event.event }
end

rule bye_vip
    when left vip
    then
        audience remove "vips"
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("10:00"), total_spent=500),
            identify("i2", "c1", at("11:00"), total_spent=1500),
            identify("i3", "c1", at("12:00"), total_spent=1600),
            identify("i4", "c1", at("13:00"), total_spent=10),
        ],
    )
    got = [(a["kind"], a["at"]) for a in r.actions()]
    assert got == [("webhook", at("11:00")), ("audience_remove", at("13:00"))]
    assert r.actions("webhook")[0]["data"] == {"why": "identify"}


def test_followed_by_fires_again_on_a_later_second_event(replay: Replay) -> None:
    rules = """
rule pair
    when page_viewed followed by cart_updated within 1h
    then
        send webhook "crm"
end
"""
    r = replay(
        rules,
        [
            ev("e1", "page_viewed", "c1", at("10:00")),
            ev("e2", "cart_updated", "c1", at("10:00")),
            ev("e3", "page_viewed", "c1", at("10:00")),
            ev("e4", "cart_updated", "c1", at("10:10")),
        ],
    )
    assert [a["at"] for a in r.actions()] == [at("10:00"), at("10:10")]


def test_segments_that_change_as_time_passes_are_entered_and_left_without_events(
    replay: Replay,
) -> None:
    rules = """
let lapse = 30
segment lapsed = days_since(contact.last_order_at) > lapse
segment active = count(page_viewed within 1d) >= 2
segment trial_over = contact.trial_ends_at <= now

rule winback
    when entered lapsed
    then
        send webhook "winback" with { why: event.event }
end

rule gone_quiet
    when left active
    then
        send webhook "quiet"
end

rule trial
    when entered trial_over
    then
        send webhook "trial"
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("10:00", day=1), last_order_at=at("10:00", day=1)),
            ev("e1", "page_viewed", "c2", at("10:00", day=1)),
            ev("e2", "page_viewed", "c2", at("12:00", day=1)),
            identify("i2", "c3", at("09:00", day=1), trial_ends_at=at("09:30", day=2)),
            ev("e3", "page_viewed", "c3", at("10:00", day=1)),
            # c4 orders again before 30 days are out: the check moves on
            identify("i3", "c4", at("10:00", day=1), last_order_at=at("10:00", day=1)),
            identify("i4", "c4", at("10:00", day=20), last_order_at=at("10:00", day=20)),
        ],
        "--until",
        at("00:00", day=31, month=12),
    )
    got = [(a["rule"], a["contact_id"], a["at"]) for a in r.actions()]
    assert got == [
        ("trial", "c3", at("09:30", day=2)),
        ("gone_quiet", "c2", at("10:00:01", day=2)),  # e1 counts up to 1d after it
        ("winback", "c1", at("10:00:01", day=1, month=12)),  # more than 30 days
        ("winback", "c4", at("10:00:01", day=20, month=12)),
    ]
    assert r.actions("webhook", "winback")[0]["data"] == {"why": "time_passed"}
    again = replay(rules, [], "--until", at("00:00", day=31, month=12))
    assert again.actions() == []


def test_a_constant_using_now_is_read_at_each_use(replay: Replay) -> None:
    rules = """
let cutoff = now - 7d
segment fresh = contact.signup_at > cutoff

rule welcome
    when entered fresh
    then
        send webhook "fresh" with { cutoff: cutoff }
end

rule stale
    when left fresh
    then
        send webhook "stale"
end
"""
    r = replay(
        rules,
        [identify("i1", "c1", at("10:00", day=20), signup_at=at("10:00", day=19))],
        "--until",
        at("00:00", day=1, month=12),
    )
    got = [(a["name"], a["at"], a["data"]) for a in r.actions()]
    assert got == [
        ("fresh", at("10:00", day=20), {"cutoff": at("10:00", day=13)}),
        ("stale", at("10:00", day=26), {}),  # signup_at > now - 7d no longer holds
    ]


def test_an_event_s_rules_see_the_segments_it_changed(replay: Replay) -> None:
    rules = """
segment loyal = count(purchase within 365d) >= 3

rule thanks
    when purchase
    if contact in loyal
    then
        send webhook "loyal_thanks"
end
"""
    events = [ev(f"e{i}", "purchase", "c1", at(f"1{i}:00")) for i in range(4)]
    r = replay(rules, events)
    assert [a["at"] for a in r.actions()] == [at("12:00"), at("13:00")]  # from the third


def test_a_segment_made_of_another_is_settled_at_once(replay: Replay) -> None:
    rules = """
segment big = contact.total > 1
segment also_big = contact in big
segment not_big = not (contact in big)

rule ping
    when ping
    then
        send webhook "segments" with { in: contact.segments }
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("10:00"), total=5),
            ev("p1", "ping", "c1", at("11:00")),
            identify("i2", "c1", at("12:00"), total=0),
            ev("p2", "ping", "c1", at("13:00")),
        ],
        "--trace",
    )
    assert [sorted(a["data"]["in"]) for a in r.actions()] == [["also_big", "big"], ["not_big"]]
    changes = [(x["at"], x["segment"], x["entered"]) for x in r.records("segment")]
    assert changes == [
        (at("10:00"), "big", True),
        (at("10:00"), "also_big", True),  # and never in not_big, not even for a moment
        (at("12:00"), "big", False),
        (at("12:00"), "also_big", False),
        (at("12:00"), "not_big", True),
    ]


def test_time_segments_coming_up_scaled_by_traits_and_sharing_a_window(replay: Replay) -> None:
    rules = """
segment renewing = contact.renew_at - now < 7d
segment trial_over = days_since(contact.trial_start) > contact.trial_days
segment two_weeks = days_since(contact.signup_at) / 7 >= 2
segment recent_buyer = count(order_completed within 30d) >= 1
segment any_buyer = count(order_completed within 90d) >= 1

rule remind_renewal
    when entered renewing
    then
        send webhook "renewing"
end

rule trial
    when entered trial_over
    then
        send webhook "trial_over"
end

rule fortnight
    when entered two_weeks
    then
        send webhook "two_weeks"
end

rule lapsing
    when left recent_buyer
    then
        send webhook "not_recent"
end

rule gone
    when left any_buyer
    then
        send webhook "not_a_buyer"
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("12:00", day=1, month=1), renew_at=at("12:00", day=1, month=3)),
            identify(
                "i2",
                "c2",
                at("12:00", day=1, month=1),
                trial_start=at("00:00", day=1, month=1),
                trial_days=3,
            ),
            identify(
                "i3", "c3", at("12:00", day=1, month=1), signup_at=at("12:00", day=1, month=1)
            ),
            ev("o1", "order_completed", "c4", at("12:00", day=1, month=1)),
        ],
        "--until",
        at("00:00", day=1, month=6),
    )
    got = sorted((a["contact_id"], a["name"], a["at"]) for a in r.actions())
    assert got == [
        ("c1", "renewing", at("12:00:01", day=22, month=2)),  # less than 7 days before
        ("c2", "trial_over", at("00:00:01", day=4, month=1)),
        ("c3", "two_weeks", at("12:00", day=15, month=1)),
        ("c4", "not_a_buyer", at("12:00:01", day=1, month=4)),  # 90 days
        ("c4", "not_recent", at("12:00:01", day=31, month=1)),  # 30 days, the same window
    ]


def test_given_traits_in_a_test_start_time_segments(
    nudge_test: Callable[[str], RanTests],
) -> None:
    ran = nudge_test(
        """
segment lapsed = days_since(contact.last_order_at) > 30

rule winback
    when entered lapsed
    then
        send webhook "winback"
end

test "a lapsed customer from the start"
    given contact c1 { last_order_at: "2026-01-01T23:30:00Z" }
    at 2026-01-01T23:30:00Z c1 page_viewed
    expect at 2026-01-31T23:30:01Z c1 webhook "winback"
end
"""
    )
    assert ran.code == 0, ran.stdout


def test_a_date_without_a_time_starts_a_time_segment_as_the_condition_reads_it(
    replay: Replay,
) -> None:
    rules = """
segment due = days_since(contact.renewal_date) > 3

rule remind
    when entered due
    then
        send webhook "due"
end
"""
    r = replay(
        rules,
        [identify("i1", "c1", at("10:00"), renewal_date="2026-11-20")],
        "--until",
        at("00:00", day=30),
    )
    assert [a["at"] for a in r.actions()] == [at("00:00:01", day=23)]  # midnight UTC + 3 days


def test_a_segment_on_the_activity_times_changes_with_each_inbound_event(
    replay: Replay,
) -> None:
    # `last_seen` moves with every inbound event without counting as a change of the
    # contact's data: such a segment is still evaluated at each event
    rules = """
segment returning = contact.last_seen != contact.first_seen

rule welcome_back
    when entered returning
    then
        send webhook "returning"
end
"""
    r = replay(
        rules,
        [
            ev("e1", "page_viewed", "c1", at("10:00")),
            ev("e2", "page_viewed", "c1", at("10:00")),
            ev("e3", "page_viewed", "c1", at("11:00")),
        ],
    )
    assert [a["at"] for a in r.actions()] == [at("11:00")]


def test_a_ruleset_with_a_new_segment_evaluates_it_at_the_next_event() -> None:
    # Another engine (a reloaded ruleset) does not trust the segments the first one left:
    # a contact already over the threshold enters the new segment at its next event.
    before = load_sources(
        [Source("a.rules", "rule r\n    when ping\n    then\n        score += 5\nend\n")]
    )
    after = load_sources(
        [
            Source(
                "a.rules",
                "segment warm = contact.score >= 5\n"
                "rule r\n    when ping\n    then\n        score += 5\nend\n"
                'rule hello\n    when entered warm\n    then\n        send webhook "warm"\nend\n',
            )
        ]
    )
    assert before.ruleset is not None and after.ruleset is not None
    state = ContactState("c1")
    first = _event("e1", "ping", "2026-11-20T10:00:00Z")
    Engine(before.ruleset).handle(first, state, first.ts)
    assert state.traits["score"] == 5 and state.traits["segments"] == []
    engine = Engine(after.ruleset)
    second = _event("e2", "page_viewed", "2026-11-20T10:05:00Z")
    d = engine.handle(second, state, second.ts)
    assert state.traits["segments"] == ["warm"]
    assert [a.name for a in d.actions] == ["warm"]
    third = _event("e3", "page_viewed", "2026-11-20T10:06:00Z")
    d = engine.handle(third, state, third.ts)
    assert d.actions == [] and state.traits["segments"] == ["warm"]


def _event(eid: str, typ: str, timestamp: str) -> Event:
    parsed = parse_event(
        orjson.dumps({"id": eid, "event": typ, "contact_id": "c1", "timestamp": timestamp})
    )
    assert isinstance(parsed, Event)
    return parsed


def test_a_segment_reading_the_segments_trait_follows_the_others_at_once(
    replay: Replay,
) -> None:
    rules = """
segment reader = count(article_read within 7d) >= 2
segment tagged = contact.segments contains "reader"

rule tagged_hello
    when entered tagged
    then
        send webhook "tagged"
end
"""
    r = replay(
        rules,
        [
            ev("e1", "article_read", "c1", at("09:00")),
            ev("e2", "article_read", "c1", at("09:01")),
            ev("e3", "page_viewed", "c1", at("09:02")),
        ],
    )
    assert [a["at"] for a in r.actions()] == [at("09:01")]


def test_an_event_in_the_second_after_a_window_drops_its_event_sees_the_segment_left(
    replay: Replay,
) -> None:
    # The segment timer checks one second after the order is a day old; an event in that
    # second must not find the contact still inside.
    rules = """
segment buyer = count(order_completed within 1d) >= 1

rule still_buyer
    when page_viewed
    if contact in buyer
    then
        send webhook "buyer_view"
end

rule bye
    when left buyer
    then
        send webhook "left"
end
"""
    r = replay(
        rules,
        [
            ev("e1", "order_completed", "c1", at("09:00")),
            ev("e2", "page_viewed", "c1", at("10:00")),
            ev("e3", "page_viewed", "c1", "2026-11-21T09:00:00.500Z"),
        ],
        "--until",
        at("00:00", day=22),
    )
    got = [(a["name"], a["at"]) for a in r.actions()]
    assert got == [("buyer_view", at("10:00")), ("left", "2026-11-21T09:00:00.500Z")]


def test_traits_set_by_entered_and_left_rules_settle_the_segments_at_once(
    replay: Replay,
) -> None:
    rules = """
segment customer = contact.stage == "customer"
segment hot = contact.score >= 10
segment recent = count(order_completed within 1d) >= 1
segment lapsed = contact.lapsed == true

rule buy
    when order_completed
    then
        set contact.stage = "customer"
end

rule welcome
    when entered customer
    then
        score += 10
end

rule hot_hello
    when entered hot
    then
        send webhook "hot"
end

rule gone
    when left recent
    then
        set contact.lapsed = true
end

rule lapsed_hello
    when entered lapsed
    then
        send webhook "lapsed"
end
"""
    r = replay(
        rules,
        [ev("e1", "order_completed", "c1", at("09:00"))],
        "--until",
        at("00:00", day=22),
    )
    got = [(a["name"], a["at"]) for a in r.actions()]
    assert got == [("hot", at("09:00")), ("lapsed", at("09:00:01", day=21))]


def test_a_segment_entered_twice_in_one_cascade_gives_events_and_actions_of_their_own_ids(
    replay: Replay,
) -> None:
    rules = """
segment hot = contact.score >= 10

rule heat
    when ping
    then
        score += 10
end

rule cool
    when entered hot
    then
        send webhook "in" with { ev: event.id }
        score -= 10
    limit 2 per 1d
end

rule reheat
    when left hot
    then
        send webhook "out"
        score += 10
    limit 2 per 1d
end

rule seen
    when segment_entered
    then
        send webhook "entered" with { ev: event.id }
end
"""
    r = replay(rules, [ev("e1", "ping", "c1", at("10:00"))])
    entered = r.actions(rule="seen")
    assert [a["data"]["ev"] for a in entered] == [
        "e1/hot/segment_entered",
        "e1/hot/segment_entered#2",
        "e1/hot/segment_entered#3",
    ]
    assert [a["name"] for a in r.actions()].count("in") == 2
    ids = [a["id"] for a in r.actions()]
    assert len(ids) == 7 and len(set(ids)) == 7


def test_a_segment_entered_again_after_a_wait_gives_events_and_actions_of_their_own_ids(
    replay: Replay,
) -> None:
    rules = """
segment odd = contact.n == 1 or contact.n == 3

rule count_up
    when ping
    then
        set contact.n = 1
        wait 1h
        set contact.n = 2
        wait 1h
        set contact.n = 3
end

rule hello
    when entered odd
    then
        send webhook "in" with { n: contact.n }
end

rule seen
    when segment_entered
    then
        send webhook "entered" with { ev: event.id }
end
"""
    r = replay(rules, [ev("p1", "ping", "c1", at("10:00"))], "--until", at("00:00", day=21))
    assert [a["data"] for a in r.actions(rule="hello")] == [{"n": 1}, {"n": 3}]
    entered = [a["data"]["ev"] for a in r.actions(rule="seen")]
    assert len(entered) == 2 and entered[0] == "p1/odd/segment_entered"
    assert entered[1] != entered[0] and entered[1].startswith("p1/")
    ids = [a["id"] for a in r.actions()]
    assert len(set(ids)) == len(ids) == 4
