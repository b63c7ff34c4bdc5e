"""Reading topics back in tests: every record of a topic, up to its end offsets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


async def read_topic(bootstrap: str, topic: str, *, timeout: float = 20.0) -> list[Any]:
    """Every record now in `topic` (ConsumerRecords), partition by partition in offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + timeout
        while partitions is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no metadata for topic {topic}")
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            await asyncio.sleep(0.05)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        out: dict[TopicPartition, list[Any]] = {tp: [] for tp in tps}
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} took over {timeout}s")
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                out[tp].extend(records)
        return [record for tp in tps for record in out[tp]]
    finally:
        await consumer.stop()


async def wait_for_records(
    bootstrap: str, topic: str, count: int, *, timeout: float = 30.0
) -> list[Any]:
    """Poll `topic` until it holds at least `count` records."""
    deadline = time.monotonic() + timeout
    while True:
        records = await read_topic(bootstrap, topic)
        if len(records) >= count:
            return records
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic} holds {len(records)} of {count} records in {timeout}s")
        await asyncio.sleep(0.2)
