"""`nudge demo`: generate a shop's events and show what the example rules would send.

    nudge demo                                # 300 contacts, 20,000 events, rules/
    nudge demo --contacts 2000 --events 200000 --rules my_rules/

Everything runs in this process on event time (no servers): the synthetic shop from
`nudge generate` flows through `nudge replay`'s engine, the clock is then moved 35 days past the
last event so waits, win-backs and quiet-hour deferrals fall due, and the actions are summed up
per rule, with a few examples each. `--output FILE` keeps every action as JSON lines.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson

from nudge.commands.generate import positive
from nudge.engine.engine import Engine
from nudge.engine.events import format_time, iter_jsonl
from nudge.engine.stores.memory import MemoryStore
from nudge.engine.synthetic import DEFAULT_START, generate_lines

from .replay import DEFAULT_RULES, Replay, load_plan

SETTLE_SECONDS = 35 * 86400
EXAMPLES_PER_RULE = 2


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contacts", type=positive, default=300, help="contacts in the shop (300)")
    parser.add_argument(
        "--events", type=positive, default=20_000, help="events to generate (20,000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    parser.add_argument(
        "--rules", action="append", metavar="PATH", help=f"rules folder (default {DEFAULT_RULES})"
    )
    parser.add_argument("--output", metavar="FILE", help="also write every action here")


def run(args: argparse.Namespace) -> int:
    ruleset = load_plan(args.rules or [DEFAULT_RULES], sys.stderr)
    if ruleset is None:
        return 1
    lines = b"".join(generate_lines(args.contacts, args.events, seed=args.seed))
    last_ts = _last_timestamp(lines)
    until = last_ts + SETTLE_SECONDS
    out = io.BytesIO()
    replay = Replay(Engine(ruleset), MemoryStore(), out, None)
    replay.progress = False
    summary = asyncio.run(replay.run(iter_jsonl(io.BytesIO(lines)), until))
    actions = [orjson.loads(line) for line in out.getvalue().splitlines() if line]
    if args.output:
        Path(args.output).write_bytes(out.getvalue())
    print(
        f"A shop of {args.contacts:,} contacts, {args.events:,} events from "
        f"{format_time(DEFAULT_START)} to {format_time(last_ts)}, "
        f"then {SETTLE_SECONDS // 86400} quiet days for timers to fall due.\n"
    )
    print(_table(actions))
    print()
    print(_examples(actions))
    print()
    print(summary, end="")
    print("\nNext: `nudge replay FILE --trace` shows suppressed actions and state changes;")
    print("`nudge test` runs the tests written beside the rules.")
    return 0


def _last_timestamp(lines: bytes) -> float:
    last = 0.0
    for item in iter_jsonl(io.BytesIO(lines[-4096:].split(b"\n", 1)[-1])):
        ts = getattr(item, "ts", None)
        if ts is not None:
            last = max(last, ts)
    return last


def _table(actions: list[dict[str, Any]]) -> str:
    per_rule: dict[str, Counter[str]] = defaultdict(Counter)
    for action in actions:
        per_rule[action["rule"]][action["kind"]] += 1
    kinds = sorted({kind for counts in per_rule.values() for kind in counts})
    header = ["rule", *kinds, "total"]
    rows = [
        [
            rule,
            *(str(per_rule[rule].get(k, 0) or "") for k in kinds),
            str(sum(per_rule[rule].values())),
        ]
        for rule in sorted(per_rule)
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    render = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        for row in [header, *rows]
    ]
    return "\n".join([render[0], "-" * len(render[0]), *render[1:]])


def _examples(actions: list[dict[str, Any]]) -> str:
    shown: Counter[str] = Counter()
    lines = ["Examples:"]
    for action in actions:
        rule = action["rule"]
        if shown[rule] >= EXAMPLES_PER_RULE:
            continue
        shown[rule] += 1
        target = action.get("template") or action.get("name") or action.get("content") or ""
        to = f" to {action['to']}" if action.get("to") else ""
        data = f" {orjson.dumps(action['data']).decode()}" if action.get("data") else ""
        lines.append(
            f"  {action['at']}  {rule}: {action['kind']} {target!r}{to} "
            f"({action['contact_id']}){data}"
        )
    return "\n".join(lines)
