"""Producing to Kafka: packed records, keys, partitions and the dead-letter topic."""

from __future__ import annotations

import asyncio
import io
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from stream_topics import read_topic

from nudge.cli import main
from nudge.devservers import KafkaBroker
from nudge.engine.events import Event, Rejected, parse_event, parse_record
from nudge.engine.kafka_io import (
    KafkaSink,
    TopicError,
    bootstrap_servers,
    ensure_topics,
    pack_events,
    start_producer,
)
from nudge.engine.partitioning import partition_for


def make_event(n: int, contact: str, size: int = 0) -> Event:
    properties = {"n": n, "pad": "x" * size} if size else {"n": n}
    return Event(
        f"e-{n}", "viewed", contact, 1.0 * n, f"2026-11-20T10:00:{n % 60:02d}Z", properties
    )


def test_bootstrap_servers() -> None:
    assert bootstrap_servers("kafka://127.0.0.1:9092") == "127.0.0.1:9092"
    assert bootstrap_servers("kafka://a:1,b:2") == "a:1,b:2"
    assert bootstrap_servers("kafka://a:1;kafka://b:2") == "a:1,b:2"
    assert bootstrap_servers("broker") == "broker:9092"
    with pytest.raises(ValueError, match="scheme"):
        bootstrap_servers("http://a:1")


def test_pack_events_groups_by_partition_keeping_order() -> None:
    events = [make_event(n, f"c-{n % 13}") for n in range(200)]
    records = pack_events(events, 4)
    assert len(records) == len({r.partition for r in records}) <= 4
    seen: list[str] = []
    for record in records:
        decoded = parse_record(record.value)
        assert all(isinstance(e, Event) for e in decoded)
        assert record.count == len(decoded)
        assert record.key == decoded[0].contact_id.encode()  # type: ignore[union-attr]
        for e in decoded:
            assert isinstance(e, Event)
            assert partition_for(e.contact_id, 4) == record.partition
            seen.append(e.id)
    by_contact: dict[str, list[int]] = defaultdict(list)
    for eid in seen:
        n = int(eid.split("-")[1])
        by_contact[f"c-{n % 13}"].append(n)
    assert all(ns == sorted(ns) for ns in by_contact.values())
    assert sorted(seen) == sorted(e.id for e in events)


def test_pack_events_splits_at_the_size_limit() -> None:
    events = [make_event(n, "c-1", size=1000) for n in range(50)]
    records = pack_events(events, 1, max_bytes=8 * 1024)
    assert len(records) > 5
    assert all(len(r.value) <= 8 * 1024 for r in records)
    ids = [e.id for r in records for e in parse_record(r.value) if isinstance(e, Event)]
    assert ids == [e.id for e in events]
    # An event larger than the limit still goes out, alone.
    (big,) = pack_events([make_event(1, "c", size=20_000)], 1, max_bytes=1000)
    assert big.count == 1


@pytest.mark.kafka
async def test_topics_created_and_partition_count_checked(
    kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    events, dlq = f"{topic_prefix}.events", f"{topic_prefix}.dlq"
    counts = await ensure_topics(kafka_broker.bootstrap, {events: 3, dlq: 1}, exact=[events])
    assert counts == {events: 3, dlq: 1}
    assert await ensure_topics(kafka_broker.bootstrap, {events: 3}, exact=[events]) == {events: 3}
    with pytest.raises(TopicError, match="has 3 partitions"):
        await ensure_topics(kafka_broker.bootstrap, {events: 4}, exact=[events])


@pytest.mark.kafka
async def test_sink_packs_concurrent_calls_onto_contact_partitions(
    kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    topic, dlq = f"{topic_prefix}.events", f"{topic_prefix}.dlq"
    await ensure_topics(kafka_broker.bootstrap, {topic: 4, dlq: 4})
    producer = await start_producer(kafka_broker.bootstrap)
    try:
        sink = KafkaSink(producer, topic=topic, dlq_topic=dlq, partitions=4, linger=0.05)
        calls = [[make_event(10 * c + i, f"c-{c}") for i in range(5)] for c in range(8)]
        await asyncio.gather(*(sink.accept(batch) for batch in calls))
        bad = parse_event(b'{"id": "x", "event": "a"}')
        assert isinstance(bad, Rejected)
        await sink.reject([bad])
    finally:
        await producer.stop()
    assert sink.events_sent == 40
    assert sink.records_sent <= 4  # one linger window: at most one record per partition
    records = await read_topic(kafka_broker.bootstrap, topic)
    assert len(records) == sink.records_sent
    got: dict[str, list[str]] = defaultdict(list)
    for record in records:
        for e in parse_record(record.value):
            assert isinstance(e, Event)
            assert record.partition == partition_for(e.contact_id, 4)
            got[e.contact_id].append(e.id)
        assert record.key == orjson.loads(record.value)[0]["contact_id"].encode()
    assert got == {f"c-{c}": [f"e-{10 * c + i}" for i in range(5)] for c in range(8)}
    (dead,) = await read_topic(kafka_broker.bootstrap, dlq)
    letter = orjson.loads(dead.value)
    assert letter["reason"] == "missing_field"
    assert letter["source"] == "collector"
    assert orjson.loads(letter["raw"]) == {"id": "x", "event": "a"}


@pytest.mark.kafka
def test_produce_command(
    kafka_broker: KafkaBroker,
    topic_prefix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic, dlq = f"{topic_prefix}.events", f"{topic_prefix}.dlq"
    monkeypatch.setenv("NUDGE_EVENTS_TOPIC", topic)
    monkeypatch.setenv("NUDGE_DLQ_TOPIC", dlq)
    monkeypatch.chdir(tmp_path)
    lines = io.BytesIO()
    for n in range(1000):
        lines.write(orjson.dumps(make_event(n, f"c-{n % 50}").to_json()) + b"\n")
        if n % 400 == 7:
            lines.write(b'{"id": "bad", "event": "x", "contact_id": "c", "timestamp": "nope"}\n')
    lines.write(b"this is not json\n")
    path = tmp_path / "events.jsonl"
    path.write_bytes(lines.getvalue())
    code = main(
        ["produce", str(path), "--broker", kafka_broker.url, "--batch", "300", "--partitions", "3"]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "produced 1000 events" in err
    assert "rejected 4 (bad_timestamp 3, not_json 1)" in err

    records = asyncio.run(read_topic(kafka_broker.bootstrap, topic))
    events = [e for r in records for e in parse_record(r.value)]
    assert len(events) == 1000
    assert len(records) < 30
    per_contact: dict[str, list[int]] = defaultdict(list)
    for e in events:
        assert isinstance(e, Event)
        per_contact[e.contact_id].append(e.properties["n"])
    assert all(ts == sorted(ts) for ts in per_contact.values())
    dead = asyncio.run(read_topic(kafka_broker.bootstrap, dlq))
    reasons = sorted(orjson.loads(r.value)["reason"] for r in dead)
    assert reasons == ["bad_timestamp"] * 3 + ["not_json"]
    assert all(orjson.loads(r.value)["source"] == "produce" for r in dead)


@pytest.mark.kafka
async def test_collect_produces_what_it_accepts(
    kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    import aiohttp

    from nudge.commands.collect import collect
    from nudge.config import load_settings
    from nudge.devservers import free_port

    port = free_port()
    settings = load_settings(
        {
            "broker_url": kafka_broker.url,
            "events_topic": f"{topic_prefix}.events",
            "dlq_topic": f"{topic_prefix}.dlq",
            "partitions": 2,
            "http_port": port,
        },
        environ={},
    )
    ready = asyncio.Event()
    server = asyncio.create_task(collect(settings, ready))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        async with aiohttp.ClientSession() as http:
            body = [make_event(n, f"c-{n}").to_json() for n in range(3)] + [{"id": "x"}]
            async with http.post(f"http://127.0.0.1:{port}/v1/events", json=body) as response:
                assert response.status == 200
                assert (await response.json())["accepted"] == 3
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
    finally:
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server
    records = await read_topic(kafka_broker.bootstrap, settings.events_topic)
    ids = sorted(e.id for r in records for e in parse_record(r.value) if isinstance(e, Event))
    assert ids == ["e-0", "e-1", "e-2"]
    (dead,) = await read_topic(kafka_broker.bootstrap, settings.dlq_topic)
    assert orjson.loads(dead.value)["reason"] == "missing_field"
