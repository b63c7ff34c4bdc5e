"""`nudge run`: the embedded mode. Collector, engine and delivery in one process, no servers.

    nudge run                                  # rules/, state in memory, channels to outbox/
    nudge run --rules shop/ --port 8080 --redis redis://127.0.0.1:6379/0

One process serves the HTTP collector (events, Segment-compatible endpoints, tracking links,
website content) and runs each accepted request through the rules at once. Every action is
printed to stdout as a JSON line and handed to the connectors: a channel without its setting
writes to the outbox folder instead (each is named in a warning at start). Outcome events
(`email_sent`, ...) and tracking events go back into the engine, so rules can trigger on them.
Due timers are looked for every `timer_interval`. The rules folder is watched: a changed
ruleset that passes the check replaces the running one; one that fails is logged with its
diagnostics and the running one stays. SIGINT or SIGTERM stops it cleanly: no new requests,
deliveries under way finish (up to `drain_timeout`), state is saved.

Without `--redis`, contact state, the delivery ledger and website content live in this
process and are gone when it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import orjson
import structlog

from nudge.commands._streaming import configure_logging, settings_from
from nudge.config import ConfigError, Settings

_log = structlog.get_logger("nudge.run")

_DEFAULT_TRACKING_URL = Settings().tracking_url


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", metavar="DIR", help="the rules folder (NUDGE_RULES)")
    parser.add_argument(
        "--templates", metavar="DIR", help="message templates (default: templates/ beside rules)"
    )
    parser.add_argument(
        "--redis",
        dest="redis_url",
        metavar="URL",
        help="keep state, ledger and content in Redis (NUDGE_REDIS_URL); default: memory",
    )
    parser.add_argument("--port", dest="http_port", type=int, metavar="N", help="NUDGE_HTTP_PORT")
    parser.add_argument("--host", dest="http_host", metavar="ADDR", help="NUDGE_HTTP_HOST")
    parser.add_argument(
        "--outbox", metavar="DIR", help="where unconfigured channels write (NUDGE_OUTBOX)"
    )
    parser.add_argument("--config", metavar="FILE", help="config file (default ./nudge.toml)")


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, "run")
    if settings is None:
        return 2
    configure_logging(settings.log_level)
    from nudge.commands.check import extra_checks_of
    from nudge.engine.rules_watch import load_checked

    ruleset, diagnostics = load_checked(
        [settings.rules], extra_checks_of(settings.rules, settings.templates)
    )
    if ruleset is None:
        sys.stderr.write(diagnostics)
        print(f"nudge run: the ruleset in {settings.rules} fails the check", file=sys.stderr)
        return 1
    if diagnostics:
        sys.stderr.write(diagnostics)
    try:
        asyncio.run(serve(settings, ruleset))
    except (ConfigError, OSError, ValueError) as exc:
        print(f"nudge run: {exc}", file=sys.stderr)
        return 1
    return 0


async def serve(
    settings: Settings,
    ruleset: Any,
    *,
    out: IO[bytes] | None = None,
    stop: asyncio.Event | None = None,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Serve until `stop` is set or SIGINT/SIGTERM; `ready(port)` once the port listens."""
    from aiohttp import web

    from nudge.connectors.build import build_content_store, build_dispatcher, tracking_secret
    from nudge.engine.clock import WallClock
    from nudge.engine.collector import build_collector
    from nudge.engine.embedded import EmbeddedEngine
    from nudge.engine.engine import Engine
    from nudge.engine.events import Rejected, event_from_dict, format_time
    from nudge.engine.rules_watch import RulesWatcher
    from nudge.engine.runner import Runner
    from nudge.engine.stats import StatsRecorder

    output = out if out is not None else sys.stdout.buffer
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    outbox = Path(settings.outbox)
    if outbox.exists() and not outbox.is_dir():
        raise ConfigError(f"outbox: {outbox} is not a folder")
    # Bound first: with port 0 the tracking links need the port the system picked.
    sock = socket.create_server((settings.http_host, settings.http_port))
    port = int(sock.getsockname()[1])
    store = _open_store(settings)
    content_store = build_content_store(settings)
    runner = Runner(Engine(ruleset, dedup_seconds=settings.dedupe_ttl), store, WallClock())
    # The collector's address serves the tracking links unless `tracking_url` says otherwise.
    if settings.tracking_url == _DEFAULT_TRACKING_URL:
        host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::", "") else settings.http_host
        settings = dataclasses.replace(settings, tracking_url=f"http://{host}:{port}")
    secret = tracking_secret(settings)
    dead_letters = outbox / "dead_letters.jsonl"
    rejects = outbox / "rejects.jsonl"

    async def feed_back(obj: dict[str, Any]) -> None:
        event = event_from_dict(obj)
        if isinstance(event, Rejected):
            _log.error("run.bad_outcome_event", reason=event.reason, detail=event.detail)
            return
        await embedded.accept([event])

    async def dead_letter(record: dict[str, Any]) -> None:
        await asyncio.to_thread(_append_line, dead_letters, record)

    dispatcher = build_dispatcher(
        settings, on_outcome=feed_back, on_dead_letter=dead_letter, content_store=content_store
    )
    recorder = StatsRecorder(_stats_store(settings))
    recorder.start()

    def on_decision(decision: Any, events: Sequence[Any]) -> None:
        recorder.record(decision, events)
        actions = decision.actions
        if not actions:
            return
        output.write(b"".join(orjson.dumps(a.to_json()) + b"\n" for a in actions))
        output.flush()
        for action in actions:
            dispatcher.submit(action.to_json(full=True))

    async def set_aside(items: Sequence[Rejected]) -> None:
        at = format_time(time.time())
        records = [{**item.to_json(), "at": at} for item in items]
        await asyncio.to_thread(_append_lines, rejects, records)

    embedded = EmbeddedEngine(runner, on_decision, set_aside)
    app = build_collector(embedded, content_store=content_store, tracking_secret=secret)
    site_runner = web.AppRunner(app, access_log=None)
    await site_runner.setup()
    from nudge.commands.check import extra_checks_of

    watcher = RulesWatcher(
        [settings.rules], extra=extra_checks_of(settings.rules, settings.templates)
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        await web.SockSite(site_runner, sock).start()
        tasks.append(asyncio.create_task(embedded.run_timers(settings.timer_interval)))
        tasks.append(
            asyncio.create_task(_watch_rules(watcher, embedded, settings, settings.reload_interval))
        )
        _log.info(
            "run.listening",
            url=f"http://{settings.http_host}:{port}",
            rules=settings.rules,
            templates=str(settings.templates_dir),
            state="redis" if settings.redis_url else "memory",
            outbox=settings.outbox,
        )
        if not settings.redis_url:
            _log.warning(
                "run.memory_state",
                note="state, delivery ledger and website content are lost when this stops; "
                "use --redis to keep them",
            )
        if ready is not None:
            ready(port)
        await stop.wait()
        _log.info("run.stopping", pending_deliveries=dispatcher.pending)
    finally:
        await site_runner.cleanup()  # no new requests
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(dispatcher.drain(), settings.drain_timeout)
        except TimeoutError:
            _log.warning(
                "run.drain_timeout",
                cancelled=dispatcher.pending,
                note="deliveries still held or retrying are given up",
            )
        await dispatcher.aclose()
        if not settings.redis_url:
            pending = await store.timer_summary()
            if pending.pending:  # waits and deferred sends that no later run will see
                _log.warning(
                    "run.timers_lost",
                    pending=pending.pending,
                    next_due=None if pending.next_due is None else format_time(pending.next_due),
                    note="state in memory: use --redis to keep pending waits and deferred sends",
                )
        await runner.close()  # the Redis store has saved every batch already
        await _report_stats(recorder, settings, embedded.engine.ruleset)
        close = getattr(content_store, "redis", None)
        if close is not None:
            await close.aclose()
        stats = embedded.stats
        _log.info(
            "run.stopped",
            events=stats.events,
            actions=stats.actions,
            rejected=stats.rejected,
            engine_errors=stats.engine_errors,
            reloads=stats.reloads,
        )


def _open_store(settings: Settings) -> Any:
    if settings.redis_url:
        from nudge.engine.stores.redis import RedisStore

        return RedisStore.from_url(
            settings.redis_url,
            partitions=settings.partitions,
            key_prefix=settings.redis_key_prefix,
            state_cache=settings.state_cache,
        )
    from nudge.engine.stores.memory import MemoryStore

    return MemoryStore(settings.partitions)


def _stats_store(settings: Settings) -> Any:
    """Per-rule figures: in Redis with `redis_url` (`nudge stats` reads them), else memory."""
    from nudge.engine.stats import MemoryStatsStore, RedisStatsStore

    if settings.redis_url:
        from nudge.connectors.redis_client import redis_from_url

        return RedisStatsStore(
            redis_from_url(settings.redis_url),
            prefix=settings.redis_key_prefix,
            dedupe_ttl=settings.dedupe_ttl,
        )
    return MemoryStatsStore()


async def _report_stats(recorder: Any, settings: Settings, ruleset: Any) -> None:
    """Write the last figures; without Redis, print them (they go with the process)."""
    from nudge.engine.stats import figures_of, format_table

    await recorder.close()
    if settings.redis_url:
        _log.info("run.stats", note="`nudge stats --redis <url>` prints the per-rule figures")
        return
    counts = await recorder.store.read()  # a memory store still holds them once closed
    goals = {r.name for r in ruleset.rules if r.goal is not None}
    sys.stderr.write("per-rule figures:\n" + format_table(figures_of(counts), goals))
    sys.stderr.flush()


async def _watch_rules(watcher: Any, embedded: Any, settings: Settings, interval: float) -> None:
    """Poll the rules folder; swap in a changed ruleset that passes the check."""
    from nudge.engine.engine import Engine

    while True:
        await asyncio.sleep(interval)
        try:
            ruleset = await asyncio.to_thread(watcher.poll)  # logs a rejected ruleset itself
        except Exception as exc:
            _log.error("rules.reload_failed", error=repr(exc))
            continue
        if ruleset is not None:
            await embedded.swap(Engine(ruleset, dedup_seconds=settings.dedupe_ttl))


def _append_line(path: Path, record: dict[str, Any]) -> None:
    _append_lines(path, [record])


def _append_lines(path: Path, records: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        handle.write(b"".join(orjson.dumps(record) + b"\n" for record in records))
