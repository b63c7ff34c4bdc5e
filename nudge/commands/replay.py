"""`nudge replay EVENTS`: run events from a JSON-lines file through the rules, print actions.

    nudge replay events.jsonl                         # rules from rules/, state in memory
    nudge replay - --rules shop/ --until 2026-12-01T00:00:00Z --trace
    nudge replay events.jsonl --state redis://localhost:6379/0 --rejects rejects.jsonl

Events run in timestamp order (events with the same timestamp in input order): input that is
not in time order, say grouped by contact, is put in order (within 100,000 events of its
place, see `REORDER`), and the summary says so. The clock is event time, the timestamp of
the event being handled; timers fire as the clock passes them; `--until` moves the clock on
at the end, firing what falls due by then. Actions go to stdout as JSON lines in the order
they fall due: the same input gives byte-identical output. With `--trace`, suppressed
actions and changes of traits, score, stage and segments are printed too. A summary goes to
stderr; with `--stats`, per-rule figures follow it (fired, suppressed by reason, sent, and
what outcome and tracking events in the input say of them). Malformed lines are counted,
written to `--rejects` with the reason, and never stop the run. A ruleset that fails the
check is reported and nothing runs (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from operator import attrgetter
from pathlib import Path
from typing import IO, Any, BinaryIO

import orjson

from nudge.commands.generate import positive
from nudge.dsl.load import load_ruleset
from nudge.dsl.plan import RuleSet
from nudge.dsl.render import render_texts
from nudge.engine.actions import Action
from nudge.engine.clock import ManualClock
from nudge.engine.decision import Decision
from nudge.engine.engine import Engine
from nudge.engine.events import LAST_TIME, Event, Rejected, format_time, iter_jsonl, parse_time
from nudge.engine.runner import Runner
from nudge.engine.state import ContactStore
from nudge.engine.stats import MemoryStatsStore, RuleStats, figures_of, format_table
from nudge.engine.stores.memory import MemoryStore

DEFAULT_RULES = "rules/"
# Events per batch: one store load and save each. On Redis a bigger batch saves each contact
# once for more of its events (measured on 500k events: 22.7k events/s at 1,000, 27.9k at
# 5,000, 30.4k at 10,000; one batch is one MULTI/EXEC, a few MB at 5,000); the memory store
# is faster with smaller ones (78k at 1,000, 63k at 5,000). The output does not depend on it.
BATCH = 1000
REDIS_BATCH = 5000
# Events held back to put the input in timestamp order: an event may come this many events
# after its place in time and still run there (about 100 MB of events at most).
REORDER = 100_000
_TIMESTAMP = attrgetter("ts")


def batch_size(store: ContactStore) -> int:
    """Events per batch for `store` (see `BATCH`)."""
    return BATCH if isinstance(store, MemoryStore) else REDIS_BATCH


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("events", metavar="EVENTS", help="a JSON-lines file of events, or -")
    parser.add_argument(
        "--rules",
        action="append",
        metavar="PATH",
        help=f"a rules folder or file; repeatable (default {DEFAULT_RULES})",
    )
    parser.add_argument(
        "--until",
        metavar="TIME",
        help="at the end, move the clock to TIME (ISO 8601) and fire what falls due",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="also print suppressed actions and trait, score, stage and segment changes",
    )
    parser.add_argument(
        "--state",
        metavar="URL",
        help="where contact state lives: memory (default) or redis://host:port/db",
    )
    parser.add_argument(
        "--rejects", metavar="FILE", help="write malformed lines here, with the reason"
    )
    parser.add_argument(
        "--stats",
        action="store_true",
        help="after the summary, print per-rule figures (fired, suppressed, sent, ...)",
    )
    parser.add_argument(
        "--partitions",
        type=positive,
        help="with --state redis://: shards of the timer index, as the Kafka topic's partitions "
        "(default: the `partitions` setting, NUDGE_PARTITIONS or nudge.toml, 8; in memory "
        "there is one, the output is the same)",
    )


def load_plan(paths: Sequence[str], out: IO[str]) -> RuleSet | None:
    """The compiled ruleset, or None after printing its diagnostics to `out`."""
    result = load_ruleset(paths)
    if result.ok and result.ruleset is not None:
        if result.diagnostics:  # warnings
            out.write(render_texts(result.diagnostics, result.sources))
        return result.ruleset
    out.write(render_texts(result.diagnostics, result.sources))
    errors = len(result.errors)
    out.write(f"{errors} error{'s' if errors != 1 else ''}: nothing was run\n")
    return None


def open_store(url: str | None, partitions: int | None = None) -> ContactStore:
    """The store a `--state` URL names; `partitions` (the timer index's shards) matters only
    to a store that workers share: in memory there is one unless told otherwise."""
    if url is None or url in ("memory", "memory://"):
        return MemoryStore(1 if partitions is None else partitions)
    if url.startswith(("redis://", "rediss://", "unix://")):
        import importlib

        from nudge.config import load_settings

        # The Redis store is optional at import time: only `--state redis://` needs it.
        redis_store = importlib.import_module("nudge.engine.stores.redis")
        settings = load_settings()  # `partitions` and `state_cache`, as the worker reads them
        # Kept states (the worker's `state_cache` setting): a replay saves and loads the
        # same contacts again and again.
        store: ContactStore = redis_store.RedisStore.from_url(
            url,
            partitions=settings.partitions if partitions is None else partitions,
            key_prefix=settings.redis_key_prefix,  # the workers' keys
            state_cache=settings.state_cache,
        )
        return store
    raise ValueError(f"unknown --state `{url}`: use memory or redis://host:port/db")


@contextmanager
def tuned_gc(*, settle_batches: bool = True) -> Iterator[Callable[[], None]]:
    """Collect cycles less often while inside. Replay keeps every contact's state alive,
    which the collector would otherwise rescan again and again for no garbage (about a
    seventh of the time on a million events); the engine makes few cycles.

    Yields `settle`, to call after each batch: with `settle_batches` (for the memory store,
    where what survives a batch is contact state, alive to the end) it moves the survivors
    out of the collector's sight (`gc.freeze`) until the block ends. Without it, `settle`
    does nothing (a Redis-backed replay drops its states after each batch)."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield gc.freeze if settle_batches else _nothing
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def _nothing() -> None:
    return None


def run(args: argparse.Namespace) -> int:
    until: float | None = None
    if args.until is not None:
        try:
            until = parse_time(args.until)
        except ValueError as exc:
            print(f"nudge replay: --until: {exc}", file=sys.stderr)
            return 2
    ruleset = load_plan(args.rules or [DEFAULT_RULES], sys.stderr)
    if ruleset is None:
        return 1
    try:
        store = open_store(args.state, args.partitions)
    except ValueError as exc:
        print(f"nudge replay: {exc}", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        if args.events == "-":
            source: BinaryIO = sys.stdin.buffer
        else:
            try:
                source = stack.enter_context(Path(args.events).open("rb"))
            except OSError as exc:
                print(f"nudge replay: cannot read {args.events}: {exc}", file=sys.stderr)
                return 2
        rejects = None
        if args.rejects is not None:
            try:
                rejects = stack.enter_context(Path(args.rejects).open("wb"))
            except OSError as exc:
                print(f"nudge replay: cannot write {args.rejects}: {exc}", file=sys.stderr)
                return 2
        replay = Replay(
            Engine(ruleset, trace=args.trace),
            store,
            sys.stdout.buffer,
            rejects,
            batch=batch_size(store),
        )
        if args.stats:
            replay.rule_stats = RuleStats()
        replay.settle = stack.enter_context(tuned_gc(settle_batches=isinstance(store, MemoryStore)))
        try:
            summary = asyncio.run(replay.run(iter_jsonl(source), until))
        except Exception as exc:
            if args.state is None or not _unreachable(exc):
                raise
            print(f"nudge replay: cannot reach {args.state}: {exc}", file=sys.stderr)
            return 1
    sys.stderr.write(summary)
    if replay.rule_stats is not None:
        sys.stderr.write(replay.stats_table())
    return 0


def _unreachable(exc: Exception) -> bool:
    """Whether `exc` says the state's server could not be reached (or went away); not a
    closed output (`nudge replay ... | head`), which is a `BrokenPipeError`."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, RedisConnectionError | RedisTimeoutError)


class Replay:
    """One replay run: events in, action lines out, figures for the summary."""

    def __init__(
        self,
        engine: Engine,
        store: ContactStore,
        out: BinaryIO,
        rejects: BinaryIO | None,
        *,
        batch: int = BATCH,
    ) -> None:
        self.engine = engine
        self.batch = batch
        self.store = store
        self.runner = Runner(engine, store, ManualClock())
        self.out = out
        self.rejects = rejects
        self.read = 0
        self.rejected: dict[str, int] = {}
        self.actions: dict[str, int] = {}
        self.suppressed: dict[str, int] = {}
        self.conversions = 0
        self.progress = sys.stderr.isatty()
        self.rule_stats: RuleStats | None = None  # per-rule figures, with --stats
        self._figures = MemoryStatsStore()
        self.settle: Callable[[], None] = _nothing  # called after each batch (`tuned_gc`)
        self.out_of_order = 0  # events older than one read before them
        self.late = 0  # of those, too late to be put in their place (see `_in_order`)
        self.reorder = REORDER
        self.until_behind: tuple[float, float] | None = None  # (--until, the clock past it)

    async def run(self, items: Iterable[Event | Rejected], until: float | None) -> str:
        try:
            for batch in self._batches(self._in_order(items)):
                self._emit(await self.runner.process(batch), batch)
                self.settle()
            if until is not None:
                clock = self.runner.clock.now()
                if until < clock:  # the clock never goes back: say so rather than ignore it
                    self.until_behind = (until, clock)
                self._emit(await self.runner.advance(until))
            pending = await self.store.timer_summary()
        finally:
            await self.store.close()
        if self.progress:
            sys.stderr.write("\r\x1b[K")
        return self._summary(pending.pending, pending.next_due)

    def _in_order(self, items: Iterable[Event | Rejected]) -> Iterator[list[Event]]:
        """The input's events in timestamp order (stable), in runs; rejects set aside.

        Memory stays bounded: events are held until `REORDER` more have been read, then
        released in order. An event that comes more than that after its place in time (later
        than what was released already) is counted as `late` and runs at the clock's time."""
        held: list[Event] = []
        latest = released = -math.inf
        window = self.reorder
        for item in items:
            self.read += 1
            if type(item) is Event:
                ts = item.ts
                if ts < latest:
                    self.out_of_order += 1
                    if ts < released:
                        self.late += 1
                else:
                    latest = ts
                held.append(item)
                if len(held) >= 2 * window:
                    held.sort(key=_TIMESTAMP)
                    released = held[window - 1].ts
                    yield held[:window]
                    del held[:window]
                if self.progress and not self.read % 10_000:
                    self._show_progress()
            else:
                assert isinstance(item, Rejected)
                self._reject(item)
        held.sort(key=_TIMESTAMP)
        yield held

    def _batches(self, runs: Iterable[list[Event]]) -> Iterator[list[Event]]:
        size = self.batch
        for run in runs:
            for start in range(0, len(run), size):
                yield run[start : start + size]

    def _reject(self, item: Rejected) -> None:
        self.rejected[item.reason] = self.rejected.get(item.reason, 0) + 1
        if self.rejects is not None:
            self.rejects.write(orjson.dumps(item.to_json()) + b"\n")

    def _emit(self, d: Decision, events: Sequence[Event] = ()) -> None:
        if self.rule_stats is not None:
            self.rule_stats.add_decision(d)
            self.rule_stats.add_events(events)
            self._figures.add_now(self.rule_stats.take())
        counts = self.actions
        for action in d.actions:
            counts[action.kind] = counts.get(action.kind, 0) + 1
        for reason, n in d.suppressed.items():
            self.suppressed[reason] = self.suppressed.get(reason, 0) + n
        self.conversions += len(d.conversions)
        dumps = orjson.dumps
        if self.engine.trace:
            lines = [dumps(x.to_json() if isinstance(x, Action) else x) for x in d.trace]
        else:
            lines = [dumps(a.to_json()) for a in d.actions]
        if lines:
            lines.append(b"")
            self.out.write(b"\n".join(lines))
        if self.progress:
            self._show_progress()

    def _show_progress(self) -> None:
        run = self.runner.stats.events
        sys.stderr.write(f"\r{self.read:,} events read, {run:,} run")
        sys.stderr.flush()

    def stats_table(self) -> str:
        """The per-rule figures of this run (`--stats`), as a table."""
        goals = {r.name for r in self.engine.ruleset.rules if r.goal is not None}
        return "per-rule figures:\n" + format_table(figures_of(self._figures.counts), goals)

    def _summary(self, pending: int, next_due: float | None) -> str:
        stats = self.runner.stats
        rejected = sum(self.rejected.values())
        lines = [
            f"events: {self.read} read, {stats.events - stats.duplicates} processed, "
            f"{stats.duplicates} duplicate{_s(stats.duplicates)}, {rejected} rejected"
            + _breakdown(self.rejected),
            f"actions: {sum(self.actions.values())}" + _breakdown(self.actions),
            f"suppressed: {sum(self.suppressed.values())}" + _breakdown(self.suppressed),
            f"conversions: {self.conversions}",
        ]
        if self.out_of_order:
            late = self.late
            lines.insert(
                1,
                f"order: {self.out_of_order} event{_s(self.out_of_order)} came after a later "
                "one in the input; "
                + (
                    "all were run in timestamp order"
                    if not late
                    else f"{late} came more than {self.reorder:,} events late and ran at the "
                    "clock's time, the others in timestamp order"
                ),
            )
        if pending and next_due is not None and next_due > LAST_TIME:
            lines.append(f"timers: {pending} pending, none due before the year 10000")
        elif pending:
            due = format_time(next_due) if next_due is not None else "?"
            lines.append(
                f"timers: {pending} pending, the next due {due} "
                f"(pass --until {due} or later to fire it)"
            )
        else:
            lines.append("timers: none pending")
        if self.until_behind is not None:
            until, clock = self.until_behind
            lines.append(
                f"until: {format_time(until)} is before the last event's time, "
                f"{format_time(clock)}: the clock stayed there"
            )
        return "\n".join(lines) + "\n"


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _breakdown(counts: dict[str, Any]) -> str:
    if not counts:
        return ""
    return " (" + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ")"
