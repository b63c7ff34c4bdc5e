"""Replay on Redis: the same actions as in memory, however the input is cut, and nothing
twice: running the same events again on the same Redis gives no action."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import RULESET, _events, steps

from nudge.cli import main
from nudge.devservers import RedisServer
from nudge.engine.clock import ManualClock
from nudge.engine.engine import Engine
from nudge.engine.events import Event, format_time, parse_time
from nudge.engine.runner import Runner
from nudge.engine.state import ContactStore
from nudge.engine.stores.memory import MemoryStore
from nudge.engine.stores.redis import RedisStore
from nudge.engine.synthetic import generate

pytestmark = pytest.mark.redis

RULES = Path(__file__).resolve().parents[2] / "rules"
DB = 9  # `nudge replay` uses the default key prefix: a database of its own, emptied first


@pytest.fixture
def replay_url(redis_server: RedisServer) -> Iterator[str]:
    client = redis.Redis.from_url(redis_server.url_for(DB))
    client.flushdb()
    yield redis_server.url_for(DB)
    client.flushdb()
    client.close()


def _replay(events: Path, capsysbinary: pytest.CaptureFixture[bytes], *flags: str) -> bytes:
    capsysbinary.readouterr()
    code = main(["replay", str(events), "--rules", str(RULES), *flags])
    out = capsysbinary.readouterr()
    assert code == 0, out.err.decode()
    return out.out


def _write(path: Path, events: Sequence[dict[str, object]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def test_replay_in_two_runs_on_redis_gives_the_actions_of_one_run_in_memory(
    tmp_path: Path, replay_url: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    events = list(generate(300, 4000, seed=7))
    until = format_time(parse_time(str(events[-1]["timestamp"])) + 5 * 86400)  # fires waits
    whole = _write(tmp_path / "whole.jsonl", events)
    first = _write(tmp_path / "first.jsonl", events[:2500])
    second = _write(tmp_path / "second.jsonl", events[2500:])

    in_memory = _replay(whole, capsysbinary, "--until", until)
    assert in_memory.count(b"\n") > 50  # the rules do act on the shop

    split = _replay(first, capsysbinary, "--state", replay_url)
    split += _replay(second, capsysbinary, "--state", replay_url, "--until", until)
    assert split == in_memory

    again = _replay(whole, capsysbinary, "--state", replay_url, "--until", until)
    assert again == b""


def test_replay_on_redis_builds_its_timer_index_as_the_settings_say(
    tmp_path: Path,
    replay_url: str,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # what the operations guide says to run when the partition count changes
    monkeypatch.setenv("NUDGE_PARTITIONS", "4")
    monkeypatch.setenv("NUDGE_REDIS_KEY_PREFIX", "shop")  # the workers' keys
    monkeypatch.chdir(tmp_path)  # no nudge.toml here
    events = _write(tmp_path / "events.jsonl", list(generate(20, 100, seed=3)))
    _replay(events, capsysbinary, "--state", replay_url)
    client = redis.Redis.from_url(replay_url)
    try:
        assert client.hget("shop:meta", "partitions") == b"4"
        assert not client.exists("nudge:meta")
    finally:
        client.close()


def test_replay_twice_on_redis_acts_once(
    tmp_path: Path, replay_url: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    events = list(generate(200, 2000, seed=3))
    whole = _write(tmp_path / "events.jsonl", events)
    once = _replay(whole, capsysbinary, "--state", replay_url)
    assert once == _replay(whole, capsysbinary)  # as in memory
    assert once
    assert _replay(whole, capsysbinary, "--state", replay_url) == b""


def test_replay_twice_on_redis_acts_once_when_ids_were_forgotten_meanwhile(
    tmp_path: Path, replay_url: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    # 64 events (the memory of ids is pruned every 64 new ones), then one 18 days later: the
    # first 64 ids are forgotten, but their events are older than what the contact still
    # remembers, so sent again they count as repeats.
    start = parse_time("2026-11-02T10:00:00Z")
    events: list[dict[str, object]] = [
        {
            "id": f"e{i}",
            "event": "signed_up",
            "contact_id": "c1",
            "timestamp": format_time(start + i),
        }
        for i in range(64)
    ]
    events.append({**events[0], "id": "last", "timestamp": format_time(start + 18 * 86400)})
    whole = _write(tmp_path / "events.jsonl", events)
    once = _replay(whole, capsysbinary, "--state", replay_url, "--trace")
    assert once == _replay(whole, capsysbinary, "--trace")
    assert once.count(b"\n") > 64  # each sign-up does something
    assert _replay(whole, capsysbinary, "--state", replay_url, "--trace") == b""
    first = _write(tmp_path / "first.jsonl", events[:1])
    assert _replay(first, capsysbinary, "--state", replay_url, "--trace") == b""


# ---------------------------------------------------------------------- the property


async def _run(
    store: ContactStore, parts: Sequence[Sequence[Event]], batch: int, until: float
) -> list[bytes]:
    """Each part in its own runner (a fresh clock), all on one store (as test_properties)."""
    out: list[bytes] = []
    try:
        for part in [*parts, []]:
            runner = Runner(Engine(RULESET, trace=True), store, ManualClock())
            for i in range(0, len(part), batch):
                d = await runner.process(part[i : i + batch])
                out.extend(orjson.dumps(x if isinstance(x, dict) else x.to_json()) for x in d.trace)
            if not part:
                d = await runner.advance(until)
                out.extend(orjson.dumps(x if isinstance(x, dict) else x.to_json()) for x in d.trace)
    finally:
        await store.close()
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=st.lists(steps, min_size=1, max_size=40),
    cut=st.integers(min_value=0, max_value=40),
    batch=st.integers(min_value=1, max_value=50),
)
def test_redis_runs_like_memory_however_the_input_is_cut(
    redis_server: RedisServer, spec: list[tuple[str, str, int, str]], cut: int, batch: int
) -> None:
    events = _events(spec)
    until = events[-1].ts + 5 * 86400
    whole = asyncio.run(_run(MemoryStore(partitions=3), [events], len(events), until))
    cut = min(cut, len(events))
    prefix = f"p{uuid.uuid4().hex[:12]}"
    store = RedisStore.from_url(redis_server.url, partitions=3, key_prefix=prefix)
    try:
        split = asyncio.run(_run(store, [events[:cut], events[cut:]], batch, until))
        assert split == whole
        repeat = RedisStore.from_url(redis_server.url, partitions=3, key_prefix=prefix)
        assert asyncio.run(_run(repeat, [events], batch, until)) == []
    finally:
        client = redis.Redis.from_url(redis_server.url)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_odd_input_runs_alike_on_redis_and_in_memory(
    tmp_path: Path,
    replay_url: str,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the Redis path must store as JSON: a snapshot of the contact taken by an action,
    # a score past 64 bits, an overflow, a contact id with a control character (set aside),
    # and a stray NUDGE_ variable (its warning goes to stderr, not among the actions).
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "odd.rules").write_text(
        "rule snap\n    when ping\n    then\n"
        '        send webhook "snap" with { c: contact }\n'
        "        score += 9000000000000000000\n"
        "        set contact.big = event.v * 10\nend\n"
        "rule big\n    when pong\n    if contact.big > 5\n    then\n"
        '        send webhook "big"\nend\n'
    )
    at = "2026-11-20T10:0{}:00Z"
    events = [
        {"id": f"p{i}", "event": "ping", "contact_id": "c1", "timestamp": at.format(i),
         "properties": {"v": 1e308}}
        for i in range(3)
    ]  # fmt: skip
    events.append({"id": "q", "event": "pong", "contact_id": "c1", "timestamp": at.format(5)})
    events.append({"id": "x", "event": "ping", "contact_id": "c\x1f2", "timestamp": at.format(6)})
    path = _write(tmp_path / "odd.jsonl", events)
    monkeypatch.setenv("NUDGE_STATE_CAHCE", "0")

    def run(*flags: str) -> bytes:
        capsysbinary.readouterr()
        assert main(["replay", str(path), "--rules", str(rules), *flags]) == 0
        return capsysbinary.readouterr().out

    in_memory = run()
    assert run("--state", replay_url) == in_memory
    actions = [orjson.loads(line) for line in in_memory.splitlines()]
    assert [a["name"] for a in actions] == ["snap", "snap", "snap"]  # overflow: `big` is null
    # each action holds the contact as it was when decided, not as it became
    assert [a["data"]["c"]["score"] for a in actions] == [0, 9e18, 1.8e19]
