"""The formatter against golden files, and its promises on every file we have.

Each `x.rules` here is formatted and compared with `x.rules.formatted`. Regenerate the expected
files after a deliberate layout change with `pytest --update-goldens`, and read the diff before
committing it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nudge.dsl import ast
from nudge.dsl.fmt import KEYWORDS, LINE_LIMIT, format_source
from nudge.dsl.parse import parse
from nudge.dsl.source import Source

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
GOLDENS = sorted(HERE.glob("*.rules"))
RULES = sorted((ROOT / "rules").rglob("*.rules"))


def _fmt(text: str, path: str = "x.rules") -> str:
    result = format_source(Source(path, text))
    assert isinstance(result, str), [str(d.span) + " " + d.message for d in result]
    return result


def _meaning(text: str) -> tuple[tuple[ast.Decl, ...], list[str]]:
    rule_file, diagnostics = parse(Source("x.rules", text))
    assert not diagnostics
    return rule_file.decls, [c.text.rstrip() for c in rule_file.comments]


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: p.stem)
def test_golden(path: Path, update_goldens: bool) -> None:
    expected_path = path.with_name(path.name + ".formatted")
    actual = _fmt(path.read_text(encoding="utf-8"), str(path))
    if update_goldens:
        expected_path.write_text(actual, encoding="utf-8")
    assert expected_path.exists(), f"no {expected_path.name}: run pytest --update-goldens"
    assert actual == expected_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: p.stem)
def test_golden_keeps_meaning_and_is_stable(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    once = _fmt(text)
    assert _meaning(once) == _meaning(text)
    assert _fmt(once) == once


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: p.stem)
def test_golden_lines_fit_where_they_can_break(path: Path) -> None:
    """Every line of the canonical text fits, but for a few that cannot be broken."""
    unbreakable = re.compile(r"^\s*(let|segment) \w+ = \S+\(|.*\bwithin \d+\w$")
    for line in _fmt(path.read_text(encoding="utf-8")).splitlines():
        code = line.split("  #")[0] if not line.lstrip().startswith("#") else ""
        assert len(code) <= LINE_LIMIT or unbreakable.match(code), line


@pytest.mark.parametrize("path", RULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_rules_folder_formats_stably(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    once = _fmt(text, str(path))
    assert _meaning(once) == _meaning(text)
    assert _fmt(once) == once


def test_syntax_errors_are_returned_not_formatted() -> None:
    text = 'let a = 1\nrule r when e then send email "t"\n'
    result = format_source(Source("broken.rules", text))
    assert isinstance(result, list) and result
    assert all(d.is_error and d.span.path == "broken.rules" for d in result)


def test_empty_and_comment_only_files() -> None:
    assert _fmt("") == ""
    assert _fmt("\n\n  \n") == ""
    assert _fmt("\n\n# only a comment   \n\n\n# and another\n") == (
        "# only a comment\n\n# and another\n"
    )


def test_crlf_becomes_lf_and_comments_lose_trailing_spaces() -> None:
    text = "let a = 1  # one \r\n\r\n\r\nlet b = 2\r\n"
    assert _fmt(text) == "let a = 1  # one\n\nlet b = 2\n"


def test_contact_names_that_are_keywords_stay_quoted() -> None:
    for word in sorted(KEYWORDS):
        text = f'test "t"\n    given contact "{word}"\n    expect "{word}" email\nend\n'
        once = _fmt(text)
        assert f'"{word}"' in once
        assert _meaning(once) == _meaning(text)


def test_keywords_cover_the_grammar() -> None:
    grammar = (ROOT / "dsl" / "grammar.lark").read_text(encoding="utf-8")
    words = set(re.findall(r'"([a-z_]+)"', grammar))
    assert words <= KEYWORDS


@pytest.mark.parametrize("depth", [50, 300, 1000])
def test_deep_nesting_is_formatted_or_refused_never_raises(depth: int) -> None:
    for text in (
        "let x = " + "[" * depth + "]" * depth,
        "let x = " + " and ".join(["a"] * depth),
        "let x = " + "a - (" * depth + "b" + ")" * depth,
    ):
        result = format_source(Source("deep.rules", text))
        if isinstance(result, str):
            assert _meaning(result)[0] == _meaning(text)[0]
        else:
            assert [d.code for d in result] == ["too-deep"]
