"""`expect ... audience add "x"` / `audience remove "x"` in tests: the steps' own spelling, read as
the action kinds `audience_add` / `audience_remove`, run by `nudge test`, laid out by `nudge fmt`."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge.cli import main

RULE = """\
rule join
    when signed_up
    then
        audience add "new_signups"
        audience remove "prospects"
end
"""

PASSING = """
test "audience steps as written"
    given contact c1 { consent_ads: true }
    at 2026-11-20T10:00:00Z c1 signed_up
    expect c1 audience add "new_signups"
    expect audience remove "prospects"
    expect c1 audience_add "new_signups"
    expect no c1 audience remove "new_signups"
end
"""

FAILING = """
test "the wrong audience"
    given contact c1 { consent_ads: true }
    at 2026-11-20T10:00:00Z c1 signed_up
    expect c1 audience add "prospects"
end
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "join.rules"
    path.write_text(text, encoding="utf-8")
    return path


def test_audience_add_and_remove_are_expected_action_kinds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, RULE + PASSING)
    assert main(["check", str(path)]) == 0
    assert main(["test", str(path)]) == 0, capsys.readouterr().out
    assert capsys.readouterr().out.rstrip().endswith("1 passed, 0 failed")


def test_a_wrong_audience_fails_the_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, RULE + FAILING)
    assert main(["test", str(path)]) == 1
    out = capsys.readouterr().out
    assert f'{path}:11: expect c1 audience_add "prospects"' in out
    assert 'c1 audience_add "new_signups"' in out  # the actions that did happen


def test_fmt_writes_the_action_kind_and_is_stable(tmp_path: Path) -> None:
    path = write(tmp_path, RULE + PASSING)
    assert main(["fmt", str(path)]) == 0
    once = path.read_text(encoding="utf-8")
    assert 'expect c1 audience_add "new_signups"\n' in once
    assert 'expect audience_remove "prospects"\n' in once
    assert 'expect no c1 audience_remove "new_signups"\n' in once
    assert "audience add" not in once.split("test ")[1]
    assert main(["fmt", "--check", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == once


def test_audience_without_add_or_remove_says_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, RULE + PASSING.replace('audience add "new_signups"', 'audience "x"', 1))
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert ':11:24: error: unexpected string "x"; expected `add` or `remove` [syntax]' in out
