"""`nudge replay` as a command: output, determinism, flags, summary, failing rulesets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Replay, at, ev, identify

from nudge.cli import main

RULES = """
policy quiet hours 21:00-08:00

rule abandoned_cart "Remind about an abandoned cart"
    when cart_updated as cart where cart.value > 0
         not followed by order_completed where order_completed.cart_id == cart.cart_id within 1h
    if contact.consent_email
    then
        send email "cart_reminder" with { cart_id: cart.cart_id, value: cart.value }
        audience add "cart_abandoners"
        score += 5
    limit 1 per 24h
end
"""

EVENTS = [
    identify("i1", "c-42", at("09:00"), email="ann@example.se", consent_email=True),
    ev("e1", "cart_updated", "c-42", at("10:00"), cart_id="k1", value=120.5),
    ev("e2", "cart_updated", "c-43", at("10:00"), cart_id="k2", value=10),
    identify(
        "i2", "c-44", at("09:00"), email="bo@example.se", consent_email=True, consent_ads=True
    ),
    ev("e3", "cart_updated", "c-44", at("20:30"), cart_id="k3", value=5),
]


def test_actions_are_printed_as_the_language_describes(replay: Replay) -> None:
    r = replay(RULES, EVENTS, "--until", at("12:00", day=21))
    assert r.code == 0
    first = json.loads(r.stdout.splitlines()[0])
    assert first == {
        "id": first["id"],
        "rule": "abandoned_cart",
        "contact_id": "c-42",
        "kind": "email",
        "template": "cart_reminder",
        "to": "ann@example.se",
        "at": "2026-11-20T11:00:00Z",
        "data": {"cart_id": "k1", "value": 120.5},
    }
    assert first["id"].startswith("a-") and len(first["id"]) == 22
    got = [(a["contact_id"], a["kind"], a["at"]) for a in r.actions()]
    # c-44's email is due at 21:30, inside quiet hours: deferred to 08:00; its audience add
    # (no quiet hours for audiences) goes at 21:30.
    assert got == [
        ("c-42", "email", at("11:00")),
        ("c-44", "audience_add", at("21:30")),
        ("c-44", "email", at("08:00", day=21)),
    ]


def test_output_is_byte_identical_across_runs(replay: Replay) -> None:
    one = replay(RULES, EVENTS, "--until", at("12:00", day=21), "--trace")
    two = replay(RULES, EVENTS, "--until", at("12:00", day=21), "--trace")
    assert one.stdout == two.stdout
    assert one.stderr == two.stderr
    assert one.stdout


def test_action_ids_derive_from_rule_event_and_step(replay: Replay) -> None:
    one = replay(RULES, EVENTS, "--until", at("12:00", day=21))
    renamed = [dict(e, id="x" + e["id"]) for e in EVENTS]
    two = replay(RULES, renamed, "--until", at("12:00", day=21))
    ids_one = [a["id"] for a in one.actions()]
    ids_two = [a["id"] for a in two.actions()]
    assert len(set(ids_one)) == len(ids_one)
    assert not set(ids_one) & set(ids_two)


def test_trace_shows_suppressed_actions_and_changes(replay: Replay) -> None:
    r = replay(RULES, EVENTS, "--until", at("12:00", day=21), "--trace")
    # c-42 gave no consent_ads: its audience add is suppressed, shown under --trace only
    suppressed = [(x["contact_id"], x["kind"], x["suppressed"]) for x in r.suppressed()]
    assert suppressed == [("c-42", "audience_add", "no_consent")]
    plain = replay(RULES, EVENTS, "--until", at("12:00", day=21))
    traced = [x["id"] for x in r.lines if "id" in x and "suppressed" not in x]
    assert traced == [a["id"] for a in plain.actions()]
    assert all("suppressed" not in x and "kind" in x for x in plain.lines)
    traits = [(x["contact_id"], x["field"], x["to"]) for x in r.records("trait")]
    assert traits[:2] == [("c-42", "email", "ann@example.se"), ("c-42", "consent_email", True)]
    scores = [(x["contact_id"], x["rule"], x["from"], x["to"], x["at"]) for x in r.records("score")]
    assert scores == [
        ("c-42", "abandoned_cart", 0, 5, at("11:00")),
        ("c-44", "abandoned_cart", 0, 5, at("21:30")),
    ]
    record = r.records("score")[0]
    assert list(record) == ["kind", "rule", "contact_id", "at", "from", "to"]


def test_a_wait_past_the_year_9999_stays_pending_and_times_past_it_are_null(
    replay: Replay,
) -> None:
    rules = (
        "contact { signup_at: time }\n"
        "rule far\n    when ping\n    then\n"
        '        send webhook "now" with { later: now + 420000w, soon: now + 1d,'
        " signup: contact.signup_at }\n"
        "        wait 420000w\n"
        '        send webhook "never"\nend\n'
    )
    events = [
        identify("i1", "c-1", at("09:00"), signup_at=1732000000000),  # milliseconds, by mistake
        ev("p1", "ping", "c-1", at("10:00")),
    ]
    r = replay(rules, events, "--until", "9999-12-31T23:59:59Z")
    assert r.code == 0
    # arithmetic past the year 9999 is no time; a trait that is no time is passed on as it is
    assert [(a["name"], a["data"]) for a in r.actions()] == [
        ("now", {"later": None, "soon": at("10:00", day=21), "signup": 1732000000000})
    ]
    assert r.summary()["timers"] == "1 pending, none due before the year 10000"


def test_until_fires_what_falls_due(replay: Replay) -> None:
    before = replay(RULES, EVENTS)
    assert [a["at"] for a in before.actions()] == [at("11:00")]
    assert before.summary()["timers"].startswith("1 pending, the next due 2026-11-20T21:30:00Z")
    after = replay(RULES, EVENTS, "--until", at("08:00", day=21))
    assert len(after.actions()) == 3
    assert after.summary()["timers"] == "none pending"


def test_rejects_are_set_aside_and_counted(replay: Replay, tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.jsonl"
    bad = [
        "not json",
        '{"id": "x1", "event": "ping", "contact_id": "c1"}',
        '{"id": "x2", "event": "ping", "contact_id": "c1", "timestamp": "yesterday"}',
        "[1, 2]",
    ]
    r = replay(RULES, [*EVENTS[:2], *bad], "--rejects", str(rejects))
    assert r.code == 0
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [x["reason"] for x in lines] == [
        "not_json",
        "missing_field",
        "bad_timestamp",
        "not_object",
    ]
    assert lines[0]["raw"] == "not json"
    assert [x["line"] for x in lines] == [3, 4, 5, 6]  # where they are in the file
    assert all(x["detail"] for x in lines)
    assert r.summary()["events"] == (
        "6 read, 2 processed, 0 duplicates, 4 rejected "
        "(bad_timestamp 1, missing_field 1, not_json 1, not_object 1)"
    )
    assert r.actions() == []
    assert r.summary()["timers"].startswith("1 pending")


def test_the_summary(replay: Replay) -> None:
    r = replay(RULES, [*EVENTS, EVENTS[1]], "--until", at("12:00", day=21))
    assert r.summary() == {
        "events": "6 read, 5 processed, 1 duplicate, 0 rejected",
        # i2 (09:00) after e2 (10:00), and e1 again after e3 (20:30)
        "order": "2 events came after a later one in the input; all were run in timestamp order",
        "actions": "3 (audience_add 1, email 2)",
        "suppressed": "1 (no_consent 1)",
        "conversions": "0",
        "timers": "none pending",
    }


def test_a_ruleset_failing_the_check_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "bad.rules").write_text(
        "rule r\n    when ping\n    if contact in nosuch\n    then\n        send email\nend\n"
    )
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(ev("e1", "ping", "c1", at("10:00"))) + "\n")
    code = main(["replay", str(events), "--rules", str(folder)])
    out = capsys.readouterr()
    assert code == 1
    assert out.out == ""
    assert "bad.rules:" in out.err
    assert "error" in out.err


def test_bad_flags(replay: Replay, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = replay(RULES, EVENTS, "--until", "tomorrow")
    assert r.code == 2
    assert "--until" in r.stderr
    r = replay(RULES, EVENTS, "--state", "ftp://x")
    assert r.code == 2
    assert "unknown --state" in r.stderr
    code = main(["replay", str(tmp_path / "missing.jsonl"), "--rules", str(tmp_path)])
    assert code in (1, 2)


def test_events_from_stdin(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "r.rules").write_text(RULES)
    data = "".join(json.dumps(e) + "\n" for e in EVENTS)
    done = subprocess.run(
        [sys.executable, "-m", "nudge.cli", "replay", "-", "--rules", str(folder)],
        input=data.encode(),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert [json.loads(line)["contact_id"] for line in lines] == ["c-42"]
    assert b"events: 5 read" in done.stderr


def test_input_out_of_time_order_runs_in_timestamp_order(replay: Replay) -> None:
    """Events grouped by contact: c2's cart and order are older than c1's last event, yet
    c2's order still comes within the hour of its cart, as its timestamps say."""
    rules = """
rule abandoned_cart
    when cart_updated as cart not followed by order_completed within 1h
    then
        send webhook "remind" with { cart: cart.cart_id }
end
"""
    events = [
        ev("e1", "cart_updated", "c1", at("10:00"), cart_id="k1"),
        ev("e2", "page_viewed", "c1", at("12:00")),
        ev("e3", "cart_updated", "c2", at("10:00"), cart_id="k2"),
        ev("e4", "order_completed", "c2", at("10:30"), cart_id="k2"),
        ev("e5", "cart_updated", "c3", at("11:00"), cart_id="k3"),
    ]
    r = replay(rules, events, "--until", at("20:00"))
    got = [(a["contact_id"], a["at"], a["data"]["cart"]) for a in r.actions()]
    assert got == [("c1", at("11:00"), "k1"), ("c3", at("12:00"), "k3")]
    assert r.summary()["order"].startswith("3 events came after a later one")
    in_order = replay(rules, sorted(events, key=lambda e: e["timestamp"]), "--until", at("20:00"))
    assert in_order.stdout == r.stdout
    assert "order" not in in_order.summary()


def test_events_far_out_of_order_run_late_and_are_counted(tmp_path: Path) -> None:
    """Memory is bounded: an event is put in its place only within `reorder` events."""
    import asyncio
    import io

    from nudge.commands.replay import Replay
    from nudge.dsl.load import load_ruleset
    from nudge.engine.engine import Engine
    from nudge.engine.events import event_from_dict
    from nudge.engine.stores.memory import MemoryStore

    (tmp_path / "r.rules").write_text(
        'rule hello\n    when ping\n    then\n        send webhook "w" with { n: event.n }\nend\n'
    )
    ruleset = load_ruleset([tmp_path]).ruleset
    assert ruleset is not None
    out = io.BytesIO()
    replay = Replay(Engine(ruleset), MemoryStore(), out, None)
    replay.progress = False
    replay.reorder = 2
    order = [1, 0, 2, 3, 4, 5, 6, 7, 8, 9]  # 0 comes one late: put in place
    order += [10, 11, 12, 13, 14, 15, 16]
    order.insert(14, 10)  # an event at 10:10 again, after 10:13: too late
    items = [
        event_from_dict(ev(f"e{i}", "ping", "c1", at(f"10:{n:02d}"), n=n))
        for i, n in enumerate(order)
    ]
    summary = asyncio.run(replay.run(items, None))
    got = [json.loads(line)["data"]["n"] for line in out.getvalue().splitlines()]
    assert got[:10] == list(range(10))
    assert sorted(got) == sorted(order)
    assert "came more than 2 events late" in summary
    assert replay.late == 1


def test_literals_json_cannot_hold_as_written_still_go_out(replay: Replay) -> None:
    rules = r"""
rule big
    when ping
    then
        set contact.big = 99999999999999999999
        send webhook "w" with { n: 99999999999999999999, smile: "\ud83d\ude00", half: "\ud83d" }
end
"""
    r = replay(rules, [ev("e1", "ping", "c1", at("10:00"))], "--trace")
    (action,) = r.actions()
    assert action["data"] == {"n": 1e20, "smile": "\U0001f600", "half": "\ufffd"}
    assert [x["to"] for x in r.records("trait")] == [1e20]


def test_an_event_type_named_contact_leaves_contact_the_contact(replay: Replay) -> None:
    rules = """
rule seen
    when contact
    if contact.email is not null
    then
        send webhook "w" with { trait: contact.k, property: event.k }
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), email="a@x.se", k=99),
            ev("e1", "contact", "c1", at("10:00"), k=1),
        ],
    )
    assert [a["data"] for a in r.actions()] == [{"trait": 99, "property": 1}]


def test_a_time_plus_a_number_of_undeclared_type_leaves_as_a_time(replay: Replay) -> None:
    rules = """
rule later
    when ping
    then
        set contact.due = now + event.days * 1d
        send webhook "w" with { due: event.timestamp + event.days * 1d, a: now + contact.n, b: contact.t + 5, n: contact.n + 5 }
end
"""
    r = replay(
        rules,
        [
            identify("i1", "c1", at("09:00"), n=5, t=at("08:00")),
            ev("e1", "ping", "c1", at("10:00"), days=2),
        ],
        "--trace",
    )
    (action,) = r.actions()
    assert action["data"] == {
        "due": at("10:00", day=22),
        "a": at("10:00").replace(":00Z", ":05Z"),
        "b": at("08:00").replace(":00Z", ":05Z"),
        "n": 10,
    }
    assert [x["to"] for x in r.records("trait") if x["field"] == "due"] == [at("10:00", day=22)]


def test_a_rejects_file_that_cannot_be_written_is_a_clear_error(
    replay: Replay, tmp_path: Path
) -> None:
    r = replay(RULES, EVENTS[:1], "--rejects", str(tmp_path / "no" / "such" / "dir.jsonl"))
    assert r.code == 2
    assert "nudge replay: cannot write" in r.stderr and "Traceback" not in r.stderr


def test_until_before_the_last_event_is_said(replay: Replay) -> None:
    r = replay(RULES, EVENTS[:2], "--until", "2020-01-01T00:00:00Z")
    assert r.code == 0
    assert r.summary()["until"].startswith("2020-01-01T00:00:00Z is before the last event's time")


def test_partitions_must_be_at_least_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("")
    with pytest.raises(SystemExit) as stopped:
        main(["replay", str(events), "--partitions", "0"])
    assert stopped.value.code == 2
    assert "--partitions: must be at least 1, got 0" in capsys.readouterr().err
