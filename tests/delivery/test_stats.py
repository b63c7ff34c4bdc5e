"""Per-rule figures through the commands: `nudge replay --stats`, `nudge run`, `nudge stats`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from nudge_process import NudgeProcess, clean_env

from nudge.cli import main
from nudge.devservers import free_port
from nudge.engine.stats import EVENT_FIGURES

RULES = """\
rule welcome "Greet new sign-ups"
    when signed_up
    if contact.plan != "none"
    then
        send email "welcome"
        show "hello_banner" in "hero"
    limit 1 per 1d
    goal order_completed within 7d
end

rule count_orders
    when order_completed
    then
        score += 1
end
"""


def event(eid: str, kind: str, contact: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"id": eid, "event": kind, "contact_id": contact, "timestamp": at, **fields}


def identify(contact: str, consent: bool) -> dict[str, Any]:
    traits = {"email": f"{contact}@example.se", "consent_email": consent, "plan": "pro"}
    return event(f"{contact}-id", "identify", contact, "2026-11-20T09:00:00Z", traits=traits)


def parse_table(text: str) -> dict[str, dict[str, str]]:
    """The table's rows by rule: cells are separated by two spaces or more."""
    lines = text.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("rule "))
    header = re.split(r"\s{2,}", lines[start].strip())
    rows: dict[str, dict[str, str]] = {}
    for line in lines[start + 1 :]:
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "shop.rules").write_text(RULES)
    return tmp_path / "rules"


def test_replay_stats_counts_decisions_and_outcome_events(
    rules_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    opened = {"action_id": "a-x", "rule": "welcome"}
    events = [
        identify("c1", True),
        identify("c2", False),
        event("s1", "signed_up", "c1", "2026-11-20T09:01:00Z"),
        event("s1b", "signed_up", "c1", "2026-11-20T09:02:00Z"),  # limited
        event("s2", "signed_up", "c2", "2026-11-20T09:01:00Z"),  # no consent for the email
        event("o1", "email_opened", "c1", "2026-11-20T10:00:00Z", properties=opened),
        event("o1", "email_opened", "c1", "2026-11-20T10:05:00Z", properties=opened),  # again
        event("k1", "email_clicked", "c1", "2026-11-20T10:06:00Z", properties=opened),
        event("b1", "order_completed", "c1", "2026-11-21T09:00:00Z"),
    ]
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    assert main(["replay", str(source), "--rules", str(rules_dir), "--stats"]) == 0
    err = capsys.readouterr().err
    assert err.index("timers:") < err.index("per-rule figures:")  # after the summary
    rows = parse_table(err[err.index("per-rule figures:") :])
    welcome = rows["welcome"]
    assert welcome["fired"] == "2"
    assert welcome["suppressed"] == "3 (limited 2, no_consent 1)"  # per action held back
    assert welcome["sent"] == "3"  # c1's email and show, c2's show
    assert (welcome["opened"], welcome["clicked"], welcome["converted"]) == ("1", "1", "1")
    assert welcome["conversion"] == "50.0%"
    assert rows["count_orders"]["fired"] == "1"
    assert rows["count_orders"]["conversion"] == "-"  # no goal


def test_replay_without_stats_prints_no_figures(
    rules_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(orjson.dumps(identify("c1", True)) + b"\n")
    assert main(["replay", str(source), "--rules", str(rules_dir)]) == 0
    assert "per-rule figures" not in capsys.readouterr().err


def test_every_outcome_event_of_the_connectors_has_a_figure() -> None:
    from nudge.connectors.base import Outcome
    from nudge.connectors.dispatch import outcome_event

    for kind in ("email", "sms", "webhook", "audience_add", "audience_remove", "show"):
        for status in ("sent", "bounced", "failed"):
            name = outcome_event({"id": "a", "kind": kind}, Outcome(status), _now())["event"]
            if status == "bounced" and kind != "email":
                continue
            assert name in EVENT_FIGURES, name


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


@pytest.mark.redis
def test_nudge_run_keeps_figures_in_redis_for_nudge_stats(
    rules_dir: Path, tmp_path: Path, redis_db_url: str
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "welcome.subject.txt").write_text("Welcome\n")
    (templates / "welcome.html").write_text("<html><body><p>Hello</p></body></html>\n")
    port = free_port()
    process = NudgeProcess(
        ["run", "--rules", "rules", "--port", str(port), "--redis", redis_db_url],
        tmp_path,
        clean_env(NUDGE_REDIS_KEY_PREFIX="shop"),
        name="run",
    ).start()
    base = f"http://127.0.0.1:{port}"
    try:
        process.wait_for(lambda: "run.listening" in process.stderr, "the collector")
        now = _now().isoformat().replace("+00:00", "Z")  # goals are measured on wall time here
        httpx.post(
            f"{base}/v1/events",
            json=[
                identify("c1", True),
                identify("c2", False),
                event("s1", "signed_up", "c1", now),
                event("s2", "signed_up", "c2", now),
            ],
        )
        email = process.wait_for(lambda: _outbox_email(tmp_path), "the email in the outbox")
        pixel = re.search(r'src="(http://[^"]+/t/o/[^"]+)"', email["rendered"]["html"])
        assert pixel is not None
        for _ in range(2):  # opened twice: one email opened
            assert httpx.get(pixel.group(1)).status_code == 200
        later = _now().isoformat().replace("+00:00", "Z")
        httpx.post(f"{base}/v1/events", json=[event("b1", "order_completed", "c1", later)])
    finally:
        assert process.stop() == 0

    stats = NudgeProcess(
        ["stats", "--redis", redis_db_url, "--format", "json"],
        tmp_path,
        clean_env(NUDGE_REDIS_KEY_PREFIX="shop"),
        name="stats",
    ).start()
    assert stats.process is not None and stats.process.wait(30) == 0
    figures = {row["rule"]: row for row in orjson.loads(stats.stdout)}
    welcome = figures["welcome"]
    assert welcome["fired"] == 2
    assert welcome["suppressed"] == {"no_consent": 1}
    assert welcome["sent"] == 3
    assert welcome["delivered"] == 3  # email_sent, and content_shown twice
    assert (welcome["opened"], welcome["converted"]) == (1, 1)
    assert welcome["conversion_rate"] == 0.5

    table = NudgeProcess(
        ["stats", "--redis", redis_db_url, "--rules", "rules"],
        tmp_path,
        clean_env(NUDGE_REDIS_KEY_PREFIX="shop"),
        name="table",
    ).start()
    assert table.process is not None and table.process.wait(30) == 0
    rows = parse_table(table.stdout)
    assert rows["welcome"]["delivered"] == "3" and rows["welcome"]["conversion"] == "50.0%"


def test_nudge_stats_needs_redis(tmp_path: Path) -> None:
    process = NudgeProcess(["stats"], tmp_path, clean_env(), name="stats").start()
    assert process.process is not None and process.process.wait(30) == 2
    assert "NUDGE_REDIS_URL" in process.stderr


def _outbox_email(root: Path) -> dict[str, Any] | None:
    path = root / "outbox" / "email.jsonl"
    if not path.exists() or not path.read_bytes().endswith(b"\n"):
        return None
    line: dict[str, Any] = orjson.loads(path.read_bytes().splitlines()[0])
    return line


@pytest.mark.kafka
@pytest.mark.redis
async def test_the_streaming_worker_keeps_figures_for_nudge_stats(
    rules_dir: Path, tmp_path: Path, redis_db_url: str, kafka_broker: Any, topic_prefix: str
) -> None:
    import asyncio

    from nudge.engine.events import Event, event_from_dict
    from nudge.engine.kafka_io import pack_events, start_producer

    partitions = 2
    env = clean_env(
        NUDGE_EVENTS_TOPIC=f"{topic_prefix}.events",
        NUDGE_ACTIONS_TOPIC=f"{topic_prefix}.actions",
        NUDGE_DLQ_TOPIC=f"{topic_prefix}.dlq",
        NUDGE_APP_ID=topic_prefix,
        NUDGE_SESSION_TIMEOUT="3",
        NUDGE_HEARTBEAT_INTERVAL="0.5",
    )
    for topic in ("events", "actions", "dlq"):
        await kafka_broker.create_topic(f"{topic_prefix}.{topic}", partitions)
    worker = NudgeProcess(
        ["worker", "--rules", str(rules_dir), "--broker", kafka_broker.url, "--redis",
         redis_db_url, "--partitions", str(partitions)],
        tmp_path,
        env,
        name="worker",
    ).start()  # fmt: skip
    try:
        worker.wait_for(lambda: "worker.assigned" in worker.stderr, "partitions", timeout=60)
        items = [
            identify("c1", True),
            event("s1", "signed_up", "c1", "2026-11-20T09:01:00Z"),
            event(
                "o1", "email_opened", "c1", "2026-11-20T10:00:00Z",
                properties={"action_id": "a-1", "rule": "welcome"},
            ),
        ]  # fmt: skip
        events = [e for e in map(event_from_dict, items) if isinstance(e, Event)]
        producer = await start_producer(kafka_broker.bootstrap)
        try:
            for record in pack_events(events, partitions):
                await producer.send_and_wait(
                    f"{topic_prefix}.events",
                    record.value,
                    key=record.key,
                    partition=record.partition,
                )
        finally:
            await producer.stop()

        def figures() -> dict[str, Any] | None:
            stats = NudgeProcess(
                ["stats", "--redis", redis_db_url, "--format", "json"], tmp_path, env, "stats"
            ).start()
            assert stats.process is not None and stats.process.wait(30) == 0
            rows = {row["rule"]: row for row in orjson.loads(stats.stdout)}
            welcome = rows.get("welcome")
            return welcome if welcome and welcome["opened"] else None

        deadline = asyncio.get_running_loop().time() + 40
        while (welcome := figures()) is None:
            assert asyncio.get_running_loop().time() < deadline, worker.stderr[-3000:]
            await asyncio.sleep(0.5)
        assert (welcome["fired"], welcome["sent"], welcome["opened"]) == (1, 2, 1)
    finally:
        assert worker.stop() == 0
