"""Publishing actions exactly once over at-least-once processing.

The worker processes a batch, publishes its actions, waits for the broker's acknowledgement,
and only then saves the contacts' states. So a crash never loses an action (the batch's
events were not marked seen; they run again), but it may leave actions published whose
events will run again and give them again, with the same deterministic ids.

To publish those only once, the worker that takes over a partition reads back the actions
already on it: from the partition's *mark* (the actions-topic offset up to which every
action's state was saved, kept in Redis and moved after each save) to the end. Their ids go
into `recovered`; an action computed again with one of those ids is not published again.
Actions of partition `p` go to partition `p` of the actions topic (it has as many
partitions as the events topic), and one worker owns `p` at a time, so the read-back is
exactly what the previous owner published after its last save: at most a batch or two.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Sequence
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from .actions import Action
from .kafka_io import action_record

__all__ = ["ActionPublisher", "MarkStore", "RedisMarks"]

_log = structlog.get_logger("nudge.engine.publisher")


class MarkStore:
    """Where the per-partition marks live (in memory: for tests of a single process)."""

    def __init__(self) -> None:
        self.marks: dict[int, int] = {}

    async def get(self, partitions: Collection[int]) -> dict[int, int | None]:
        return {p: self.marks.get(p) for p in partitions}

    async def set(self, marks: dict[int, int]) -> None:
        self.marks.update(marks)

    async def close(self) -> None:
        return None


class RedisMarks(MarkStore):
    """Marks as plain Redis keys `<key_prefix>:actions-mark:{<actions topic>}:<partition>`.

    The topic is the keys' hash tag: the marks of one topic share a Redis Cluster slot, so one
    `MGET` reads them on a cluster too (`?cluster=true` in the URL)."""

    def __init__(self, url: str, topic: str, key_prefix: str = "nudge") -> None:
        super().__init__()
        from .stores.redis import client_from_url

        self.redis = client_from_url(url)
        self.prefix = f"{key_prefix}:actions-mark:{{{topic}}}:"

    async def get(self, partitions: Collection[int]) -> dict[int, int | None]:
        ordered = sorted(partitions)
        if not ordered:
            return {}
        values = await self.redis.mget([f"{self.prefix}{p}" for p in ordered])
        return {p: None if v is None else int(v) for p, v in zip(ordered, values, strict=True)}

    async def set(self, marks: dict[int, int]) -> None:
        if marks:
            await self.redis.mset({f"{self.prefix}{p}": offset for p, offset in marks.items()})

    async def close(self) -> None:
        await self.redis.aclose()


class ActionPublisher:
    """Publishes actions to the actions topic, skipping the ones already published."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        marks: MarkStore,
        *,
        bootstrap: str,
        topic: str,
        partitions: int,
        mark_interval: float = 1.0,
    ) -> None:
        self.producer = producer
        self.marks = marks
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.recovered: set[str] = set()
        self.published = 0
        self.skipped = 0
        self.mark_interval = mark_interval
        self._next_marks: dict[int, int] = {}  # published, states not saved yet
        self._saved_marks: dict[int, int] = {}  # saved, marks not written yet
        self._marks_written = 0.0

    async def publish(self, actions: Sequence[Action]) -> int:
        """Send the actions (in order) and wait for the acknowledgements; return how many."""
        return await (await self.send(actions))

    async def send(self, actions: Sequence[Action]) -> asyncio.Task[int]:
        """Send the actions (in order); the task returned waits for the acknowledgements and
        says how many were published. Meanwhile the worker prepares the save."""
        recovered = self.recovered
        send = self.producer.send
        acks = []
        for action in actions:
            if recovered and action.id in recovered:
                self.skipped += 1
                _log.info("actions.already_published", id=action.id, rule=action.rule)
                continue
            partition, key, value = action_record(action, self.partitions)
            acks.append(await send(self.topic, value, key=key, partition=partition))
        return asyncio.ensure_future(self._confirm(acks))

    async def _confirm(self, acks: list[asyncio.Future[Any]]) -> int:
        if not acks:
            return 0
        marks = self._next_marks
        for meta in await asyncio.gather(*acks):
            if meta.offset + 1 > marks.get(meta.partition, -1):
                marks[meta.partition] = meta.offset + 1
        self.published += len(acks)
        return len(acks)

    async def saved(self, owned: Collection[int]) -> None:
        """The states of everything published so far are saved: the marks may move.

        They are written at most every `mark_interval` seconds (a mark that lags only makes
        the next owner read back a little more). Only the marks of `owned` partitions move:
        an action of a contact on another partition (one an anonymous contact merged into)
        leaves that partition's mark to its owner.
        """
        if self._next_marks:
            marks, self._next_marks = self._next_marks, {}
            pending = self._saved_marks
            for p, offset in marks.items():
                if p in owned and offset > pending.get(p, -1):
                    pending[p] = offset
        if self._saved_marks and time.monotonic() - self._marks_written >= self.mark_interval:
            await self.flush_marks()

    async def flush_marks(self) -> None:
        """Write the marks of everything saved so far."""
        if self._saved_marks:
            marks, self._saved_marks = self._saved_marks, {}
            await self.marks.set(marks)
        self._marks_written = time.monotonic()

    def forget(self) -> None:
        """Partitions were revoked: what was recovered is the next owner's business."""
        self.recovered.clear()
        self._next_marks.clear()
        self._saved_marks.clear()

    async def recover(self, partitions: Collection[int]) -> int:
        """Read back what was published on `partitions` after their marks; return how many."""
        if not partitions:
            return 0
        started = time.monotonic()
        marks = await self.marks.get(partitions)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_uncommitted",
        )
        await consumer.start()
        found = 0
        try:
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            starts = await consumer.beginning_offsets(tps)
            todo: list[TopicPartition] = []
            for tp in tps:
                mark = marks.get(tp.partition)
                start = starts[tp] if mark is None else max(mark, starts[tp])
                if start < ends[tp]:
                    consumer.seek(tp, start)
                    todo.append(tp)
            while todo:
                batch = await consumer.getmany(*todo, timeout_ms=500, max_records=10_000)
                for records in batch.values():
                    for record in records:
                        found += 1
                        self.recovered.add(_action_id(record.value))
                todo = [tp for tp in todo if await consumer.position(tp) < ends[tp]]
        finally:
            await consumer.stop()
        self.recovered.discard("")
        _log.info(
            "actions.recovered",
            partitions=sorted(partitions),
            read_back=found,
            seconds=round(time.monotonic() - started, 3),
        )
        return found


def _action_id(value: bytes | None) -> str:
    if not value:
        return ""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return ""
    found = obj.get("id") if isinstance(obj, dict) else None
    return found if isinstance(found, str) else ""
