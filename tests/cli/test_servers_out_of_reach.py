"""A server out of reach, or an address that is none, is one clear line and an exit status:
never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge.cli import main

EVENT = b'{"id":"e1","event":"ping","contact_id":"c1","timestamp":"2026-11-20T10:00:00Z"}\n'
NOBODY = "127.0.0.1:1"  # nothing listens on port 1


@pytest.fixture
def events(tmp_path: Path) -> str:
    path = tmp_path / "events.jsonl"
    path.write_bytes(EVENT)
    return str(path)


@pytest.mark.parametrize(
    "command", [["produce", "EVENTS"], ["deliver"], ["collect", "--port", "0"]]
)
def test_a_broker_out_of_reach_is_said_in_one_line(
    command: list[str], events: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [events if a == "EVENTS" else a for a in command]
    assert main([*args, "--broker", f"kafka://{NOBODY}"]) == 1
    err = capsys.readouterr().err
    assert f"nudge {command[0]}: cannot reach the broker at kafka://{NOBODY}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["produce", "collect", "deliver", "worker"])
def test_a_broker_address_without_a_port_number_is_a_bad_setting(
    command: str, events: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [command, events] if command == "produce" else [command]
    assert main([*args, "--broker", "kafka://127.0.0.1:notaport"]) == 2
    assert capsys.readouterr().err == (
        f"nudge {command}: broker_url: `notaport` in `kafka://127.0.0.1:notaport` "
        "is no port number\n"
    )


def test_replay_on_a_redis_out_of_reach_is_said_in_one_line(
    events: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", events, "--state", f"redis://{NOBODY}/0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"nudge replay: cannot reach redis://{NOBODY}/0: ")
    assert len(err.splitlines()) == 1


def test_run_refuses_an_outbox_that_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "outbox"
    taken.write_text("not a folder")
    assert main(["run", "--outbox", str(taken), "--port", "0"]) == 1
    assert f"nudge run: outbox: {taken} is not a folder" in capsys.readouterr().err
