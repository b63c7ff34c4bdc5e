"""`nudge fmt` on files in a temporary folder, through the command line entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge.cli import main
from nudge.dsl.fmt import format_source
from nudge.dsl.source import Source

MESSY = "let   a=1\nrule r when e then score+=1 end\n"
BROKEN = 'let a = 1\nrule r when e then send email "t"\n'


def _canonical(text: str) -> str:
    result = format_source(Source("x.rules", text))
    assert isinstance(result, str)
    return result


@pytest.fixture
def ruleset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with rules/messy.rules, rules/clean.rules and rules/sub/deep.rules."""
    rules = tmp_path / "rules"
    (rules / "sub").mkdir(parents=True)
    (rules / "messy.rules").write_text(MESSY, encoding="utf-8")
    (rules / "clean.rules").write_text(_canonical(MESSY), encoding="utf-8")
    (rules / "sub" / "deep.rules").write_text("let  b = 2\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return rules


def test_rewrites_the_rules_folder_in_place(
    ruleset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fmt"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sorted(out) == ["reformatted rules/messy.rules", "reformatted rules/sub/deep.rules"]
    for path in ruleset.rglob("*.rules"):
        text = path.read_text(encoding="utf-8")
        assert _canonical(text) == text
    assert main(["fmt"]) == 0
    assert capsys.readouterr().out == ""


def test_check_writes_nothing_and_names_each_file(
    ruleset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {p: p.read_bytes() for p in ruleset.rglob("*.rules")}
    assert main(["fmt", "--check"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert sorted(out) == [
        "would reformat rules/messy.rules",
        "would reformat rules/sub/deep.rules",
    ]
    assert {p: p.read_bytes() for p in ruleset.rglob("*.rules")} == before


def test_check_passes_on_formatted_files(ruleset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fmt", "--check", "rules/clean.rules"]) == 0
    assert capsys.readouterr().out == ""


def test_diff_shows_the_change_and_writes_nothing(
    ruleset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fmt", "--diff", "rules/messy.rules"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("--- rules/messy.rules\n+++ rules/messy.rules (formatted)\n")
    assert "-let   a=1\n" in out and "+let a = 1\n" in out
    assert (ruleset / "messy.rules").read_text(encoding="utf-8") == MESSY


def test_syntax_errors_are_reported_and_the_file_left_alone(
    ruleset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = ruleset / "broken.rules"
    broken.write_text(BROKEN, encoding="utf-8")
    assert main(["fmt"]) == 1
    captured = capsys.readouterr()
    assert broken.read_text(encoding="utf-8") == BROKEN
    first = captured.err.splitlines()[0]
    assert first.startswith("rules/broken.rules:") and ": error: " in first
    assert "reformatted rules/messy.rules" in captured.out  # the other files are still done


def test_crlf_and_byte_order_mark_are_normalised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "windows.rules"
    path.write_bytes(b"\xef\xbb\xbflet a = 1\r\n")
    assert main(["fmt", "--check", str(path)]) == 1
    assert main(["fmt", str(path)]) == 0
    assert path.read_bytes() == b"let a = 1\n"


def test_missing_path_and_undecodable_file_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fmt", str(tmp_path / "nowhere")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    latin = tmp_path / "latin.rules"
    latin.write_bytes('let a = "caf\xe9"\n'.encode("latin-1"))
    assert main(["fmt", str(latin)]) == 1
    assert "not UTF-8" in capsys.readouterr().err
