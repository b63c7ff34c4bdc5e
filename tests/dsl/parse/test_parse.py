"""Parser goldens: each `*.rules` here parses without diagnostics into the tree in `*.ast`.

Regenerate the dumps with `pytest --update-goldens` after a deliberate grammar change.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudge.dsl import ast, load_sources
from nudge.dsl.parse import parse, parse_expression
from nudge.dsl.source import Source

HERE = Path(__file__).parent
CASES = sorted(HERE.glob("*.rules"))


def dump(node: object, indent: int = 0) -> str:
    """An indented, position-free rendering of a syntax tree."""
    pad = "  " * indent
    if isinstance(node, ast.Name):
        return f"{pad}Name {node.value!r}"
    if isinstance(node, tuple):
        if not node:
            return f"{pad}()"
        return "\n".join(dump(item, indent) for item in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        lines = [f"{pad}{type(node).__name__}"]
        for f in dataclasses.fields(node):
            if f.name in ("span", "comments"):
                continue
            value = getattr(node, f.name)
            if value is None or isinstance(value, str | int | float | bool):
                lines.append(f"{pad}  {f.name}: {value!r}")
            else:
                lines.append(f"{pad}  {f.name}:")
                lines.append(dump(value, indent + 2))
        return "\n".join(lines)
    return f"{pad}{node!r}"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_parse_golden(path: Path, update_goldens: bool) -> None:
    rule_file, diagnostics = parse(Source(path.name, path.read_text()))
    assert diagnostics == []
    text = dump(rule_file.decls) + "\n"
    golden = path.with_suffix(".ast")
    if update_goldens or not golden.exists():
        golden.write_text(text)
    assert text == golden.read_text()


def test_spans_point_at_the_text() -> None:
    text = "rule r when cart_updated as cart where cart.vaule > 0 then end\n"
    rule_file, _ = parse(Source("x.rules", text))
    rule = rule_file.decls[0]
    assert isinstance(rule, ast.Rule)
    assert isinstance(rule.trigger, ast.OnEvent)
    where = rule.trigger.match.where
    assert isinstance(where, ast.Compare) and isinstance(where.left, ast.Path)
    field = where.left.parts[1]
    assert text[field.span.start : field.span.end] == "vaule"
    assert (field.span.line, field.span.column) == (1, 45)


def test_comments_are_kept_in_order() -> None:
    text = '# one\nlet a = "# not a comment" # two\n'
    rule_file, _ = parse(Source("x.rules", text))
    assert [c.text for c in rule_file.comments] == [" one", " two"]


def test_comments_may_come_between_the_words_of_an_operator() -> None:
    def tree(text: str) -> str:
        rule_file, diagnostics = parse(Source("x.rules", text))
        assert diagnostics == []
        return dump(rule_file.decls)

    layout = (
        "rule r when a {0} followed {0} by b within 1h\n"
        "if contact.x is {0} not {0} null and contact.y is {0} null and contact.z not {0} in [1]\n"
        "then score += 1 end\n"
    )
    assert tree(layout.format("# note\n")) == tree(layout.format("\n"))
    assert "NotFollowedBy" in tree(layout.format("# note\n").replace("when a", "when a not"))


def test_every_broken_declaration_is_reported_and_good_ones_kept() -> None:
    text = (
        'rule a when e send email "t" end\n'
        "let ok = 1\n"
        "rule b when e if contact.x = 1 then end\n"
        "rule c when e then end\n"
    )
    rule_file, diagnostics = parse(Source("x.rules", text))
    assert [d.span.line for d in diagnostics] == [1, 3]
    assert [type(d).__name__ for d in rule_file.decls] == ["Let", "Rule"]


def test_layout_does_not_change_the_tree() -> None:
    one = parse(Source("a", "rule r when e where e.x > 1 then score += 1 end"))[0]
    two = parse(Source("b", "rule r\n  when e\n    where e.x>1\n  then\n    score+=1\nend\n"))[0]
    assert one.decls == two.decls


def test_parse_expression() -> None:
    expr, diagnostics = parse_expression("contact.x in [1, 2]")
    assert diagnostics == []
    assert isinstance(expr, ast.Compare) and expr.op == "in"


def test_deep_nesting_is_a_diagnostic_not_a_crash() -> None:
    _, diagnostics = parse(Source("x.rules", "let a = " + "not " * 50000 + "x\nlet b = 1"))
    assert [d.code for d in diagnostics] == ["too-deep"]
    parens, problems = parse(Source("x.rules", "let a = " + "(" * 20000 + "1" + ")" * 20000))
    assert problems == [] and len(parens.decls) == 1


def test_a_long_chain_is_reported_at_its_expression_by_the_checker() -> None:
    # 400 `+`: read, but too deep to check; the caret goes under the expression, not line 1
    text = "let small = 1\nlet big = " + " + ".join(["1"] * 400) + "\n"
    result = load_sources([Source("x.rules", text)])
    [found] = result.diagnostics
    assert (found.code, found.span.line, found.span.column) == ("too-deep", 2, 11)
    assert found.message == "this expression is too long or nests too deeply to check"


def test_numbers_of_thousands_of_digits_are_diagnostics_not_crashes() -> None:
    # Python reads no integer of over 4,300 digits
    digits = "1" + "0" * 5000
    text = f"let a = {digits}\nrule r\n    when ping\n    then\n        wait {digits}d\n"
    result = load_sources([Source("x.rules", text + "        score += 1\nend\n")])
    assert [d.code for d in result.diagnostics] == ["bad-number", "long-duration"]


def test_an_invisible_character_inside_a_word_is_named() -> None:
    text = "rule r\n    when ping\n    then\n        sco\u200bre += 1\nend\n"
    _, diagnostics = parse(Source("x.rules", text))
    assert [(d.span.line, d.span.column, d.message) for d in diagnostics] == [
        (4, 12, "an invisible character, U+200B, after `sco`: delete it")
    ]


def test_a_control_character_is_named_by_its_code_point() -> None:
    _, diagnostics = parse(Source("x.rules", "let y = 1\x00\n"))
    assert [(d.span.column, d.message) for d in diagnostics] == [
        (10, "unexpected character U+0000")
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            list('rule when then end let "{}()[]:.,=<>!+-*/#\n 0123456789abcxyz_')
        ),
        max_size=200,
    )
)
def test_parse_never_raises(text: str) -> None:
    parse(Source("fuzz.rules", text))
