"""Each step, through `nudge replay --trace` on rules written in the language."""

from __future__ import annotations

from conftest import Replay, at, ev, identify

ANN = {
    "email": "ann@example.se",
    "phone": "+46700000000",
    "consent_email": True,
    "consent_sms": True,
    "consent_ads": True,
}


def test_send_email_defaults_to_the_contact_email(replay: Replay) -> None:
    rules = """
rule hello
    when signed_up as s
    then
        send email "welcome" with { plan: s.plan, name: contact.first_name }
        send email "copy" to "boss@example.se"
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), first_name="Ann", **ANN),
            ev("e1", "signed_up", "c1", at("10:00"), plan="pro"),
        ],
    )
    assert r.stdout.splitlines()[0].startswith('{"id":"a-')
    first, second = r.actions("email")
    assert list(first) == ["id", "rule", "contact_id", "kind", "template", "to", "at", "data"]
    assert first["template"] == "welcome"
    assert first["to"] == "ann@example.se"
    assert first["data"] == {"plan": "pro", "name": "Ann"}
    assert first["rule"] == "hello"
    assert first["contact_id"] == "c1"
    assert second["to"] == "boss@example.se"
    assert first["id"] != second["id"]


def test_send_sms_defaults_to_the_contact_phone(replay: Replay) -> None:
    rules = """
rule text
    when signed_up
    then
        send sms "hi"
end
"""
    r = replay(
        rules, [identify("i1", "c1", at("09:00"), **ANN), ev("e1", "signed_up", "c1", at("10:00"))]
    )
    (sms,) = r.actions("sms")
    assert (sms["template"], sms["to"]) == ("hi", "+46700000000")


def test_a_send_without_an_address_is_suppressed(replay: Replay) -> None:
    rules = """
rule text
    when signed_up
    then
        send sms "hi"
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), consent_sms=True),
            ev("e1", "signed_up", "c1", at("10:00")),
        ],
        "--trace",
    )
    assert r.actions() == []
    assert [x["suppressed"] for x in r.suppressed()] == ["no_address"]
    assert "no_address 1" in r.summary()["suppressed"]


def test_send_webhook_has_a_name_and_no_consent_check(replay: Replay) -> None:
    rules = """
rule hook
    when signed_up as s
    then
        send webhook "crm" with { plan: s.plan }
end
"""
    r = replay(rules, [ev("e1", "signed_up", "c1", at("10:00"), plan="team")])
    (hook,) = r.actions()
    assert list(hook) == ["id", "rule", "contact_id", "kind", "name", "at", "data"]
    assert (hook["kind"], hook["name"], hook["data"]) == ("webhook", "crm", {"plan": "team"})


def test_audience_add_and_remove(replay: Replay) -> None:
    rules = """
rule join
    when signed_up
    then
        audience add "fans"
end

rule leave
    when order_completed
    then
        audience remove "fans"
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), consent_ads=True),
            ev("e1", "signed_up", "c1", at("10:00")),
            ev("e2", "order_completed", "c1", at("11:00")),
            ev("e3", "signed_up", "c2", at("10:00")),  # no consent_ads
            ev("e4", "order_completed", "c2", at("11:00")),  # removing needs none
        ],
        "--trace",
    )
    got = [(a["contact_id"], a["kind"], a["name"]) for a in r.actions()]
    assert got == [
        ("c1", "audience_add", "fans"),
        ("c1", "audience_remove", "fans"),
        ("c2", "audience_remove", "fans"),
    ]
    assert [(x["contact_id"], x["suppressed"]) for x in r.suppressed()] == [("c2", "no_consent")]


def test_show_content_in_a_slot(replay: Replay) -> None:
    rules = """
rule banner
    when signed_up
    then
        show "welcome_banner" in "homepage_hero"
end
"""
    r = replay(rules, [ev("e1", "signed_up", "c1", at("10:00"))])
    (show,) = r.actions()
    assert list(show) == ["id", "rule", "contact_id", "kind", "content", "slot", "at", "data"]
    assert (show["content"], show["slot"]) == ("welcome_banner", "homepage_hero")


def test_set_and_unset_traits(replay: Replay) -> None:
    rules = """
rule remember
    when order_completed as o
    then
        set contact.last_order = o.order_id
        unset contact.coupon
        send webhook "crm" with { last: contact.last_order, coupon: contact.coupon }
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), coupon="X1"),
            ev("e1", "order_completed", "c1", at("10:00"), order_id="o1"),
        ],
        "--trace",
    )
    assert r.actions()[0]["data"] == {"last": "o1", "coupon": None}
    changes = [(x["field"], x["from"], x["to"], x["rule"]) for x in r.records("trait")]
    assert changes == [
        ("coupon", None, "X1", None),
        ("last_order", None, "o1", "remember"),
        ("coupon", "X1", None, "remember"),
    ]


def test_score_changes(replay: Replay) -> None:
    rules = """
rule up
    when page_viewed
    then
        score += 5
end

rule down
    when unsubscribed
    then
        score -= 2
end
"""
    r = replay(
        rules,
        [
            ev("e1", "page_viewed", "c1", at("10:00")),
            ev("e2", "page_viewed", "c1", at("10:01")),
            ev("e3", "unsubscribed", "c1", at("10:02")),
        ],
        "--trace",
    )
    assert [(x["from"], x["to"]) for x in r.records("score")] == [(0, 5), (5, 10), (10, 8)]


def test_emit_makes_an_event_rules_trigger_on(replay: Replay) -> None:
    rules = """
rule qualify
    when demo_requested as d
    then
        emit lead_qualified { plan: d.plan }
end

rule notify
    when lead_qualified as q
    then
        send webhook "sales" with { plan: q.plan, inbound: q.id }
end
"""
    r = replay(rules, [ev("e1", "demo_requested", "c1", at("10:00"), plan="team")])
    (hook,) = r.actions()
    assert hook["data"]["plan"] == "team"
    assert hook["data"]["inbound"] == "e1/qualify/0/lead_qualified"  # <cause>/<event type>
    assert hook["at"] == at("10:00")


def test_emit_cascade_stops_at_depth_16(replay: Replay) -> None:
    rules = """
rule loop
    when ping
    then
        send webhook "echo"
        emit ping
end
"""
    r = replay(rules, [ev("e1", "ping", "c1", at("10:00"))], "--trace")
    assert len(r.actions()) == 17  # the inbound ping, then 16 emitted ones
    (limit,) = r.records("cascade_limit")
    assert limit["event"] == "ping"


def test_wait_runs_the_rest_later(replay: Replay) -> None:
    rules = """
rule series
    when signed_up
    then
        send webhook "one"
        wait 2d
        send webhook "two"
        wait 1h
        send webhook "three"
end
"""
    events = [ev("e1", "signed_up", "c1", at("10:00"))]
    r = replay(rules, events, "--until", at("10:00", day=25))
    got = [(a["name"], a["at"]) for a in r.actions()]
    assert got == [
        ("one", at("10:00")),
        ("two", at("10:00", day=22)),
        ("three", at("11:00", day=22)),
    ]
    short = replay(rules, events, "--until", at("10:00", day=22))
    assert [a["name"] for a in short.actions()] == ["one", "two"]
    assert "1 pending" in short.summary()["timers"]


def test_wait_keeps_the_bindings(replay: Replay) -> None:
    rules = """
rule later
    when order_completed as o
    then
        wait 7d
        send webhook "review" with { order: o.order_id }
end
"""
    r = replay(
        rules,
        [ev("e1", "order_completed", "c1", at("10:00"), order_id="o9")],
        "--until",
        at("10:00", day=30),
    )
    assert r.actions()[0]["data"] == {"order": "o9"}


def test_stop_if_ends_the_run(replay: Replay) -> None:
    rules = """
rule series
    when signed_up
    then
        send webhook "one"
        wait 1d
        stop if contact.stage == "customer"
        send webhook "two"
end

rule buy
    when order_completed
    then
        set contact.stage = "customer"
end
"""
    r = replay(
        rules,
        [
            ev("e1", "signed_up", "c1", at("10:00")),
            ev("e2", "signed_up", "c2", at("10:00")),
            ev("e3", "order_completed", "c2", at("12:00")),
        ],
        "--until",
        at("10:00", day=25),
    )
    got = [(a["contact_id"], a["name"]) for a in r.actions()]
    assert got == [("c1", "one"), ("c2", "one"), ("c1", "two")]


def test_times_leave_the_engine_as_iso_text(replay: Replay) -> None:
    """`now` and time arithmetic in action data, emitted data and traits: ISO 8601 in UTC."""
    rules = """
rule remember
    when order_completed
    then
        set contact.last_order_at = now
        set contact.renew_at = event.timestamp + 30d
        send webhook "crm" with { at: now, next_day: order_completed.timestamp + 1d, n: 5 }
end
"""
    r = replay(
        rules,
        [
            {
                **ev("e1", "order_completed", "c1", at("10:00")),
                "timestamp": "2026-11-20T11:00:00+01:00",
            }
        ],
        "--trace",
    )
    [action] = r.actions()
    assert action["data"] == {"at": at("10:00"), "next_day": at("10:00", day=21), "n": 5}
    traits = {x["field"]: x["to"] for x in r.records("trait")}
    assert traits == {"last_order_at": at("10:00"), "renew_at": at("10:00", day=20, month=12)}


def test_undeclared_iso_fields_shifted_by_a_duration_leave_as_text(replay: Replay) -> None:
    rules = """
rule remind
    when ping
    then
        set contact.next = contact.last_order_at + 1d
        send webhook "crm" with { before: event.when - 2h, after: 1d + event.when, n: event.n + 1m }
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), last_order_at=at("00:00", day=1, month=10)),
            {
                **ev("p1", "ping", "c1", at("10:00"), n=5),
                "properties": {"when": at("10:00"), "n": 5},
            },
        ],
        "--trace",
    )
    [action] = r.actions()
    assert action["data"] == {"before": at("08:00"), "after": at("10:00", day=21), "n": 65}
    assert {x["field"]: x["to"] for x in r.records("trait")}["next"] == at("00:00", day=2, month=10)
