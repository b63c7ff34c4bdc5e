"""`nudge check`: what it prints, where, and its exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nudge.cli import main
from nudge.commands import check as check_command
from nudge.dsl.check import Checked
from nudge.dsl.codes import diagnostic
from nudge.dsl.diagnostics import Diagnostic
from nudge.dsl.source import Source

ROOT = Path(__file__).resolve().parents[3]

GOOD = """\
event signed_up { source: string }

rule welcome
    when signed_up where signed_up.source == "footer"
    then
        send email "welcome_1"
end
"""

BAD = """\
event signed_up { source: string }

rule welcome
    when signed_up where signed_up.sorce == "footer"
    then
        score += "ten"
end
"""

WARNED = """\
rule greet
    when signed_up
    if contact.email != null
    then
        send email "welcome_1"
end
"""


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_a_clean_ruleset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(tmp_path / "rules", {"a.rules": GOOD, "b.rules": 'let nordic = ["SE"]\n'})
    assert main(["check", str(rules)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"{rules}: 1 rule in 2 files, all good\n"


def test_errors_are_printed_and_fail_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(tmp_path / "rules", {"a.rules": BAD})
    assert main(["check", str(rules)]) == 1
    out, err = capsys.readouterr()
    path = rules / "a.rules"
    assert out.startswith(
        f"{path}:4:36: error: unknown field `sorce` on event signed_up "
        "(did you mean `source`?) [unknown-field]\n"
        '    when signed_up where signed_up.sorce == "footer"\n'
        "                                   ^^^^^\n"
    )
    assert "[type-mismatch]" in out
    assert err == "2 errors in 1 file\n"


def test_warnings_alone_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(tmp_path / "rules", {"a.rules": WARNED})
    assert main(["check", str(rules)]) == 0
    out, err = capsys.readouterr()
    assert "warning: `!= null` is never true" in out
    assert err == f"{rules}: 1 rule in 1 file, 1 warning\n"


def test_every_file_is_checked_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(tmp_path / "rules", {"a.rules": BAD})
    write(rules / "sub", {"b.rules": WARNED})
    assert main(["check", str(rules)]) == 1
    _, err = capsys.readouterr()
    assert err == "2 errors, 1 warning in 2 files\n"


def test_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(tmp_path / "rules", {"a.rules": BAD})
    assert main(["check", "--format", "json", str(rules)]) == 1
    out, _ = capsys.readouterr()
    found = json.loads(out)
    assert [d["code"] for d in found] == ["unknown-field", "type-mismatch"]
    assert found[0]["line"] == 4 and found[0]["column"] == 36
    assert set(found[0]) == {
        "code",
        "severity",
        "message",
        "path",
        "line",
        "column",
        "end_line",
        "end_column",
        "label",
        "notes",
    }


def test_the_default_folder_is_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "rules", {"a.rules": GOOD})
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 0
    assert capsys.readouterr().err == "rules/: 1 rule in 1 file, all good\n"


def test_a_missing_path_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(tmp_path / "rules", {"a.rules": GOOD})
    missing = tmp_path / "rulez"
    assert main(["check", str(rules), str(missing)]) == 1
    out, err = capsys.readouterr()
    assert f"{missing}: error: no such file or folder [no-such-path]" in out
    assert err == "1 error in 1 file\n"


def test_a_folder_without_rules_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["check", str(empty)]) == 1
    assert "[no-rules]" in capsys.readouterr().out


def test_an_unreadable_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.rules").write_bytes(b"let a = \xff\xfe\n")
    assert main(["check", str(rules)]) == 1
    assert "[unreadable]" in capsys.readouterr().out


def test_a_file_that_is_not_utf8_is_shown_at_its_first_bad_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "a.rules"
    path.write_bytes(b"rule r\n    when ping # k\xf6p\n    then\n        score += 1\nend\n")
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0]
        == f"{path}:2:18: error: cannot read this file: byte 0xf6 is not UTF-8 text [unreadable]"
    )
    assert out[1:] == ["    when ping # k\ufffdp", "                 ^"]


def test_the_extra_checks_hook_is_reported_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = write(tmp_path / "rules", {"a.rules": GOOD})
    template = write(tmp_path / "rules" / "templates", {"welcome_1.txt": "Hi {{ name\n"})
    seen: list[tuple[Path, Checked]] = []

    def fake(ruleset_dir: Path, checked: Checked) -> list[Diagnostic]:
        seen.append((ruleset_dir, checked))
        source = Source(str(template / "welcome_1.txt"), "Hi {{ name\n")
        return [diagnostic("syntax", "unclosed tag", source.span(3, 5))]

    monkeypatch.setattr(check_command, "extra_checks", fake)
    assert main(["check", str(rules)]) == 1
    out, err = capsys.readouterr()
    assert seen and seen[0][0] == rules and seen[0][1].ok
    assert "welcome_1.txt:1:4: error: unclosed tag [syntax]\n    Hi {{ name\n       ^^" in out
    assert err == "1 error in 1 file\n"


def test_the_example_ruleset_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(ROOT / "rules")]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith(", all good\n")


def test_summary_wording() -> None:
    span = Source("a.rules", "x").span(0, 1)
    many = [diagnostic("unknown-name", "m", span)] * 25
    assert check_command.summary(["rules/"], many, 3, 7) == "25 errors in 1 file"
    assert check_command.summary(["rules/"], [], 3, 7) == "rules/: 7 rules in 3 files, all good"


def test_every_error_is_reported_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # LANGUAGE.md section 7: every error in one run, not just the first (nor the first 20).
    event = "event signed_up { source: string }\n"
    unknown_fields = "".join(
        f'rule r{i}\n    when signed_up where signed_up.sorce == "x{i}"\n    then\n'
        f'        send email "welcome_1"\nend\n\n'
        for i in range(25)
    )
    missing_then = "".join(
        f'rule s{i}\n    when signed_up\n    if contact.vip\n        send email "t"\nend\n\n'
        for i in range(25)
    )
    rules = write(tmp_path / "rules", {"a.rules": event + unknown_fields, "b.rules": missing_then})
    assert main(["check", str(rules)]) == 1
    out, err = capsys.readouterr()
    assert out.count(": error: unknown field `sorce`") == 25
    assert out.count(": error: unexpected `send`; expected `then`") == 25
    assert err == "50 errors in 2 files\n"
    assert main(["check", "--format", "json", str(rules)]) == 1
    assert len(json.loads(capsys.readouterr().out)) == 50
