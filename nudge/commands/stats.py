"""`nudge stats`: per-rule figures, as the workers and `nudge run --redis` keep them in Redis.

    nudge stats --redis redis://127.0.0.1:6379/0
    nudge stats --format json                       # for dashboards and scripts
    nudge stats --rules rules/                      # also the rules with no figures yet

One line per rule: fired, suppressed (by reason), sent, delivered, bounced, opened,
clicked, converted, and the conversion rate (converted / fired). With `--rules`, rules
without a goal show no rate, and rules of the folder that never fired show zeros. The
figures and where they come from are described in `nudge.engine.stats`.

Without Redis there is nothing to read: `nudge run` prints its figures when it stops, and
`nudge replay --stats` after its summary.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson

from nudge.commands._streaming import settings_from
from nudge.config import Settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis", dest="redis_url", metavar="URL", help="where the figures are (NUDGE_REDIS_URL)"
    )
    parser.add_argument(
        "--format", choices=("table", "json"), default="table", help="default: table"
    )
    parser.add_argument(
        "--rules",
        dest="stats_rules",
        metavar="DIR",
        help="the ruleset: goals for the rate, and rules with no figures yet",
    )
    parser.add_argument("--config", metavar="FILE", help="config file (default ./nudge.toml)")


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, "stats")
    if settings is None:
        return 2
    if not settings.redis_url:
        print(
            "nudge stats: the figures are kept in Redis: pass --redis URL or set "
            "NUDGE_REDIS_URL (without Redis, `nudge run` prints them when it stops, and "
            "`nudge replay --stats` after its summary)",
            file=sys.stderr,
        )
        return 2
    goals: set[str] | None = None
    names: list[str] = []
    if args.stats_rules is not None:
        from nudge.engine.rules_watch import load_checked

        ruleset, diagnostics = load_checked([args.stats_rules])
        if ruleset is None:
            sys.stderr.write(diagnostics)
            print(
                f"nudge stats: the ruleset in {args.stats_rules} fails the check", file=sys.stderr
            )
            return 1
        goals = {r.name for r in ruleset.rules if r.goal is not None}
        names = [r.name for r in ruleset.rules]
    try:
        counts = asyncio.run(_read(settings))
    except Exception as exc:
        print(f"nudge stats: cannot read the figures from Redis: {exc}", file=sys.stderr)
        return 1
    from nudge.engine.stats import figures_of, format_json, format_table

    for name in names:
        counts.setdefault(name, {})
    figures = figures_of(counts)
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(format_json(figures), option=orjson.OPT_INDENT_2))
        sys.stdout.buffer.write(b"\n")
    else:
        sys.stdout.write(format_table(figures, goals))
    return 0


async def _read(settings: Settings) -> dict[str, dict[str, int]]:
    from nudge.connectors.redis_client import redis_from_url
    from nudge.engine.stats import RedisStatsStore

    assert settings.redis_url is not None
    store = RedisStatsStore(redis_from_url(settings.redis_url), prefix=settings.redis_key_prefix)
    try:
        return await store.read()
    finally:
        await store.close()
