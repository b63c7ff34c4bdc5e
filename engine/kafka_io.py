"""Kafka producing with aiokafka: topics, packed event records, actions and dead letters.

Events travel packed: the events of one partition go out as a few records, each a JSON array
of events (at most `MAX_RECORD_BYTES`), because a stream processor pays per record, not per
byte. A record is keyed by the contact id of its first event and sent to the partition
`partition_for(contact_id, partitions)`, the one Kafka's default partitioner gives each of its
contacts, so every event of a contact lands on one partition, in order. A record holding a
single event object, as any other producer would write, is just as valid
(`nudge.engine.events.parse_record` reads both).

Actions go one per record, keyed by contact id, to the same partition number as the
contact's events (the actions topic has as many partitions as the events topic). Rejected
input goes to the dead-letter topic as `{"reason", "detail", "raw", "source", "at"}`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from .actions import Action
from .events import Event, Rejected, format_time
from .partitioning import partition_for

__all__ = [
    "MAX_RECORD_BYTES",
    "KafkaSink",
    "PackedRecord",
    "TopicError",
    "action_record",
    "bootstrap_servers",
    "dead_letter_record",
    "ensure_topics",
    "pack_events",
    "start_producer",
]

MAX_RECORD_BYTES = 512 * 1024
"""A packed record stays under this (Kafka's default message limit is 1 MiB)."""

_log = structlog.get_logger("nudge.engine.kafka_io")


class TopicError(RuntimeError):
    """A topic could not be created, or exists with the wrong number of partitions."""


def bootstrap_servers(url: str) -> str:
    """`kafka://h1:9092,h2:9092` (or `;`-separated `kafka://` URLs, or bare hosts) to
    aiokafka's `h1:9092,h2:9092`.

    >>> bootstrap_servers("kafka://a:9092;kafka://b:9093")
    'a:9092,b:9093'
    """
    hosts: list[str] = []
    for part in url.replace(";", ",").split(","):
        address = part.strip()
        if "://" in address:
            scheme, _, address = address.partition("://")
            if scheme not in ("kafka", "aiokafka", "tcp", "plaintext"):
                raise ValueError(f"broker_url: unsupported scheme `{scheme}://` in `{url}`")
        address = address.rstrip("/")
        if not address:
            continue
        if ":" not in address:
            address += ":9092"
        port = address.rpartition(":")[2]
        if not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"broker_url: `{port}` in `{url}` is no port number")
        hosts.append(address)
    if not hosts:
        raise ValueError(f"broker_url: no broker address in `{url}`")
    return ",".join(hosts)


# ----------------------------------------------------------------------------- topics


async def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    exact: Iterable[str] = (),
    replication: int | None = None,
    timeout: float = 30.0,
) -> dict[str, int]:
    """Create the missing topics with their partition counts; return every topic's count.

    Replication is `replication` when given, else 3, or the number of brokers when fewer. A topic in `exact` that already
    exists with another partition count is an error (`TopicError`): contacts would land on
    partitions their timers are not indexed under.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = {name: n for name, n in topics.items() if name not in existing}
        if missing:
            if replication is None:
                brokers = len((await admin.describe_cluster()).get("brokers") or [1])
                replication = max(1, min(3, brokers))
            response = await admin.create_topics(
                [NewTopic(name, n, replication) for name, n in missing.items()]
            )
            for entry in response.to_object()["topic_errors"]:
                if entry["error_code"] not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS
                    raise TopicError(
                        f"creating topic `{entry['topic']}` failed: error {entry['error_code']} "
                        f"{entry.get('error_message') or ''}".strip()
                    )
            _log.info("kafka.topics_created", topics=missing, replication=replication)
        counts = await _wait_for_leaders(admin, list(topics), timeout)
    finally:
        await admin.close()
    for name in exact:
        if counts[name] != topics[name]:
            raise TopicError(
                f"topic `{name}` has {counts[name]} partitions but `partitions` is "
                f"{topics[name]}: set partitions = {counts[name]} (NUDGE_PARTITIONS), or use "
                "new topics; the partition count of a running deployment cannot change"
            )
    return counts


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, names: list[str], timeout: float
) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        counts: dict[str, int] = {}
        for entry in await admin.describe_topics(names):
            parts = entry["partitions"]
            if entry["error_code"] == 0 and all(
                p["error_code"] == 0 and p["leader"] >= 0 for p in parts
            ):
                counts[entry["topic"]] = len(parts)
        if len(counts) == len(names):
            return counts
        if time.monotonic() > deadline:
            raise TopicError(f"topics {sorted(set(names) - set(counts))} have no leader yet")
        await asyncio.sleep(0.05)


async def start_producer(bootstrap: str, **options: Any) -> AIOKafkaProducer:
    """A started producer waiting for every in-sync replica (`acks="all"`).

    aiokafka keeps at most one request in flight per broker, so records of a partition are
    written in the order they were sent, retries included.
    """
    settings: dict[str, Any] = {
        "acks": "all",
        "linger_ms": 1,
        "max_batch_size": 1024 * 1024,
        "max_request_size": 2 * MAX_RECORD_BYTES,
        "request_timeout_ms": 30_000,
    }
    settings.update(options)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **settings)
    await producer.start()
    return producer


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class PackedRecord:
    """One Kafka record holding `count` events of one partition, as a JSON array."""

    partition: int
    key: bytes
    value: bytes
    count: int


def pack_events(
    events: Iterable[Event], partitions: int, max_bytes: int = MAX_RECORD_BYTES
) -> list[PackedRecord]:
    """Group events by partition (input order kept within each) into JSON-array records."""
    groups: dict[int, list[tuple[str, bytes]]] = {}
    shard_of: dict[str, int] = {}
    for event in events:
        cid = event.contact_id
        shard = shard_of.get(cid)
        if shard is None:
            shard = shard_of[cid] = partition_for(cid, partitions)
        groups.setdefault(shard, []).append((cid, orjson.dumps(event.to_json())))
    records: list[PackedRecord] = []
    for shard, items in groups.items():
        start, size = 0, 2
        for i, (_, data) in enumerate(items):
            if i > start and size + len(data) + 1 > max_bytes:
                records.append(_record(shard, items[start:i]))
                start, size = i, 2
            size += len(data) + 1
        records.append(_record(shard, items[start:]))
    return records


def _record(shard: int, items: Sequence[tuple[str, bytes]]) -> PackedRecord:
    value = b"[" + b",".join(data for _, data in items) + b"]"
    return PackedRecord(shard, items[0][0].encode(), value, len(items))


def action_record(action: Action, partitions: int) -> tuple[int, bytes, bytes]:
    """(partition, key, value) of an action on the actions topic: with the contact snapshot."""
    return (
        partition_for(action.contact_id, partitions),
        action.contact_id.encode(),
        orjson.dumps(action.to_json(full=True)),
    )


def dead_letter_record(item: Rejected, source: str, now: float | None = None) -> bytes:
    """A rejected input as the dead-letter topic holds it."""
    return orjson.dumps(
        {**item.to_json(), "source": source, "at": format_time(time.time() if now is None else now)}
    )


# ----------------------------------------------------------------------------- the sink


class KafkaSink:
    """An `EventSink` producing packed records to the events topic, rejects to the DLQ.

    Events accepted by concurrent callers within `linger` seconds share records; `accept`
    returns once the broker acknowledged every record holding its events.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        topic: str,
        dlq_topic: str,
        partitions: int,
        source: str = "collector",
        linger: float = 0.002,
        max_pending: int = 20_000,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.dlq_topic = dlq_topic
        self.partitions = partitions
        self.source = source
        self.linger = linger
        self.max_pending = max_pending
        self.max_record_bytes = max_record_bytes
        self.events_sent = 0
        self.records_sent = 0
        self.rejected: Counter[str] = Counter()
        self._pending: list[Event] = []
        self._done: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._enqueue = asyncio.Lock()
        self._flushes: set[asyncio.Task[None]] = set()

    async def accept(self, events: list[Event]) -> None:
        if not events:
            return
        loop = asyncio.get_running_loop()
        self._pending.extend(events)
        done = self._done
        if done is None:
            done = self._done = loop.create_future()
        if len(self._pending) >= self.max_pending:
            self._start_flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.linger, self._start_flush)
        await asyncio.shield(done)

    def _start_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        events, done = self._pending, self._done
        self._pending, self._done = [], None
        if done is None:
            return
        task = asyncio.get_running_loop().create_task(self._flush(events, done))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self, events: list[Event], done: asyncio.Future[None]) -> None:
        try:
            records = pack_events(events, self.partitions, self.max_record_bytes)
            async with self._enqueue:  # enqueue flushes in order: a partition's order holds
                acks = [
                    await self.producer.send(self.topic, r.value, key=r.key, partition=r.partition)
                    for r in records
                ]
            await asyncio.gather(*acks)
        except BaseException as exc:
            if not done.done():
                done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            self.events_sent += len(events)
            self.records_sent += len(records)
            if not done.done():
                done.set_result(None)

    async def reject(self, items: list[Rejected]) -> None:
        if not items:
            return
        now = time.time()
        acks = [
            await self.producer.send(self.dlq_topic, dead_letter_record(item, self.source, now))
            for item in items
        ]
        await asyncio.gather(*acks)
        self.rejected.update(item.reason for item in items)

    async def flush(self) -> None:
        """Send what is pending now and wait for every flush under way."""
        if self._done is not None:
            done = self._done
            self._start_flush()
            await asyncio.gather(done, return_exceptions=True)
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
