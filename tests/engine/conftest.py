"""Engine tests: helpers to run `nudge replay` and `nudge test` on rules written in tmp_path.

The store contract suite (store_contract.py) is imported by each store's test module.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nudge.cli import main

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

Event = dict[str, Any]


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[Any]:
    """A 3-node Redis Cluster on loopback, for the test module (redis_cluster.py)."""
    from redis_cluster import RedisClusterServer

    with RedisClusterServer(nodes=3) as cluster:
        yield cluster


@pytest.fixture
def prefix() -> str:
    """A key prefix of the test's own on the shared Redis."""
    return f"t{uuid.uuid4().hex[:12]}"


def at(hhmm: str, day: int = 20, month: int = 11) -> str:
    """A timestamp on 2026-<month>-<day> at HH:MM (or HH:MM:SS) UTC."""
    if hhmm.count(":") == 1:
        hhmm += ":00"
    return f"2026-{month:02d}-{day:02d}T{hhmm}Z"


def ev(eid: str, event: str, contact: str, when: str, **properties: Any) -> Event:
    """An input event as JSON data."""
    out: Event = {"id": eid, "event": event, "contact_id": contact, "timestamp": when}
    if properties:
        out["properties"] = properties
    return out


def identify(
    eid: str, contact: str, when: str, anonymous_id: str | None = None, **traits: Any
) -> Event:
    out: Event = {"id": eid, "event": "identify", "contact_id": contact, "timestamp": when}
    out["traits"] = traits
    if anonymous_id is not None:
        out["anonymous_id"] = anonymous_id
    return out


@dataclass
class Replayed:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def actions(self, kind: str | None = None, rule: str | None = None) -> list[dict[str, Any]]:
        """The printed actions (not trace records, not suppressed ones)."""
        return [
            x
            for x in self.lines
            if "id" in x
            and "suppressed" not in x
            and (kind is None or x["kind"] == kind)
            and (rule is None or x["rule"] == rule)
        ]

    def suppressed(self, reason: str | None = None) -> list[dict[str, Any]]:
        return [
            x
            for x in self.lines
            if "suppressed" in x and (reason is None or x["suppressed"] == reason)
        ]

    def records(self, kind: str) -> list[dict[str, Any]]:
        """Trace records of a kind (trait, score, stage, segment, conversion, ...)."""
        return [x for x in self.lines if "id" not in x and x.get("kind") == kind]

    def summary(self) -> dict[str, str]:
        """The stderr summary as {first word: rest of the line}."""
        out = {}
        for line in self.stderr.splitlines():
            head, _, rest = line.partition(": ")
            out[head] = rest
        return out


Replay = Callable[..., Replayed]


@pytest.fixture
def replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Replay:
    """`replay(rules_text, events, *flags)`: write both to tmp_path and run `nudge replay`."""
    counter = [0]

    def run(rules: str, events: list[Event | str], *flags: str) -> Replayed:
        counter[0] += 1
        folder = tmp_path / f"rules{counter[0]}"
        folder.mkdir()
        (folder / "main.rules").write_text(rules)
        path = tmp_path / f"events{counter[0]}.jsonl"
        path.write_text(
            "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events)
        )
        capsys.readouterr()
        code = main(["replay", str(path), "--rules", str(folder), *flags])
        out = capsys.readouterr()
        return Replayed(code, out.out, out.err)

    return run


@dataclass
class RanTests:
    code: int
    stdout: str
    stderr: str
    path: Path


@pytest.fixture
def nudge_test(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[[str], RanTests]:
    """`nudge_test(rules_text)`: write a rules file with tests and run `nudge test` on it."""

    def run(rules: str) -> RanTests:
        path = tmp_path / "t.rules"
        path.write_text(rules)
        capsys.readouterr()
        code = main(["test", str(path)])
        out = capsys.readouterr()
        return RanTests(code, out.out, out.err, path)

    return run
