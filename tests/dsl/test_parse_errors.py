"""Syntax error goldens: each `parse_errors/<case>.rules` is a common mistake; its `.diag` holds
the exact text `nudge check` prints for it. Regenerate with `pytest --update-goldens` after a
deliberate change of wording.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nudge.cli import main
from nudge.dsl.check.context import KEYWORDS
from nudge.dsl.load import load_sources
from nudge.dsl.parse import parse
from nudge.dsl.render import render_texts
from nudge.dsl.source import Source

HERE = Path(__file__).parent / "parse_errors"
CASES = sorted(HERE.glob("*.rules"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_syntax_error_golden(path: Path, update_goldens: bool) -> None:
    source = Source(path.name, path.read_text(encoding="utf-8"))
    _, diagnostics = parse(source)
    assert diagnostics, "every case here is a syntax error"
    assert {d.code for d in diagnostics} == {"syntax"}
    text = render_texts(diagnostics, {source.path: source})
    golden = path.with_suffix(".diag")
    if update_goldens or not golden.exists():
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_every_broken_declaration_is_reported() -> None:
    source = Source("x.rules", (HERE / "several_broken_rules.rules").read_text(encoding="utf-8"))
    rule_file, diagnostics = parse(source)
    assert [d.span.line for d in diagnostics] == [3, 9]
    assert [type(d).__name__ for d in rule_file.decls] == ["Let"]


# A keyword is never the missing operand of an unfinished condition: the error stays on the
# condition's line instead of landing on the step after `then` ("a rule needs `then`").
UNFINISHED = [
    ("when go where event.x ==\n    then", "expected an expression after `==`, found `then`"),
    ("when go\n    if contact.a and\n    then", "expected a condition after `and`, found `then`"),
    ("when go where\n    then", "expected a condition after `where`, found `then`"),
    ("when go\n    if\n    then", "expected a condition after `if`, found `then`"),
    ("when go\n    if contact.a in\n    then", "expected an expression after `in`, found `then`"),
]


@pytest.mark.parametrize(("head", "message"), UNFINISHED)
def test_an_unfinished_condition_is_reported_where_it_stops(head: str, message: str) -> None:
    text = f'rule b\n    {head}\n        send email "t"\nend\n'
    _, diagnostics = parse(Source("b.rules", text))
    assert [d.message for d in diagnostics] == [message]
    (found,) = diagnostics
    assert "needs `then`" not in found.label
    line = text.splitlines()[found.span.line - 1]
    assert line.rstrip().endswith(message.split("`")[1])  # the line of the unfinished condition
    assert found.span.column == len(line.rstrip()) + 1  # just after its last word


@pytest.mark.parametrize(
    "keyword", ["end", "exit", "limit", "once", "quiet", "priority", "goal", "if", "no", "send"]
)
def test_no_clause_keyword_is_taken_for_an_operand(keyword: str) -> None:
    text = f"rule r\n    when go\n    then\n        score += contact.score *\n    {keyword}\n"
    _, diagnostics = parse(Source("r.rules", text))
    first = diagnostics[0]
    assert (first.span.line, first.message) == (
        4,
        f"expected an expression after `*`, found `{keyword}`",
    )
    # what follows (a clause cut short, the missing `end`) is reported past it
    assert all(d.span.line == 5 for d in diagnostics[1:])


def test_keywords_stay_field_names_after_a_dot() -> None:
    text = (
        "rule r when e where e.then == contact.end and e.limit > e.if then\n"
        "    score += e.goal\nend\n"
    )
    _, diagnostics = parse(Source("r.rules", text))
    assert diagnostics == []


def test_the_grammar_keeps_every_keyword_out_of_a_path_head() -> None:
    grammar = (Path(__file__).parents[2] / "dsl" / "grammar.lark").read_text(encoding="utf-8")
    found = re.search(r"^HEAD: /\(\?!\(\?:([a-z|]+)\)", grammar, re.MULTILINE)
    assert found is not None
    assert set(found.group(1).split("|")) == KEYWORDS - {"contact", "event"}


def test_check_reports_an_unfinished_condition_on_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "b.rules"
    rules.write_text(
        'rule b\n    when go where event.x ==\n    then\n        send email "t"\nend\n'
    )
    assert main(["check", str(rules)]) == 1
    out, _ = capsys.readouterr()
    assert out.startswith(f"{rules}:2:29: error: expected an expression after `==`, found `then`")
    assert "needs `then`" not in out


KEYWORD_CONSTANT = "let limit = 100\nrule r\n    when go\n    if event.value > limit\n    then\n"


def test_a_constant_named_like_a_keyword_is_left_to_the_checker() -> None:
    text = KEYWORD_CONSTANT + '        send email "t"\nend\n'
    rule_file, diagnostics = parse(Source("r.rules", text))
    assert diagnostics == []
    assert [type(d).__name__ for d in rule_file.decls] == ["Let", "Rule"]


def test_a_keyword_meant_as_a_value_does_not_hide_a_later_error() -> None:
    text = KEYWORD_CONSTANT + '        sned email "t"\nend\n'
    _, diagnostics = parse(Source("r.rules", text))
    assert [(d.span.line, d.message) for d in diagnostics] == [
        (6, "unexpected `sned` (did you mean `send`?)")
    ]


# ---------------------------------------------------------------------------- recovery

RECOVERY = """\
contact {
    email: string,
    plan: string,
}

rule r
    when ping
    then
        set contact.paln = "x"
        sed email "x"
            with { a: 1 }
        wait 1h
    limt 1 per 1d
    exit on pong
end

test "t"
    at 2026-11-20T10:00:00 c1 ping
    expect no email
    expect c1 hass contact.plan == "x"
end
"""


def _found(text: str) -> list[tuple[int, str, str]]:
    result = load_sources([Source("r.rules", text)])
    assert result.ruleset is None
    return [(d.span.line, d.code, d.message.split(" (")[0]) for d in result.diagnostics]


def test_after_a_broken_statement_the_rest_of_its_declaration_is_checked_too() -> None:
    assert _found(RECOVERY) == [
        (9, "unknown-field", "unknown field `paln` on contact"),
        (10, "syntax", "unexpected `sed`"),
        (13, "syntax", "unexpected `limt`"),
        (
            18,
            "syntax",
            "`2026-11-20T10:00:00` is not a timestamp: write a date, a time and an offset",
        ),
        (20, "syntax", "unexpected `contact`; expected a test line"),
    ]


def test_a_broken_statement_s_continuation_lines_go_with_it() -> None:
    # `with { a: 1 }` on its own line belongs to the broken `sed` line: no error of its own.
    assert 11 not in [line for line, _, _ in _found(RECOVERY)]


def test_no_error_comes_of_a_statement_that_is_not_the_fault() -> None:
    # The unclosed `{` is the fault; the `send` after it is fine on its own: one error.
    text = 'rule r\n    when ping\n    then\n        send webhook "x" with { a: 1\n'
    text += '        send webhook "y"\n        send webhook "z"\nend\n'
    assert _found(text) == [
        (4, "syntax", "expected `,` or `}` after `1`, found `send` on the next line")
    ]


def test_a_broken_condition_line_is_set_aside_too() -> None:
    text = "rule r\n    when ping\n    if event.x = 1\n    then\n"
    text += '        send webhook "w" with { a: 1 + }\nend\n\n'
    text += 'rule r2\n    when ping\n    if event.x = 1 then\n        sed webhook "w"\nend\n'
    assert [(line, code) for line, code, _ in _found(text)] == [
        (3, "syntax"),
        (5, "syntax"),
        (10, "syntax"),
        (11, "syntax"),
    ]


def test_a_statement_cut_short_before_end_is_one_error() -> None:
    text = "rule r\n    when ping\n    then\n        send webhook\nend\n"
    assert [(line, code) for line, code, _ in _found(text)] == [(4, "syntax")]


def test_a_rule_without_then_is_one_error() -> None:
    text = 'rule r\n    when ping\n        send webhook "x"\n        send webhook "y"\nend\n'
    found = _found(text)
    assert [(line, code) for line, code, _ in found] == [(3, "syntax")]


def test_warnings_about_what_was_set_aside_are_not_given() -> None:
    # Without its `wait` (misspelt), the rule's `exit on` would look useless.
    text = 'rule r\n    when ping\n    then\n        wiat 1h\n        send webhook "x"\n'
    text += "    exit on pong\nend\n"
    assert _found(text) == [(4, "syntax", "unexpected `wiat`")]


def test_uses_of_a_declaration_that_did_not_parse_are_not_errors_of_their_own() -> None:
    text = "let lim = 1 +\n\nsegment vip = contact.x ==\n\n"
    text += 'rule r\n    when ping\n    if lim > 1 and contact in vip\n    then\n        send webhook "x"\nend\n'
    assert _found(text) == [
        (1, "syntax", "unexpected end of the constant `lim`; expected an expression"),
        (3, "syntax", "unexpected end of the segment `vip`; expected an expression"),
    ]


def test_a_keyword_run_into_the_next_word_is_an_error_not_two_words() -> None:
    text = "rule r\n    when signed_up\n    then\n"
    text += '        sendemail "x"\n        stopif true\n    oncee\n    limits 1 per 1d\nend\n'
    assert _found(text) == [
        (4, "syntax", "unexpected `sendemail`"),
        (5, "syntax", "unexpected `stopif`"),
        (6, "syntax", "unexpected `oncee`"),
        (7, "syntax", "unexpected `limits`"),
    ]
    _, diagnostics = parse(Source("r.rules", text))
    assert [d.message.split("(did you mean ")[1] for d in diagnostics] == [
        "`send email`?)",
        "`stop if`?)",
        "`once`?)",
        "`limit`?)",
    ]


def test_names_that_start_with_a_keyword_are_names() -> None:
    text = "let order_limit = 3\n\nrule once_more\n    when order_completed where "
    text += "order_completed.notes_count < order_limit and event.ifx == 1\n    then\n"
    text += "        set contact.sendable = true\n        emit endorsed { by: event.thenceforth }\nend\n"
    assert parse(Source("r.rules", text))[1] == []


def test_after_a_broken_trigger_the_rest_of_the_rule_is_read_for_syntax_errors() -> None:
    text = "rule r\n    when signed_up whre event.x > 1\n    then\n"
    text += '        score += "x"\n        scroe += 2\n    limit 1 per 24x\nend\n'
    # the type error on line 4 waits for the trigger to be fixed: the rule is not checked
    assert [(line, code) for line, code, _ in _found(text)] == [
        (2, "syntax"),
        (5, "syntax"),
        (6, "syntax"),
    ]


def test_a_broken_continuation_line_takes_its_statement_with_it() -> None:
    text = 'rule r\n    when signed_up\n    then\n        send email "w" with { a: 1,\n'
    text += "            b: 2 + }\n        scroe += 1\nend\n"
    assert [(line, code) for line, code, _ in _found(text)] == [(5, "syntax"), (6, "syntax")]


def test_a_misspelt_declaration_after_a_broken_one_is_reported_too() -> None:
    text = "contact { email: string, consent_email bool }\npolcy sms limit 3 per 7d\n"
    text += "let a = 1 +\n\nrle r2\n    when signed_up\n    then\n        score += 1\nend\n"
    assert _found(text) == [
        (1, "syntax", "unexpected `bool`; expected `:`"),
        (2, "syntax", "unexpected `polcy`"),
        (3, "syntax", "unexpected end of the constant `a`; expected an expression"),
        (5, "syntax", "unexpected `rle`"),
    ]


def test_a_keyword_where_a_value_goes_says_something_is_missing() -> None:
    text = "rule r\n    when signed_up\n    then\n        score +=\n        wait\nend\n"
    assert _found(text) == [(5, "unknown-name", "expected a value, found the keyword `wait`")]


def test_a_statement_cut_short_by_the_next_one_is_set_aside_too() -> None:
    text = "event order_completed { cart_id: string, value: number }\nrule r1\n"
    text += '    when signed_up\n    if (contact.score > 1\n    then\n        score += "x"\n'
    text += "    goal order_completed where order_completed.valeu > 1 within 1d\n"
    text += "    quiet hours 22:00\nend\n"
    assert [(line, code) for line, code, _ in _found(text)] == [
        (4, "syntax"),  # the `(` left open: found at `then`, told where the line stops
        (6, "type-mismatch"),
        (7, "unknown-field"),
        (8, "syntax"),  # the quiet hours without their end: found at `end`, told on their line
    ]


def test_a_line_that_is_no_continuation_leaves_the_statement_above_it_whole() -> None:
    # `frobnicate` could continue `"x"` (an operator could come between): it is found there,
    # yet `score += "x"` is whole without it, and checked
    text = 'rule r\n    when ping\n    then\n        score += "x"\n        frobnicate\n'
    text += '        score += "y"\nend\n'
    assert [(line, code) for line, code, _ in _found(text)] == [
        (4, "type-mismatch"),
        (5, "syntax"),
        (6, "type-mismatch"),
    ]


def test_a_declaration_without_its_first_word_is_one_error() -> None:
    # its lines after the `end` before it are no statements of that rule
    text = "rule ok\n    when ping\n    then\n        score += 1\nend\n\n"
    text += "abandoned_cart same_type\n    when ping\n    then\n        score += 1\nend\n"
    assert [(line, code) for line, code, _ in _found(text)] == [(7, "syntax")]


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("if contact.score => 5", "`=>` is not an operator: write `>=`"),
        ("if contact.score =< 5", "`=<` is not an operator: write `<=`"),
        ("if contact.x is nul", "`is` goes with `null`: write `is null` or `is not null`"),
        ("limit 1 per 24x", "`24x` is not a duration: a duration is a whole number and a unit"),
        ("limit 1 per 1dd", "`1dd` is not a duration: a duration is a whole number and a unit"),
    ],
)
def test_common_slips_are_named(written: str, message: str) -> None:
    if written.startswith("if"):
        text = f"rule r\n    when ping\n    {written}\n    then\n        score += 1\nend\n"
    else:
        text = f"rule r\n    when ping\n    then\n        score += 1\n    {written}\nend\n"
    _, diagnostics = parse(Source("r.rules", text))
    assert [d.message.split(" (s, m")[0] for d in diagnostics] == [message]


def test_a_misspelt_keyword_is_read_as_meant_to_find_the_line_s_other_errors() -> None:
    text = 'rule r\n    when signed_up\n    then\n        sned email "w2" wiht { a: 1 }\n'
    text += '        scroe += "x"\nend\n'
    assert _found(text) == [
        (4, "syntax", "unexpected `sned`"),
        (4, "syntax", "unexpected `wiht`"),
        (5, "syntax", "unexpected `scroe`"),
        (5, "type-mismatch", "`score +=` takes a number, not a string"),
    ]


def test_a_stray_character_is_named_without_a_list_of_everything() -> None:
    text = "rule r\n    when signed_up @\n    then\n        score += 1\nend\n"
    _, diagnostics = parse(Source("r.rules", text))
    assert [(d.span.line, d.span.column, d.message) for d in diagnostics] == [
        (2, 20, "unexpected character `@`")
    ]
