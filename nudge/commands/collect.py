"""`nudge collect`: the HTTP collector, producing what it accepts to Kafka.

    nudge collect --broker kafka://127.0.0.1:9092 --port 8080

Serves the event endpoints, the Segment-compatible ones, tracking links and website content
(see `nudge.engine.collector`). Runs until SIGINT or SIGTERM, then sends what is pending.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

import structlog
from aiohttp import web
from aiokafka.errors import KafkaError

from nudge.commands._streaming import (
    add_broker_flag,
    broker_unreachable,
    configure_logging,
    settings_from,
)
from nudge.config import ConfigError, Settings
from nudge.engine.collector import build_collector
from nudge.engine.kafka_io import (
    KafkaSink,
    TopicError,
    bootstrap_servers,
    ensure_topics,
    start_producer,
)

_log = structlog.get_logger("nudge.collect")


def configure(parser: argparse.ArgumentParser) -> None:
    add_broker_flag(parser)
    parser.add_argument("--port", dest="http_port", type=int, metavar="N", help="NUDGE_HTTP_PORT")
    parser.add_argument("--host", dest="http_host", metavar="ADDR", help="NUDGE_HTTP_HOST")
    parser.add_argument("--partitions", type=int, metavar="N", help="NUDGE_PARTITIONS")


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, "collect")
    if settings is None:
        return 2
    configure_logging(settings.log_level)
    try:
        asyncio.run(collect(settings))
    except (TopicError, ConfigError, OSError) as exc:
        print(f"nudge collect: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:
        return broker_unreachable("collect", settings, exc)
    return 0


async def collect(settings: Settings, ready: asyncio.Event | None = None) -> None:
    """Serve until cancelled or signalled; `ready` is set once the port listens."""
    from nudge.connectors.build import build_content_store, tracking_secret

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
        source="collector",
    )
    app = build_collector(
        sink,
        content_store=build_content_store(settings),
        tracking_secret=tracking_secret(settings),
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, settings.http_host, settings.http_port)
        await site.start()
        _log.info(
            "collector.listening",
            url=f"http://{settings.http_host}:{settings.http_port}",
            topic=settings.events_topic,
        )
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        await runner.cleanup()
        await sink.flush()
        await producer.stop()
        _log.info("collector.stopped", events=sink.events_sent, records=sink.records_sent)
