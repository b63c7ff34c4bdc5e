"""Replay throughput: events per second through parse + engine + store + action output.

    python benchmarks/replay.py                          # 1M events, 100k contacts, rules/
    python benchmarks/replay.py --state both             # the memory store, then Redis
    python benchmarks/replay.py --state redis --redis redis://localhost:6379/9  # an empty db
    python benchmarks/replay.py --events 200000 --contacts 5000 --rules-dir rules/
    python benchmarks/replay.py --scale 1000             # 1,000 generated rules
    python benchmarks/replay.py --events 100000 --profile

The events come from the synthetic shop (`nudge.engine.synthetic.generate_lines`), made
before the clock starts. What is timed is what `nudge replay` does per line: parse it, run it
through the engine in batches (one store load and save per batch, timers as they fall due),
and serialise the actions. `--scale N` replaces the ruleset with N generated rules over the
shop's events (conditions on event properties and traits, scoring, waits and sends), to see
how throughput falls as a ruleset grows. `--state redis` runs `nudge replay --state
redis://...` instead: the same, with each batch's contacts loaded from and saved to a Redis
server (started here on loopback unless `--redis` names one; it writes keys under `nudge:`),
the states it saved kept in memory as the worker keeps them (`state_cache`). The machine and
the command are printed with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import platform
import pstats
import shlex
import sys
import time
from collections.abc import Callable, Sequence

import orjson

from nudge.commands.replay import batch_size, open_store, tuned_gc
from nudge.devservers import RedisServer
from nudge.dsl import Source, load_ruleset, load_sources
from nudge.dsl.plan import RuleSet
from nudge.engine.clock import ManualClock
from nudge.engine.engine import Engine
from nudge.engine.events import Event, parse_event
from nudge.engine.runner import Runner
from nudge.engine.synthetic import generate_lines

_TEMPLATES = (
    # (event type, where, extra steps); {i} is the rule's number
    ("page_viewed", 'page_viewed.path == "/products/p-{i}"', "score += 1"),
    (
        "product_viewed",
        'product_viewed.product_id == "p-{i}" and contact.consent_email',
        'send email "product_{i}" with {{ product: product_viewed.product_id }}',
    ),
    ("cart_updated", "cart_updated.value > {i}", "set contact.last_cart = cart_updated.cart_id"),
    (
        "order_completed",
        "order_completed.value > {i} * 10",
        'wait 7d\n        send email "review_{i}"',
    ),
    ("email_clicked", 'email_clicked.url contains "p-{i}?"', "score += 2"),
)


def scale_rules(n: int) -> str:
    """`n` rules over the synthetic shop's events: most conditions hold rarely, as in a big
    real ruleset where each rule targets a product, a campaign or a threshold."""
    out = ["policy email limit 3 per 7d", "policy quiet hours 21:00-08:00", ""]
    for i in range(n):
        event, where, steps = _TEMPLATES[i % len(_TEMPLATES)]
        k = i // len(_TEMPLATES)
        out.append(
            f"rule r{i}\n    when {event} where {where.format(i=k)}\n    then\n"
            f"        {steps.format(i=k)}\n    limit 1 per 1d\nend\n"
        )
    return "\n".join(out)


def load(args: argparse.Namespace) -> RuleSet:
    if args.scale:
        result = load_sources([Source(f"scale{args.scale}.rules", scale_rules(args.scale))])
    else:
        result = load_ruleset([args.rules_dir])
    if result.ruleset is None:
        for d in result.diagnostics:
            print(d, file=sys.stderr)
        raise SystemExit("the ruleset does not compile")
    return result.ruleset


async def replay(
    ruleset: RuleSet, lines: Sequence[bytes], settle: Callable[[], None], state: str | None
) -> tuple[int, int]:
    """What `nudge replay --state STATE` does with the lines; returns (actions, rejected)."""
    store = open_store(state)
    runner = Runner(Engine(ruleset), store, ManualClock())
    try:
        return await _replay(runner, lines, settle, batch_size(store))
    finally:
        await store.close()


async def _replay(
    runner: Runner, lines: Sequence[bytes], settle: Callable[[], None], size: int
) -> tuple[int, int]:
    dumps = orjson.dumps
    actions = rejected = 0
    batch: list[Event] = []
    sink: list[bytes] = []
    for line in lines:
        item = parse_event(line)
        if type(item) is Event:
            batch.append(item)
            if len(batch) >= size:
                d = await runner.process(batch)
                sink.extend(dumps(a.to_json()) for a in d.actions)
                settle()
                batch = []
        else:
            rejected += 1
        if len(sink) > 10_000:
            actions += len(sink)
            sink.clear()
    if batch:
        d = await runner.process(batch)
        sink.extend(dumps(a.to_json()) for a in d.actions)
    return actions + len(sink), rejected


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for row in f:
                if row.startswith("model name"):
                    cpu = row.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cpus; {platform.system()} {platform.release()}; "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--rules-dir", default="rules/")
    parser.add_argument("--scale", type=int, choices=(10, 1000, 10_000), help="generated rules")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile")
    parser.add_argument(
        "--state",
        choices=("memory", "redis", "both"),
        default="memory",
        help="the store: memory (default), a Redis server started here, or both in turn",
    )
    parser.add_argument("--redis", metavar="URL", help="with --state redis/both: this Redis")
    args = parser.parse_args(argv)

    print(f"command: python {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    ruleset = load(args)
    t1 = time.perf_counter()
    lines = list(generate_lines(args.contacts, args.events, args.seed))
    t2 = time.perf_counter()
    print(f"ruleset: {len(ruleset.rules)} rules, loaded in {t1 - t0:.2f}s")
    print(f"input: {len(lines):,} events for {args.contacts:,} contacts, made in {t2 - t1:.1f}s")
    stores = ["memory", "redis"] if args.state == "both" else [args.state]
    with contextlib.ExitStack() as servers:
        for store in stores:
            url = None
            if store == "redis":
                url = args.redis or servers.enter_context(RedisServer()).url_for(0)
                if args.redis is None:
                    print("redis: a redis-server started here, on loopback")
            profiler = cProfile.Profile() if args.profile else None
            start = time.perf_counter()
            cpu_start = time.process_time()
            if profiler is not None:
                profiler.enable()
            with tuned_gc(settle_batches=url is None) as settle:  # as `nudge replay` does
                actions, rejected = asyncio.run(replay(ruleset, lines, settle, url))
            if profiler is not None:
                profiler.disable()
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
            print(
                f"replay ({store}): {len(lines) / elapsed:,.0f} events/s ({elapsed:.2f}s wall); "
                f"{len(lines) / cpu:,.0f} events/s of this process's CPU time ({cpu:.2f}s); "
                f"{actions:,} actions, {rejected} rejected"
            )
            if profiler is not None:
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    if hasattr(os, "getloadavg"):
        print(
            f"load average: {os.getloadavg()[0]:.2f} (other work on the machine slows the wall clock)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
