"""The streaming worker's core, free of faust: records in, actions out, timers, rebalances.

`StreamProcessor.handle(records)` takes a micro-batch of Kafka records of the events topic
(partition, key, value), and under one lock, so that events and timers of a contact never
interleave:

1. decodes them (`parse_record`: one event or a packed array); rejects go to the DLQ;
   events of a contact that belongs to another partition (a producer with another
   partitioner) are forwarded there instead of processed here;
2. runs the engine over the batch (`Runner.process`: one load, timers due before the events
   fire first), with saves held back (`WriteBehindStore`);
3. publishes the actions and waits for the broker (`ActionPublisher`);
4. saves the states (one pipelined round trip), then moves the partitions' marks.

`tick()` fires the timers that fell due on the partitions this worker owns, the same way.
`revoke()` waits for the batch under way and stops; `assign(partitions)` reads back what
the previous owner published after its last save, then opens the gate.

`submit(records)` does steps 1 to 3 up to sending the actions and returns a future for the
rest, so the caller can take the next batch from the broker meanwhile; the next `submit`
waits until the batch is saved before running the engine. `handle` is both, awaited.

The caller acknowledges a batch's records only after it is saved. A batch cut short
(cancelled at shutdown, or failed: then the process stops at once, `fatal`) leaves its
records unacknowledged, so their offsets are not committed and the partition's next owner
runs them again; whatever was published of it is recognised and not published twice.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import traceback
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass

import orjson
import structlog
from aiokafka import AIOKafkaProducer
from redis import exceptions as redis_errors

from .clock import Clock, WallClock
from .decision import Decision
from .engine import Engine
from .events import Event, Rejected, parse_record
from .kafka_io import dead_letter_record, pack_events
from .partitioning import partition_for
from .publisher import ActionPublisher
from .runner import Runner
from .state import ContactStore
from .stores.redis import StoreConfigError
from .write_behind import WriteBehindStore

__all__ = ["Record", "StreamProcessor", "StreamStats", "exit_now"]

Record = tuple[int, bytes | None, bytes | None]
"""A Kafka record of the events topic: (partition, key, value)."""

_log = structlog.get_logger("nudge.engine.processor")

_RETRY_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)

# Redis (or the network) away for a moment: the batch is tried again.
_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.ReadOnlyError,
)
# Anything else from Redis, or a store that does not fit the data: the worker stops.
_FATAL: tuple[type[BaseException], ...] = (redis_errors.RedisError, StoreConfigError)


@dataclass(slots=True)
class StreamStats:
    records: int = 0
    events: int = 0
    rejected: int = 0
    forwarded: int = 0
    dropped_revoked: int = 0
    engine_errors: int = 0
    actions: int = 0
    timers_ticks: int = 0
    batches: int = 0
    first_at: float | None = None  # wall time the first batch started
    last_at: float | None = None  # wall time the latest batch ended
    cpu_first: float = 0.0  # process CPU time (all threads) when the first batch started
    cpu_last: float = 0.0  # and when the latest one ended


def exit_now(code: int = 70) -> None:
    """Stop the process without cleanup: no offset commit may follow a half-done batch."""
    sys.stderr.flush()
    os._exit(code)


class StreamProcessor:
    """Events and timers of the owned partitions through the engine, actions out."""

    def __init__(
        self,
        engine: Engine,
        store: ContactStore,
        publisher: ActionPublisher,
        producer: AIOKafkaProducer,
        *,
        events_topic: str,
        dlq_topic: str,
        partitions: int,
        clock: Clock | None = None,
        fatal: Callable[[int], None] = exit_now,
        timer_batch: int = 10_000,
        on_decision: Callable[[Decision, Sequence[Event]], None] | None = None,
    ) -> None:
        self.store = WriteBehindStore(store)
        self.clock: Clock = clock or WallClock()
        self.runner = Runner(engine, self.store, self.clock, shards=(), timer_batch=timer_batch)
        self.publisher = publisher
        self.producer = producer
        self.events_topic = events_topic
        self.dlq_topic = dlq_topic
        self.partitions = partitions
        self.fatal = fatal
        # Told of each decision (with its events; none for timers) once it is published and
        # saved: per-rule figures (`nudge.engine.stats.StatsRecorder.record`). Must not block.
        self.on_decision = on_decision
        self.owned: frozenset[int] = frozenset()
        self.stats = StreamStats()
        self._lock = asyncio.Lock()
        self._open = asyncio.Event()
        self._shard_of: dict[str, int] = {}
        # the save under way, held here: asyncio keeps only a weak reference to a task
        self._finishing: asyncio.Future[None] | None = None

    @property
    def engine(self) -> Engine:
        return self.runner.engine

    async def swap_engine(self, engine: Engine) -> None:
        """Run a new ruleset from the next batch on."""
        async with self._lock:
            self.runner.engine = engine

    # ------------------------------------------------------------------ rebalances

    async def revoke(self) -> None:
        """Partitions are being taken away: finish the batch under way, then stand still."""
        self._open.clear()
        async with self._lock:
            if self.owned:
                await self.publisher.flush_marks()  # the next owner reads back nothing
            self.owned = frozenset()
            self.runner.shards = ()
            self.publisher.forget()
            self.store.invalidate()

    async def assign(self, partitions: Collection[int]) -> None:
        """These partitions are ours now: recover what was published, then open."""
        async with self._lock:
            owned = frozenset(partitions)
            self.store.invalidate()
            await self.publisher.recover(owned)
            self.owned = owned
            self.runner.shards = owned
            if owned:
                self._open.set()
        _log.info("worker.assigned", partitions=sorted(owned))

    # ------------------------------------------------------------------ events

    async def handle(self, records: Sequence[Record]) -> None:
        """One micro-batch of the events topic, in order, published and saved when this
        returns. Acknowledge the records after it."""
        await (await self.submit(records))

    async def submit(self, records: Sequence[Record]) -> asyncio.Future[None]:
        """Run one micro-batch and send its actions; the future returned is done once the
        broker has acknowledged them and the states are saved: acknowledge the records then.

        Meanwhile the caller may take the next batch from the broker: its `submit` waits
        until this one is saved (the engine never runs on states not yet saved), but the wait
        for the broker and Redis no longer holds up the fetching of what comes next.

        An error stops the process (`fatal`): the records stay unacknowledged, so their
        offsets are never committed and the partition's next owner runs them again.
        """
        try:
            return await self._submit(records)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._batch_failed(exc)
            raise

    def _batch_failed(self, exc: BaseException) -> None:
        _log.critical(
            "worker.batch_failed",
            error="".join(traceback.format_exception(exc)),
            note="stopping without committing offsets: the next owner resumes from there",
        )
        self.fatal(70)

    async def _submit(self, records: Sequence[Record]) -> asyncio.Future[None]:
        await self._open.wait()
        owned = self.owned
        events: list[Event] = []
        rejected: list[Rejected] = []
        forward: list[Event] = []
        stats = self.stats
        for partition, key, value in records:
            if partition not in owned:
                stats.dropped_revoked += 1  # its next owner reads it again
                continue
            stats.records += 1
            if value is None:
                continue
            items = parse_record(value)
            trusted = key is not None and self._shard(key.decode("utf-8", "replace")) == partition
            for item in items:
                if isinstance(item, Rejected):
                    rejected.append(item)
                elif trusted or self._shard(item.contact_id) == partition:
                    events.append(item)
                else:
                    forward.append(item)
        if rejected:
            await self._dead_letters(rejected)
        if forward:
            await self._forward(forward)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not events:
            done.set_result(None)
            return done
        await self._lock.acquire()  # released once the batch is saved
        try:
            stats = self.stats
            if stats.first_at is None:
                stats.first_at = time.time()
                stats.cpu_first = time.process_time()
            sent = await self._run_and_send(events)
        except BaseException:
            self._lock.release()
            raise
        self._finishing = asyncio.ensure_future(self._finish(events, sent, done))
        return done

    async def _run_and_send(self, events: list[Event]) -> tuple[Decision, asyncio.Task[int]] | None:
        """The first try of a batch, up to sending its actions; None if it was done in full
        some other way (events set aside one by one, or tried again after Redis went away)."""
        try:
            decision = await self._process_or_set_aside(events)
            if decision is None:
                return None
            return decision, await self.publisher.send(decision.actions)
        except _TRANSIENT as exc:
            await self._again(events, exc)
            return None

    async def _finish(
        self,
        events: list[Event],
        sent: tuple[Decision, asyncio.Task[int]] | None,
        done: asyncio.Future[None],
    ) -> None:
        """Save what `_run_and_send` sent (or try the batch again), then let the next in."""
        try:
            if sent is not None:
                decision, published = sent
                try:
                    await self._save_sent(decision, published, events)
                except _TRANSIENT as exc:
                    await self._again(events, exc)
            stats = self.stats
            stats.events += len(events)
            stats.batches += 1
            stats.last_at = time.time()
            stats.cpu_last = time.process_time()
            done.set_result(None)
        except asyncio.CancelledError:
            done.cancel()
            raise
        except Exception as exc:
            try:
                self._batch_failed(exc)  # stops the process
            except BaseException as stop:  # a `fatal` that raises instead (tests)
                done.set_exception(stop)
            else:
                done.set_exception(exc)
        finally:
            self._lock.release()  # after `done`: whoever waits on it runs first

    async def _again(self, events: list[Event], exc: BaseException) -> None:
        """Redis went away during the first try: wait, run the batch again (what was
        published is recognised and not published twice)."""
        delays = iter(_RETRY_DELAYS)
        await self._back_off(exc, delays)
        await self._run_batch(events, delays)

    async def _run_batch(self, events: list[Event], delays: Iterator[float] | None = None) -> None:
        """Run, publish, save; retry while Redis is unreachable; set poison events aside."""
        delays = iter(_RETRY_DELAYS) if delays is None else delays
        while True:
            try:
                decision = await self._process_or_set_aside(events)
                if decision is not None:
                    await self._publish_and_save(decision, events)
                return
            except _TRANSIENT as exc:
                await self._back_off(exc, delays)

    async def _back_off(self, exc: BaseException, delays: Iterator[float]) -> None:
        """Forget what the failed try held, then wait the next delay (none left: raise)."""
        self.store.discard()
        self.store.invalidate()
        delay = next(delays, None)
        if delay is None:
            raise exc
        _log.warning("worker.store_unavailable", error=repr(exc), retry_in=delay)
        await asyncio.sleep(delay)

    async def _process_or_set_aside(self, events: list[Event]) -> Decision | None:
        """The engine over the batch; if it fails on it (not Redis), each event alone instead,
        published and saved alone (then None)."""
        try:
            return await self.runner.process(events)
        except Exception as exc:
            if isinstance(exc, _TRANSIENT + _FATAL):
                raise
            self.store.discard()
            await self._one_by_one(events)
            return None

    async def _one_by_one(self, events: list[Event]) -> None:
        """The engine failed on a batch: run each event alone (published and saved alone),
        and set aside with reason `engine_error` the ones it fails on."""
        for event in events:
            try:
                decision = await self.runner.process([event])
            except Exception as exc:
                if isinstance(exc, _TRANSIENT + _FATAL):
                    raise
                self.store.discard()  # only this event's changes are held
                self.stats.engine_errors += 1
                _log.error(
                    "worker.engine_error",
                    event_id=event.id,
                    contact_id=event.contact_id,
                    error="".join(traceback.format_exception_only(exc)).strip(),
                )
                raw = orjson.dumps(event.to_json())
                detail = "".join(traceback.format_exception_only(exc)).strip()
                await self._dead_letters([Rejected("engine_error", detail, raw)])
                continue
            await self._publish_and_save(decision, [event])

    async def _publish_and_save(self, decision: Decision, events: Sequence[Event] = ()) -> None:
        """Publish, wait for the broker, then save: never the other way round (the save is
        prepared while the broker acknowledges).

        If the save fails for a while, the batch runs again: what this attempt published
        is remembered as published, so the next attempt does not publish it twice.
        """
        await self._save_sent(decision, await self.publisher.send(decision.actions), events)

    async def _save_sent(
        self, decision: Decision, published: asyncio.Task[int], events: Sequence[Event] = ()
    ) -> None:
        """`_publish_and_save` once the actions are sent."""
        actions = decision.actions
        try:
            # The states are encoded while the broker acknowledges; written after.
            await self.store.commit(after=published)
        except _TRANSIENT:
            await published  # a broker's error here stops the worker
            self.publisher.recovered.update(a.id for a in actions)
            raise
        await self.publisher.saved(self.owned)
        self.stats.actions += len(actions)
        if self.on_decision is not None:
            try:
                self.on_decision(decision, events)
            except Exception as exc:  # figures are not worth stopping for
                _log.warning("worker.on_decision_failed", error=repr(exc))

    # ------------------------------------------------------------------ timers

    async def tick(self) -> int:
        """Fire the timers due on the owned partitions; return how many actions came out."""
        try:
            return await self._tick()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _log.critical("worker.timers_failed", error="".join(traceback.format_exception(exc)))
            self.fatal(70)
            raise

    async def _tick(self) -> int:
        if not self._open.is_set():
            return 0
        async with self._lock:
            if not self.owned:
                return 0
            self.stats.timers_ticks += 1
            try:
                decision = await self.runner.advance(self.clock.now())
                if decision.actions or self.store.pending:
                    await self._publish_and_save(decision)
            except _TRANSIENT as exc:  # the next tick tries again
                self.store.discard()
                self.store.invalidate()
                _log.warning("worker.timers_unavailable", error=repr(exc))
                return 0
            return len(decision.actions)

    # ------------------------------------------------------------------ side topics

    def _shard(self, contact_id: str) -> int:
        shard = self._shard_of.get(contact_id)
        if shard is None:
            if len(self._shard_of) > 1_000_000:
                self._shard_of.clear()
            shard = self._shard_of[contact_id] = partition_for(contact_id, self.partitions)
        return shard

    async def _dead_letters(self, items: list[Rejected]) -> None:
        now = time.time()
        acks = [
            await self.producer.send(self.dlq_topic, dead_letter_record(item, "worker", now))
            for item in items
        ]
        await asyncio.gather(*acks)
        self.stats.rejected += len(items)
        _log.info("worker.rejected", count=len(items), reasons=sorted({i.reason for i in items}))

    async def _forward(self, events: list[Event]) -> None:
        """Events on the wrong partition go to their contact's, where their state is owned."""
        acks = [
            await self.producer.send(self.events_topic, r.value, key=r.key, partition=r.partition)
            for r in pack_events(events, self.partitions)
        ]
        await asyncio.gather(*acks)
        self.stats.forwarded += len(events)
