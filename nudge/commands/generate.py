"""`nudge generate`: write a synthetic shop's events as JSON lines.

    nudge generate --contacts 1000 --events 100000 --seed 7 --output events.jsonl

The same arguments always give the same bytes. `--malformed-rate 0.001` mixes in about
that share of extra broken lines (one of each rejection kind in turn) for testing the
rejects path; the well-formed events stay the same.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from typing import BinaryIO

from nudge.engine.events import parse_time
from nudge.engine.synthetic import DEFAULT_START, generate_lines

_BATCH = 4096  # lines per write


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--contacts", type=positive, default=1000, metavar="N", help="contacts (default 1000)"
    )
    parser.add_argument(
        "--events", type=_not_negative, default=10_000, metavar="M", help="events (default 10000)"
    )
    parser.add_argument("--seed", type=_int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument(
        "--start",
        type=_time,
        default=DEFAULT_START,
        metavar="ISO",
        help="time of the first event, ISO 8601 with offset (default 2026-11-02T00:00:00Z)",
    )
    parser.add_argument(
        "--output", "-o", default="-", metavar="FILE", help="where to write (default stdout)"
    )
    parser.add_argument(
        "--malformed-rate",
        type=_rate,
        default=0.0,
        metavar="R",
        help="share of extra malformed lines, 0 to 1 (default 0)",
    )


def run(args: argparse.Namespace) -> int:
    lines = generate_lines(args.contacts, args.events, args.seed, args.start, args.malformed_rate)
    if args.output == "-":
        try:
            _write(lines, sys.stdout.buffer)
            sys.stdout.flush()
        except BrokenPipeError:  # piped into `head` or the like: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    try:
        with open(args.output, "wb") as out:
            _write(lines, out)
    except OSError as exc:
        print(f"nudge generate: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


def _write(lines: Iterable[bytes], out: BinaryIO) -> None:
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= _BATCH:
            out.write(b"".join(batch))
            batch.clear()
    out.write(b"".join(batch))


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _not_negative(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _time(text: str) -> float:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
