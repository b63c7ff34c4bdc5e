"""The example rulesets in rules/ check clean, are laid out canonically, and pass their tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge.cli import main

RULES = str(Path(__file__).resolve().parents[2] / "rules")


def test_example_rules_check_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", RULES]) == 0
    assert "error" not in capsys.readouterr().out


def test_example_rules_are_formatted() -> None:
    assert main(["fmt", "--check", RULES]) == 0


def test_example_rules_pass_their_tests(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["test", RULES])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.rstrip().endswith(" passed, 0 failed")
