"""`nudge worker`: the engine as a streaming worker on Kafka, with state in Redis.

    nudge worker --rules rules/ --broker kafka://127.0.0.1:9092 --redis redis://127.0.0.1:6379/0

Each flag also comes from `NUDGE_RULES`, `NUDGE_BROKER_URL`, `NUDGE_REDIS_URL`,
`NUDGE_PARTITIONS` and nudge.toml. Run as many workers as there are partitions at most: they
share the events topic's partitions (consumer group `app_id`), each firing the timers of the
contacts whose partitions it owns. The rules folder is polled: a changed ruleset that passes
the check replaces the running one; one that fails is logged and ignored.

Without `redis_url` the state is kept in memory: for trying things out with one worker only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field, fields
from typing import Any

import structlog

from nudge.commands._streaming import add_broker_flag, configure_logging, settings_from
from nudge.config import Settings

_log = structlog.get_logger("nudge.worker")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", metavar="DIR", help="the rules folder (NUDGE_RULES)")
    add_broker_flag(parser)
    parser.add_argument(
        "--redis", dest="redis_url", metavar="URL", help="contact state (NUDGE_REDIS_URL)"
    )
    parser.add_argument(
        "--partitions", type=int, metavar="N", help="of the topics (NUDGE_PARTITIONS)"
    )
    parser.add_argument(
        "--app-id", dest="app_id", metavar="NAME", help="consumer group (NUDGE_APP_ID)"
    )
    tuning = parser.add_argument_group("tuning (see docs/operations.md)")
    from nudge.engine.stream import OPTION_HELP, StreamOptions

    defaults = StreamOptions()
    for f in fields(StreamOptions):
        kind = int if isinstance(getattr(defaults, f.name), int) else float
        tuning.add_argument(
            f"--{f.name.replace('_', '-')}",
            dest=f"opt_{f.name}",
            type=kind,
            metavar="N" if kind is int else "SECONDS",
            help=f"{OPTION_HELP[f.name]} (default {getattr(defaults, f.name)})",
        )


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, "worker")
    if settings is None:
        return 2
    configure_logging(settings.log_level)
    from nudge.commands.check import extra_checks_of
    from nudge.engine.rules_watch import RulesWatcher, load_checked
    from nudge.engine.stream import StreamOptions, build_app, run_app

    extra = extra_checks_of(settings.rules, settings.templates)
    watcher = RulesWatcher([settings.rules], extra=extra)
    ruleset, diagnostics = load_checked([settings.rules], extra)
    if ruleset is None:
        sys.stderr.write(diagnostics)
        print(f"nudge worker: the ruleset in {settings.rules} fails the check", file=sys.stderr)
        return 1
    options = StreamOptions(
        **{
            **settings.stream_tuning,  # the settings, then the flags given
            **{
                f.name: getattr(args, f"opt_{f.name}")
                for f in fields(StreamOptions)
                if getattr(args, f"opt_{f.name}", None) is not None
            },
        }
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        services = loop.run_until_complete(Services.start(settings, ruleset))
    except Exception as exc:
        print(f"nudge worker: {exc}", file=sys.stderr)
        return 1

    async def reload() -> None:
        new = watcher.poll()
        if new is not None:
            from nudge.engine.engine import Engine

            await services.processor.swap_engine(Engine(new, dedup_seconds=settings.dedupe_ttl))

    app = build_app(
        app_id=settings.app_id,
        bootstrap=services.bootstrap,
        events_topic=settings.events_topic,
        partitions=settings.partitions,
        processor=services.processor,
        options=options,
        on_reload=reload,
        on_shutdown=services.close,
    )
    _log.info(
        "worker.starting",
        rules=settings.rules,
        topic=settings.events_topic,
        partitions=settings.partitions,
        group=settings.app_id,
        state="redis" if settings.redis_url else "memory",
    )
    run_app(app, loop, loglevel="info" if settings.log_level == "debug" else "warning")
    return 0


@dataclass
class Services:
    """What a worker opens before faust starts, and closes after it stopped."""

    bootstrap: str
    processor: Any
    closers: list[Any] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings, ruleset: Any) -> Services:
        from nudge.engine.engine import Engine
        from nudge.engine.kafka_io import bootstrap_servers, ensure_topics, start_producer
        from nudge.engine.processor import StreamProcessor
        from nudge.engine.publisher import ActionPublisher, MarkStore, RedisMarks
        from nudge.engine.state import ContactStore
        from nudge.engine.stores.memory import MemoryStore

        bootstrap = bootstrap_servers(settings.broker_url)
        p = settings.partitions
        await ensure_topics(
            bootstrap,
            {settings.events_topic: p, settings.actions_topic: p, settings.dlq_topic: p},
            exact=[settings.events_topic, settings.actions_topic],
            replication=settings.replication_factor,
        )
        store: ContactStore
        marks: MarkStore
        if settings.redis_url:
            import importlib

            redis_store = importlib.import_module("nudge.engine.stores.redis")
            redis = redis_store.RedisStore.from_url(
                settings.redis_url,
                partitions=p,
                key_prefix=settings.redis_key_prefix,
                state_cache=settings.state_cache,
            )
            await redis.check_layout()  # a partition count other than the index's: refused
            store = redis
            marks = RedisMarks(
                settings.redis_url, settings.actions_topic, settings.redis_key_prefix
            )
        else:
            _log.warning(
                "worker.memory_state",
                note="no redis_url: state lives in this process only; run one worker",
            )
            store, marks = MemoryStore(p), MarkStore()
        recorder = _stats_recorder(settings)
        producer = await start_producer(bootstrap)
        publisher = ActionPublisher(
            producer, marks, bootstrap=bootstrap, topic=settings.actions_topic, partitions=p
        )
        processor = StreamProcessor(
            Engine(ruleset, dedup_seconds=settings.dedupe_ttl),
            store,
            publisher,
            producer,
            events_topic=settings.events_topic,
            dlq_topic=settings.dlq_topic,
            partitions=p,
            on_decision=recorder.record if recorder is not None else None,
        )
        closers = [producer.stop, store.close, marks.close]
        if recorder is not None:
            recorder.start()
            closers.insert(0, recorder.close)
        return cls(bootstrap, processor, closers)

    async def close(self) -> None:
        await self.processor.revoke()
        stats = self.processor.stats
        _log.info(
            "worker.stopped",
            events=stats.events,
            actions=stats.actions,
            rejected=stats.rejected,
            forwarded=stats.forwarded,
            batches=stats.batches,
            duplicates=self.processor.runner.stats.duplicates,
            timers_fired=self.processor.runner.stats.timers_fired,
            first_at=stats.first_at,
            last_at=stats.last_at,
            cpu_seconds=round(stats.cpu_last - stats.cpu_first, 3),
        )
        for close in self.closers:
            try:
                await close()
            except Exception as exc:
                _log.warning("worker.close_failed", error=repr(exc))


def _stats_recorder(settings: Settings) -> Any:
    """Per-rule figures in Redis, for `nudge stats`; none without Redis."""
    if not settings.redis_url:
        return None
    from nudge.connectors.redis_client import redis_from_url
    from nudge.engine.stats import RedisStatsStore, StatsRecorder

    store = RedisStatsStore(
        redis_from_url(settings.redis_url),
        prefix=settings.redis_key_prefix,
        dedupe_ttl=settings.dedupe_ttl,
    )
    return StatsRecorder(store)
