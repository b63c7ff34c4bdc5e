"""`nudge deliver`: the connector workers, carrying out the actions of the actions topic.

    nudge deliver --broker kafka://127.0.0.1:9092 --redis redis://127.0.0.1:6379/0

Reads the actions topic in the consumer group `<app_id>-deliver` (run as many as there are
partitions) and hands each action to the Dispatcher (see docs/delivery.md): held until
due, claimed in the Redis ledger so that it goes out once, retried, rate limited.

- **Offsets** are committed by hand, every `commit_interval`, and never past an action
  whose delivery has not finished: after a crash or a restart, whatever was under way is
  read again, and the ledger skips what had gone out.
- **Outcome events** (`email_sent`, `email_bounced`, ...) are produced to the events topic
  (packed, on the contact's partition, as the collector does) before their action counts
  as finished, so rules can trigger on them.
- **Dead letters**, actions given up on, go to the actions dead-letter topic.
- At most `max_pending` actions are held at once; reading pauses at that many.
- SIGINT or SIGTERM: reading stops, deliveries under way get `drain_timeout` to finish,
  finished offsets are committed, the rest is read again by the next owner.

Without `redis_url` the ledger is in memory: a restart may send again what was sent just
before it (it says so at start).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from nudge.commands._streaming import (
    add_broker_flag,
    broker_unreachable,
    configure_logging,
    settings_from,
)
from nudge.config import ConfigError, Settings

_log = structlog.get_logger("nudge.deliver")

# A delivery that crashed (the ledger's Redis away, say) is tried again after these delays;
# then the process stops without committing, and its restart reads the action again.
_CRASH_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)


def configure(parser: argparse.ArgumentParser) -> None:
    add_broker_flag(parser)
    parser.add_argument(
        "--redis", dest="redis_url", metavar="URL", help="the delivery ledger (NUDGE_REDIS_URL)"
    )
    parser.add_argument("--partitions", type=int, metavar="N", help="NUDGE_PARTITIONS")
    parser.add_argument(
        "--app-id", dest="app_id", metavar="NAME", help="consumer group prefix (NUDGE_APP_ID)"
    )
    parser.add_argument("--templates", metavar="DIR", help="message templates (NUDGE_TEMPLATES)")
    parser.add_argument(
        "--outbox", metavar="DIR", help="where unconfigured channels write (NUDGE_OUTBOX)"
    )


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, "deliver")
    if settings is None:
        return 2
    configure_logging(settings.log_level)
    try:
        asyncio.run(deliver(settings))
    except (ConfigError, OSError, ValueError) as exc:
        print(f"nudge deliver: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from aiokafka.errors import KafkaError

        from nudge.engine.kafka_io import TopicError

        if isinstance(exc, TopicError):
            print(f"nudge deliver: {exc}", file=sys.stderr)
            return 1
        if isinstance(exc, KafkaError):
            return broker_unreachable("deliver", settings, exc)
        raise
    return 0


def exit_now(code: int = 70) -> None:
    """Stop without committing: the actions under way are read again after a restart."""
    sys.stderr.flush()
    os._exit(code)


async def deliver(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    fatal: Callable[[int], None] = exit_now,
) -> None:
    """Consume and deliver until `stop` is set or SIGINT/SIGTERM."""
    from aiokafka import AIOKafkaConsumer

    from nudge.connectors.build import build_dispatcher
    from nudge.engine.kafka_io import KafkaSink, bootstrap_servers, ensure_topics, start_producer

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    bootstrap = bootstrap_servers(settings.broker_url)
    p = settings.partitions
    await ensure_topics(
        bootstrap,
        {settings.events_topic: p, settings.actions_topic: p, settings.actions_dlq_topic: p},
        exact=[settings.events_topic, settings.actions_topic],
        replication=settings.replication_factor,
    )
    producer = await start_producer(bootstrap)
    sink = KafkaSink(
        producer,
        topic=settings.events_topic,
        dlq_topic=settings.dlq_topic,
        partitions=p,
        source="deliver",
    )
    consumer = AIOKafkaConsumer(
        settings.actions_topic,
        bootstrap_servers=bootstrap,
        group_id=f"{settings.app_id}-deliver",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(settings.session_timeout * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval * 1000),
        rebalance_timeout_ms=int(settings.rebalance_timeout * 1000),
        fetch_max_wait_ms=max(1, int(settings.fetch_wait * 1000)),
    )
    worker = DeliveryWorker(settings, consumer, producer, sink, fatal=fatal)
    worker.dispatcher = build_dispatcher(
        settings, on_outcome=worker.outcome, on_dead_letter=worker.dead_letter
    )
    if not settings.redis_url:
        _log.warning(
            "deliver.memory_ledger",
            note="no redis_url: a restart may send again what was sent just before it",
        )
    try:
        await worker.run(stop)
    finally:
        await producer.stop()


class DeliveryWorker:
    """The consume, deliver, commit loop of one `nudge deliver` process."""

    def __init__(
        self,
        settings: Settings,
        consumer: Any,
        producer: Any,
        sink: Any,
        *,
        fatal: Callable[[int], None],
    ) -> None:
        from aiokafka import ConsumerRebalanceListener

        from nudge.connectors.offsets import OffsetTracker

        self.settings = settings
        self.consumer = consumer
        self.producer = producer
        self.sink = sink
        self.fatal = fatal
        self.dispatcher: Any = None
        self.offsets: OffsetTracker[Any] = OffsetTracker()
        self.read = 0
        self.malformed = 0
        self._commit_lock = asyncio.Lock()
        worker = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await worker.commit(list(revoked))
                worker.offsets.forget(revoked)
                _log.info("deliver.revoked", partitions=sorted(tp.partition for tp in revoked))

            async def on_partitions_assigned(self, assigned: Any) -> None:
                _log.info("deliver.assigned", partitions=sorted(tp.partition for tp in assigned))

        self.listener = Listener()

    # ------------------------------------------------------------------ the loop

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        self.consumer.subscribe([settings.actions_topic], listener=self.listener)
        await self.consumer.start()
        _log.info(
            "deliver.started",
            topic=settings.actions_topic,
            group=f"{settings.app_id}-deliver",
            ledger="redis" if settings.redis_url else "memory",
        )
        next_commit = time.monotonic() + settings.commit_interval
        paused = False
        try:
            while not stop.is_set():
                full = self.dispatcher.pending >= settings.max_pending
                if full != paused:
                    assignment = list(self.consumer.assignment())
                    if full:
                        self.consumer.pause(*assignment)
                    else:
                        self.consumer.resume(*assignment)
                    paused = full
                # Polled even when paused: the group would drop a consumer that stops polling.
                batches = await self.consumer.getmany(timeout_ms=100, max_records=500)
                for tp, records in batches.items():
                    for record in records:
                        self._start(tp, record.offset, record.value)
                if time.monotonic() >= next_commit:
                    await self.commit()
                    next_commit = time.monotonic() + settings.commit_interval
            _log.info("deliver.stopping", pending=self.dispatcher.pending)
            try:
                await asyncio.wait_for(self.dispatcher.drain(), settings.drain_timeout)
            except TimeoutError:
                _log.warning(
                    "deliver.drain_timeout",
                    cancelled=self.dispatcher.pending,
                    note="read again after the restart",
                )
            await self.dispatcher.aclose()
            await self.commit()
        finally:
            await self.sink.flush()
            await self.consumer.stop()
            _log.info("deliver.stopped", read=self.read, malformed=self.malformed)

    def _start(self, tp: Any, offset: int, value: bytes | None) -> None:
        self.read += 1
        self.offsets.started(tp, offset)
        try:
            action = orjson.loads(value) if value is not None else None
        except orjson.JSONDecodeError:
            action = None
        if not isinstance(action, dict):
            self.malformed += 1
            raw = (value or b"")[:4096].decode("utf-8", "replace")
            task = asyncio.create_task(
                self.dead_letter(
                    {
                        "action": {"raw": raw},
                        "reason": "malformed action: not a JSON object",
                        "attempts": 0,
                        "failed_at": _now(),
                    }
                )
            )
            task.add_done_callback(lambda _t: self.offsets.finished(tp, offset))
            return
        self._submit(tp, offset, action, 0)

    def _submit(self, tp: Any, offset: int, action: dict[str, Any], crashes: int) -> None:
        task = self.dispatcher.submit(action)

        def done(task: asyncio.Task[Any]) -> None:
            if task.cancelled():
                return  # stopping: not finished, read again after the restart
            if task.exception() is None:
                self.offsets.finished(tp, offset)
                return
            if crashes >= len(_CRASH_DELAYS):
                _log.critical(
                    "deliver.failing",
                    action_id=action.get("id"),
                    error=repr(task.exception()),
                    note="stopping without committing: the restart reads it again",
                )
                self.fatal(70)
                return
            delay = _CRASH_DELAYS[crashes]
            _log.warning(
                "deliver.retry_crashed",
                action_id=action.get("id"),
                error=repr(task.exception()),
                retry_in=delay,
            )
            asyncio.get_running_loop().call_later(
                delay, self._submit, tp, offset, action, crashes + 1
            )

        task.add_done_callback(done)

    # ------------------------------------------------------------------ commits, outputs

    async def commit(self, partitions: list[Any] | None = None) -> None:
        """Commit, for `partitions` (default all), up to the oldest unfinished action."""
        async with self._commit_lock:
            offsets = self.offsets.committable(partitions)
            if not offsets:
                return
            try:
                await self.consumer.commit(offsets)
            except Exception as exc:  # a rebalance under way: the next commit tries again
                _log.warning("deliver.commit_failed", error=repr(exc))
                return
            self.offsets.committed(offsets)

    async def outcome(self, obj: dict[str, Any]) -> None:
        """An outcome event to the events topic; returns once the broker has it."""
        from nudge.engine.events import Rejected, event_from_dict

        event = event_from_dict(obj)
        if isinstance(event, Rejected):
            _log.error("deliver.bad_outcome_event", reason=event.reason, detail=event.detail)
            return
        await self.sink.accept([event])

    async def dead_letter(self, record: dict[str, Any]) -> None:
        action = record.get("action") or {}
        contact = action.get("contact_id") if isinstance(action, dict) else None
        key = contact.encode() if isinstance(contact, str) else None
        ack = await self.producer.send(
            self.settings.actions_dlq_topic, orjson.dumps(record), key=key
        )
        await ack


def _now() -> str:
    from datetime import UTC, datetime

    from nudge.connectors.base import format_timestamp

    return format_timestamp(datetime.now(UTC))
