"""`nudge demo`: the README's first command, on a small shop."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from nudge.cli import main

RULES = str(Path(__file__).resolve().parents[2] / "rules")


def test_demo_shows_what_the_example_rules_send(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_file = tmp_path / "actions.jsonl"
    code = main(
        [
            "demo",
            "--contacts",
            "80",
            "--events",
            "4000",
            "--rules",
            RULES,
            "--output",
            str(out_file),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    actions = [orjson.loads(line) for line in out_file.read_bytes().splitlines()]
    assert actions, "the example shop should trigger some actions"
    total = re.search(r"^actions: (\d+)", out, re.MULTILINE)
    assert total is not None and int(total.group(1)) == len(actions)
    # Every rule that acted has a row in the table with its total.
    for rule in {a["rule"] for a in actions}:
        row = re.search(rf"^{rule}\s.*\s(\d+)$", out, re.MULTILINE)
        assert row is not None, rule
        assert int(row.group(1)) == sum(1 for a in actions if a["rule"] == rule)


def test_demo_refuses_a_broken_ruleset(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "bad.rules").write_text('rule r when e then send emial "x" end\n')
    assert main(["demo", "--events", "100", "--rules", str(tmp_path)]) == 1
    assert "did you mean `email`?" in capsys.readouterr().err
