"""Syntax error goldens: each `parse_errors/<case>.rules` is a common mistake; its `.diag` holds
the exact text `nudge check` prints for it. Regenerate with `pytest --update-goldens` after a
deliberate change of wording.
"""

from __future__ import annotations

from pathlib import Path

import pytest

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
