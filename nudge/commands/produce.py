"""`nudge produce`: push a JSON-lines file of events to the events topic.

    nudge produce events.jsonl --broker kafka://127.0.0.1:9092 --batch 5000

Events are packed (many per Kafka record, per partition: see `nudge.engine.kafka_io`);
rejected lines go to the dead-letter topic with their reason. A summary goes to stderr.
Topics missing on the broker are created with `partitions` partitions.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import deque
from typing import BinaryIO

from aiokafka.errors import KafkaError

from nudge.commands._streaming import (
    add_broker_flag,
    broker_unreachable,
    configure_logging,
    settings_from,
)
from nudge.config import Settings
from nudge.engine.events import Event, Rejected, iter_jsonl
from nudge.engine.kafka_io import (
    KafkaSink,
    TopicError,
    bootstrap_servers,
    ensure_topics,
    start_producer,
)

_IN_FLIGHT = 4  # batches sent before waiting for the oldest one's acknowledgement


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="JSON-lines events, or - for stdin")
    add_broker_flag(parser)
    parser.add_argument(
        "--batch",
        type=_positive,
        default=5000,
        metavar="N",
        help="events per send (default 5000); larger batches pack into fewer records",
    )
    parser.add_argument("--partitions", type=int, metavar="N", help="NUDGE_PARTITIONS")


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, "produce")
    if settings is None:
        return 2
    configure_logging(settings.log_level)
    try:
        if args.file == "-":
            return asyncio.run(produce(sys.stdin.buffer, settings, args.batch))
        with open(args.file, "rb") as stream:
            return asyncio.run(produce(stream, settings, args.batch))
    except OSError as exc:
        print(f"nudge produce: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except TopicError as exc:
        print(f"nudge produce: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:
        return broker_unreachable("produce", settings, exc)


async def produce(stream: BinaryIO, settings: Settings, batch: int) -> int:
    bootstrap = bootstrap_servers(settings.broker_url)
    await ensure_topics(
        bootstrap,
        {settings.events_topic: settings.partitions, settings.dlq_topic: settings.partitions},
        exact=[settings.events_topic],
        replication=settings.replication_factor,
    )
    producer = await start_producer(bootstrap)
    sink = KafkaSink(
        producer,
        topic=settings.events_topic,
        dlq_topic=settings.dlq_topic,
        partitions=settings.partitions,
        source="produce",
        max_pending=batch,
    )
    started = time.perf_counter()
    in_flight: deque[asyncio.Task[None]] = deque()
    try:
        events: list[Event] = []
        rejected: list[Rejected] = []
        for item in iter_jsonl(stream):
            if isinstance(item, Event):
                events.append(item)
                if len(events) >= batch:
                    in_flight.append(asyncio.create_task(sink.accept(events)))
                    events = []
                    while len(in_flight) >= _IN_FLIGHT:
                        await in_flight.popleft()
            else:
                rejected.append(item)
                if len(rejected) >= batch:
                    await sink.reject(rejected)
                    rejected = []
        if events:
            in_flight.append(asyncio.create_task(sink.accept(events)))
        await sink.reject(rejected)
        while in_flight:
            await in_flight.popleft()
    finally:
        for task in in_flight:
            task.cancel()
        await producer.stop()
    seconds = time.perf_counter() - started
    rate = sink.events_sent / seconds if seconds > 0 else 0.0
    print(
        f"produced {sink.events_sent} events in {sink.records_sent} records to "
        f"{settings.events_topic} ({settings.partitions} partitions) in {seconds:.2f}s "
        f"({rate:,.0f} events/s)",
        file=sys.stderr,
    )
    total = sum(sink.rejected.values())
    if total:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sink.rejected.most_common())
        print(f"rejected {total} ({reasons}) -> {settings.dlq_topic}", file=sys.stderr)
    else:
        print("rejected 0", file=sys.stderr)
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
