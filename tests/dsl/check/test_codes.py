"""The table of diagnostic codes: complete, consistent with what the code emits, documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nudge.dsl.codes import CODES, Code, diagnostic, markdown
from nudge.dsl.diagnostics import Severity
from nudge.dsl.load import load_sources
from nudge.dsl.source import Source

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "diagnostics.md"
# A code given as the first argument of error(), warning() or diagnostic() in the sources.
EMITTED = re.compile(r"\b(?:error|warning|diagnostic)\(\s*\"([a-z][a-z-]*)\"")


def test_docs_are_generated_from_the_table(update_goldens: bool) -> None:
    if update_goldens:
        DOC.write_text(markdown(), encoding="utf-8")
    assert DOC.read_text(encoding="utf-8") == markdown(), "run pytest --update-goldens"


def test_every_code_is_documented_once() -> None:
    text = markdown()
    for code in CODES:
        assert text.count(f"\n## {code}\n") == 1


def test_codes_are_kebab_case_with_a_title_and_an_explanation() -> None:
    for code in CODES.values():
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", code.id)
        assert code.title and not code.title.endswith(".")
        assert len(code.explanation) > 40


@pytest.mark.parametrize("code", [c for c in CODES.values() if c.checked], ids=lambda c: c.id)
def test_each_example_produces_its_code(code: Code) -> None:
    result = load_sources([Source(f"{code.id}.rules", code.example)], compile_plan=False)
    assert code.id in [d.code for d in result.diagnostics]
    assert all(d.severity is CODES[d.code].severity for d in result.diagnostics)


def test_every_code_the_sources_emit_is_in_the_table() -> None:
    sources = [*ROOT.joinpath("dsl").rglob("*.py"), *ROOT.joinpath("nudge").rglob("*.py")]
    emitted = {m for path in sources for m in EMITTED.findall(path.read_text(encoding="utf-8"))}
    assert emitted, "the pattern finds nothing: the way diagnostics are built has changed"
    assert emitted <= set(CODES)


def test_diagnostic_takes_the_severity_of_its_code() -> None:
    span = Source("x.rules", "x").span(0, 1)
    assert diagnostic("compare-null", "m", span).severity is Severity.WARNING
    assert diagnostic("unknown-field", "m", span).severity is Severity.ERROR
    with pytest.raises(KeyError):
        diagnostic("no-such-code", "m", span)
