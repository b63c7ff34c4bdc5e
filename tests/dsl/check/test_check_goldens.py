"""Checker goldens: each `<code>_<case>.rules` here, parsed and checked on its own, gives exactly
the diagnostics rendered in `<code>_<case>.diag` (and at least one with that code). A `clean_*`
file gives none.

Regenerate the `.diag` files with `pytest --update-goldens` after a deliberate change of wording.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge.dsl.codes import CODES
from nudge.dsl.load import load_sources
from nudge.dsl.render import render_texts
from nudge.dsl.source import Source

HERE = Path(__file__).parent
CASES = sorted(HERE.glob("*.rules"))

# Codes no single rules file can produce: they come from the command line, the file system or
# a templates folder (tested through the commands), or from input too deep to keep as a golden.
NOT_FROM_A_FILE = {
    "no-such-path",
    "unreadable",
    "no-rules",
    "too-deep",
    "missing-template",
    "template-error",
}


def diagnose(path: Path) -> tuple[list[str], str]:
    source = Source(path.name, path.read_text(encoding="utf-8"))
    result = load_sources([source], compile_plan=False)
    return [d.code for d in result.diagnostics], render_texts(result.diagnostics, result.sources)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_check_golden(path: Path, update_goldens: bool) -> None:
    codes, text = diagnose(path)
    code = path.stem.split("_", 1)[0]
    if code == "clean":
        assert codes == [], text
    else:
        assert code in CODES, f"{path.name}: the name must start with a code"
        assert code in codes, text
    golden = path.with_suffix(".diag")
    if update_goldens or not golden.exists():
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_every_code_has_a_golden() -> None:
    covered = {p.stem.split("_", 1)[0] for p in CASES}
    assert set(CODES) - NOT_FROM_A_FILE <= covered


def test_every_golden_names_a_code() -> None:
    for path in CASES:
        code = path.stem.split("_", 1)[0]
        assert code == "clean" or code in CODES, path.name
