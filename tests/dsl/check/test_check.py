"""The checker's result: its side tables, scopes, and what it accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge.dsl import ast
from nudge.dsl.check import PASSES, Checked, check
from nudge.dsl.parse import parse
from nudge.dsl.source import Source

ROOT = Path(__file__).resolve().parents[3]

SHOP = """\
event cart_updated { cart_id: string, value: number, items: list }
event order_completed { cart_id: string, value: number }
contact { email: string, country: string, consent_email: bool, signed_up_at: time }
let nordic = ["SE", "NO"]
segment vip = contact.score > 100
"""


def checked(*texts: str) -> Checked:
    files = []
    for i, text in enumerate(texts):
        rule_file, syntax = parse(Source(f"f{i}.rules", text))
        assert syntax == [], [d.message for d in syntax]
        files.append(rule_file)
    return check(ast.Ruleset(tuple(files)))


def codes(*texts: str) -> list[str]:
    return [d.code for d in checked(*texts).diagnostics]


def test_side_tables() -> None:
    result = checked(SHOP)
    assert result.diagnostics == ()
    assert set(result.lets) == {"nordic"} and set(result.segments) == {"vip"}
    assert dict(result.event_schemas["cart_updated"]) == {
        "cart_id": "string",
        "value": "number",
        "items": "list",
    }
    assert result.contact_schema is not None and result.contact_schema["signed_up_at"] == "time"
    assert checked("let a = 1\n").contact_schema is None
    assert result.ok


def test_declarations_from_every_file_are_visible_in_all() -> None:
    rule = "rule r\n    when cart_updated as cart where cart.vaule > 0\n    then\n        score += 1\nend\n"
    assert codes(SHOP, rule) == ["unknown-field"]
    assert codes(rule) == []  # without the schema, cart_updated is dynamically typed


def test_the_types_side_table() -> None:
    text = SHOP + (
        "rule r\n"
        "    when cart_updated as cart\n"
        "    if now - contact.signed_up_at > 30d and cart.value * 2 > 10\n"
        "    then\n"
        '        send email "t" with { a: lower(contact.email), b: cart.items, c: event.value }\n'
        "end\n"
    )
    result = checked(text)
    assert result.diagnostics == ()
    rule = next(d for d in result.ruleset.decls() if isinstance(d, ast.Rule))
    condition = rule.condition
    assert isinstance(condition, ast.Logical)
    age, double = condition.left, condition.right
    assert isinstance(age, ast.Compare) and isinstance(double, ast.Compare)
    types = result.types
    assert types[id(condition)] == "bool"
    assert types[id(age.left)] == "duration"  # time - time
    assert isinstance(age.left, ast.Binary)
    assert types[id(age.left.left)] == "time"
    assert types[id(double.left)] == "number"
    send = rule.steps[0]
    assert isinstance(send, ast.Send) and send.data is not None
    values = [types[id(e.value)] for e in send.data.entries]
    assert values == ["string", "list", "number"]  # `event` is the cart_updated


def test_undeclared_events_are_dynamic() -> None:
    text = (
        'rule r\n    when page_viewed as p where p.anything.deep > 1 and p.path startswith "/"\n'
        "    then\n        score += p.points\nend\n"
    )
    assert codes(text) == []


def test_the_envelope_is_typed_on_declared_events() -> None:
    text = SHOP + (
        "rule r\n    when order_completed where order_completed.timestamp > now - 1d\n"
        '         and order_completed.contact_id == "c1" and event.id != ""\n'
        "    then\n        score += 1\nend\n"
    )
    assert codes(text) == []


def test_followed_by_binds_both_events_and_event_is_the_second() -> None:
    text = SHOP + (
        "rule r\n"
        "    when cart_updated as cart followed by order_completed as order\n"
        "         where order.cart_id == cart.cart_id within 1h\n"
        "    if event.value > cart.value and order_completed.value > 0\n"
        "    then\n        score += 1\nend\n"
    )
    assert codes(text) == []


def test_not_followed_by_second_where_sees_the_first_binding() -> None:
    text = SHOP + (
        "rule r\n"
        "    when cart_updated as cart\n"
        "         not followed by order_completed where order_completed.cart_id == cart.cart_id\n"
        "         and event.value > 0 within 1h\n"
        "    if event.cart_id == cart.cart_id\n"
        "    then\n        score += 1\nend\n"
    )
    assert codes(text) == []


def test_count_sees_the_counted_event_and_the_contact() -> None:
    text = SHOP + (
        "segment buyers = count(order_completed where order_completed.value > 10\n"
        "    and event.value < 1000 and contact.country in nordic within 30d) >= 2\n"
    )
    assert codes(text) == []


def test_inactive_and_segment_triggers_have_an_untyped_event() -> None:
    text = SHOP + (
        "rule r\n    when inactive for 30d\n    if event.whatever == 1\n    then\n"
        "        score += 1\nend\n"
        'rule s\n    when entered vip\n    if event.segment == "vip"\n    then\n'
        "        score += 1\nend\n"
    )
    assert codes(text) == []


def test_time_values_meet_strings_and_numbers() -> None:
    text = SHOP + (
        "rule r\n    when order_completed\n"
        '    if contact.signed_up_at > "2026-01-01T00:00:00Z" and contact.last_seen > 0\n'
        '       and days_since(contact.email) > 1 and contact.signed_up_at startswith "2026"\n'
        "    then\n        set contact.signed_up_at = order_completed.timestamp\nend\n"
    )
    # no error: a time meets ISO text and numbers (epoch seconds); the number gets a warning
    assert codes(text) == ["time-number"]


def test_a_condition_of_unknown_type_is_not_reported() -> None:
    assert codes("rule r\n    when e\n    if event.flag\n    then\n        score += 1\nend\n") == []


def test_set_stage_is_allowed_and_typed() -> None:
    text = 'rule r\n    when e\n    then\n        set contact.stage = "lead"\n        set contact.stage = 3\nend\n'
    assert codes(text) == ["type-mismatch"]


def test_every_diagnostic_is_kept_sorted_by_place() -> None:
    text = "".join(f"let a{i} = b{i}\n" for i in range(30))
    result = checked(text)
    lines = [d.span.line for d in result.diagnostics]
    assert lines == sorted(lines) == list(range(1, 31))


def test_every_warning_and_error_is_kept() -> None:
    warnings = "".join(
        f"rule w{i}\n    when e\n    if contact.x == null\n    then\n        score += 1\nend\n"
        for i in range(25)
    )
    result = checked(warnings + "let z = y\n")
    codes = [d.code for d in result.diagnostics]
    assert codes.count("compare-null") == 25
    assert codes.count("unknown-name") == 1


def test_the_example_ruleset_is_clean() -> None:
    sources = sorted((ROOT / "rules").glob("*.rules"))
    assert sources
    result = checked(*(p.read_text(encoding="utf-8") for p in sources))
    assert [(d.code, d.message) for d in result.diagnostics] == []


@pytest.mark.parametrize("run", PASSES, ids=lambda p: p.__name__)
def test_each_pass_is_documented_with_a_snippet(run: object) -> None:
    doc = getattr(run, "__doc__", "") or ""
    assert ">>> " in doc


def test_public_names() -> None:
    import nudge.dsl.check as check_module
    import nudge.dsl.codes as codes_module
    import nudge.dsl.render as render_module

    assert sorted(check_module.__all__) == ["Checked", "PASSES", "check"]
    assert sorted(codes_module.__all__) == ["CODES", "Code", "diagnostic", "markdown"]
    assert sorted(render_module.__all__) == ["render_json", "render_text", "render_texts"]


def test_exit_on_in_a_rule_that_sends_email_cancels_what_quiet_hours_deferred() -> None:
    rule = (
        'rule r\n    when signed_up\n    then\n        send {} "t"\n'
        "    exit on order_completed\nend\n"
    )
    assert "useless-exit" not in codes(rule.format("email"))
    assert "useless-exit" not in codes(rule.format("best"))
    assert "useless-exit" in codes(rule.format("webhook"))


def test_given_traits_the_engine_reads_need_no_schema_field() -> None:
    text = (
        "contact { first_name: string }\n"
        'test "t"\n    given contact c1 { consent_ads: true, timezone: "Europe/Oslo", '
        'frist_name: "Ann" }\n'
        "    at 2026-11-20T10:00:00Z c1 ping\nend\n"
    )
    found = [d for d in checked(text).diagnostics if d.code == "test-data"]
    assert [d.message for d in found] == [
        "contact has no field `frist_name` (did you mean `first_name`?)"
    ]


def test_a_file_starting_with_a_byte_order_mark_reads_as_without(tmp_path: Path) -> None:
    from nudge.dsl.load import load_ruleset

    text = "rule r\n    when ping\n    then\n        score += 1\nend\n"
    (tmp_path / "bom.rules").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    result = load_ruleset([tmp_path])
    assert result.diagnostics == [] and result.ruleset is not None


def test_ordering_something_of_unknown_type_against_a_bool_names_the_bool() -> None:
    rule = "rule r\n    when ping where ping.b < true\n    then\n        score += 1\nend\n"
    (found,) = checked(rule).diagnostics
    assert (found.code, found.message, found.label) == (
        "type-mismatch",
        "`<` cannot order bools",
        "`true` is a bool",
    )


def test_an_unknown_name_with_no_close_match_says_what_was_expected() -> None:
    rule = "rule r\n    when ping\n    if contact in nosuch\n    then\n        score += 1\nend\n"
    [alone] = checked(rule).diagnostics
    assert alone.message == "unknown segment `nosuch` (no segment is declared)"
    [some] = checked("segment vip = contact.score > 10\nsegment new = true\n" + rule).diagnostics
    assert some.message == "unknown segment `nosuch` (expected `new` or `vip`)"
    [close] = checked("segment nosuchx = true\n" + rule).diagnostics
    assert close.message == "unknown segment `nosuch` (did you mean `nosuchx`?)"


def test_an_exit_may_name_the_trigger_s_events_and_a_goal_may_not() -> None:
    rule = (
        "event order_completed { cart_id: string }\n"
        "rule r\n    when cart_updated as cart\n    then\n        wait 1h\n"
        '        send webhook "w"\n'
        "    exit on order_completed where order_completed.cart_id == cart.cart_id\n"
        "    GOAL\nend\n"
    )
    assert codes(rule.replace("GOAL", "")) == []
    goal = "goal order_completed where order_completed.cart_id == cart.cart_id within 1d"
    assert codes(rule.replace("GOAL", goal)) == ["unbound-event"]
    # the exit's own event keeps its names: here `order_completed` is the exit's order
    same = rule.replace("when cart_updated as cart", "when order_completed as first")
    same = same.replace("== cart.cart_id", "!= first.cart_id")
    assert codes(same.replace("GOAL", "")) == []
