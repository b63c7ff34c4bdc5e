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
    assert [(d.span.line, d.message) for d in diagnostics] == [
        (4, f"expected an expression after `*`, found `{keyword}`")
    ]


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
