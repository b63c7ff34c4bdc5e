"""The faust application of `nudge worker`: the only module that imports faust.

One agent consumes the events topic in micro-batches (`noack_take`: records are acknowledged
only after their batch is processed, published and saved) and hands them to a
`StreamProcessor`; it takes the next batch while the previous one is being saved. A faust
timer fires the due timers of the partitions this worker owns; another polls the rules
folder. Rebalances go through the processor: partitions revoked -> it finishes the batch
under way and stands still; partitions assigned -> it reads back what their previous owner
published, then runs.

The app is built by `build_app`, never at import time.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import faust
import structlog

from .processor import StreamProcessor

__all__ = [
    "OPTION_HELP",
    "BatchCollector",
    "StreamOptions",
    "build_app",
    "faust_broker_url",
    "run_app",
]

_log = structlog.get_logger("nudge.engine.stream")


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """The worker's tuning knobs (see docs/operations.md for their measured effect).

    - `batch_records`, `batch_within`: a micro-batch closes at this many records (each a
      packed array of events) or after this many seconds.
    - `timer_interval`: how often due timers are looked for (timer precision).
    - `reload_interval`: how often the rules folder is checked for changes.
    - `session_timeout`, `heartbeat_interval`, `rebalance_timeout`: the consumer group's;
      a dead worker's partitions move after `session_timeout`.
    - `commit_interval`: how often consumed offsets are committed (what a restart re-reads).
    - `fetch_wait`: the longest a fetch waits for data at the broker. Kafka answers as soon
      as there is data, whatever this is; Tansu holds a fetch for much of it, so it bounds
      the latency there.
    """

    batch_records: int = 100
    batch_within: float = 0.005
    timer_interval: float = 0.2
    reload_interval: float = 2.0
    session_timeout: float = 10.0
    heartbeat_interval: float = 1.0
    rebalance_timeout: float = 10.0
    commit_interval: float = 1.0
    fetch_wait: float = 0.01


OPTION_HELP = {
    "batch_records": "records (packed arrays of events) per micro-batch at most",
    "batch_within": "seconds a micro-batch waits to fill",
    "timer_interval": "seconds between looks for due timers",
    "reload_interval": "seconds between looks at the rules folder",
    "session_timeout": "seconds after which a silent worker's partitions move",
    "heartbeat_interval": "seconds between heartbeats (at most a third of the session)",
    "rebalance_timeout": "seconds a rebalance waits for every worker to rejoin",
    "commit_interval": "seconds between offset commits",
    "fetch_wait": "seconds a fetch may wait at the broker for data",
}


class BatchCollector:
    """When the cyclic garbage collector looks at what: a batch pause, not a heap scan.

    Left to itself, the collector scans the whole heap each time it has grown by a quarter;
    with thousands of contact states kept in memory that is a pause of 100 ms and more, a few
    times a minute (measured: the worst latencies). Instead, what survives a batch is moved
    out of its sight (`gc.freeze`: the engine's data has no cycles and is freed by reference
    counting as usual), and every `full_every` batches it is handed back for one full
    collection, so cycles made meanwhile (exceptions, library internals) are still freed.
    """

    def __init__(self, full_every: int = 10_000) -> None:
        self.full_every = full_every
        self.batches = 0

    def after_batch(self) -> None:
        self.batches += 1
        if self.batches % self.full_every == 0:
            gc.unfreeze()
            gc.collect()
        gc.freeze()


def _scratch_dir() -> str:
    """faust wants a data folder even with nothing to keep: a temporary one, removed at exit."""
    path = tempfile.mkdtemp(prefix="nudge-worker-")
    atexit.register(shutil.rmtree, path, True)
    return path


def _bound_fetch_wait(seconds: float) -> None:
    """faust builds its consumer with `fetch_max_wait_ms=1500`, not configurable: set ours
    on the consumer it builds, before it starts (aiokafka reads it when starting)."""
    from faust.transport.drivers import aiokafka as driver

    thread: Any = driver.AIOKafkaConsumerThread
    original = getattr(thread, "_nudge_original_create", None)
    if original is None:
        original = thread._create_worker_consumer
        thread._nudge_original_create = original

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = max(1, int(seconds * 1000))
        return consumer

    thread._create_worker_consumer = create


def faust_broker_url(bootstrap: str) -> str:
    """aiokafka's `h1:9092,h2:9092` as faust's `kafka://h1:9092;kafka://h2:9092`."""
    return ";".join(f"kafka://{host}" for host in bootstrap.split(","))


def build_app(
    *,
    app_id: str,
    bootstrap: str,
    events_topic: str,
    partitions: int,
    processor: StreamProcessor,
    options: StreamOptions,
    on_reload: Callable[[], Any] | None = None,
    on_shutdown: Callable[[], Any] | None = None,
) -> faust.App:
    """A faust app (consumer group `app_id`) running `processor` over `events_topic`.

    `on_reload` (async) is called every `reload_interval`; `on_shutdown` (async) once the
    consumer has stopped.
    """
    _bound_fetch_wait(options.fetch_wait)
    app = faust.App(
        app_id,
        broker=faust_broker_url(bootstrap),
        store="memory://",
        autodiscover=False,
        datadir=_scratch_dir(),
        web_enabled=False,
        topic_partitions=partitions,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=options.session_timeout,
        broker_heartbeat_interval=options.heartbeat_interval,
        broker_rebalance_timeout=options.rebalance_timeout,
        broker_commit_interval=options.commit_interval,
        stream_wait_empty=False,
    )
    topic = app.topic(
        events_topic,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    def owned(tps: Iterable[Any]) -> set[int]:
        return {tp.partition for tp in tps if tp.topic == events_topic}

    collector = BatchCollector()
    acknowledging: set[asyncio.Task[None]] = set()

    async def acknowledge(stream: Any, events: list[Any], saved: asyncio.Future[None]) -> None:
        await saved
        for event in events:
            await stream.ack(event)
        collector.after_batch()

    async def consume(stream: Any) -> None:
        async for events in stream.noack_take(options.batch_records, within=options.batch_within):
            saved = await processor.submit(
                [(e.message.partition, e.message.key, e.message.value) for e in events]
            )
            # The next batch is taken while this one's actions are acknowledged and its
            # states written; its records are acknowledged once that is done.
            task = asyncio.ensure_future(acknowledge(stream, events, saved))
            acknowledging.add(task)
            task.add_done_callback(acknowledging.discard)

    app.agent(topic, name="nudge-events")(consume)

    async def fire_timers() -> None:
        await processor.tick()

    app.timer(options.timer_interval, name="nudge-timers")(fire_timers)

    if on_reload is not None:
        reload = on_reload

        async def reload_rules() -> None:
            await reload()

        app.timer(options.reload_interval, name="nudge-rules")(reload_rules)

    async def revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        _log.info("worker.revoked", partitions=sorted(owned(args[0] if args else ())))
        await processor.revoke()

    async def assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        await processor.assign(owned(args[0] if args else ()))

    app.on_partitions_revoked.connect(cast(Any, revoked))  # mode's handler type is too narrow
    app.on_partitions_assigned.connect(cast(Any, assigned))

    if on_shutdown is not None:
        shutdown = on_shutdown

        async def before_shutdown(sender: Any, *args: Any, **kwargs: Any) -> None:
            await shutdown()

        app.on_before_shutdown.connect(cast(Any, before_shutdown))
    return app


def run_app(app: faust.App, loop: Any, *, loglevel: str = "warning") -> None:
    """Run the app in this process until SIGINT/SIGTERM (faust's worker; it exits)."""
    worker = faust.Worker(
        app, loop=loop, loglevel=loglevel.upper(), quiet=True, redirect_stdouts=False
    )
    worker.spinner = None  # no terminal animation in logs
    worker.execute_from_commandline()
