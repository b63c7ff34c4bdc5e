"""`nudge test [PATH ...]`: run the `test` blocks of a ruleset.

    nudge test                 # every test under rules/
    nudge test rules/cart.rules

One line per test (`ok` or `FAIL` with its place); under a failure, each failing expectation
as written and every action the test gave. The last line counts them. Exit 1 if any test
failed or the ruleset fails the check; a ruleset without tests passes, with a note on stderr.
"""

from __future__ import annotations

import argparse
import sys

from nudge.commands.replay import DEFAULT_RULES, load_plan
from nudge.engine.testing import format_report, run_tests


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help=f"rules files or folders of them (default {DEFAULT_RULES})",
    )


def run(args: argparse.Namespace) -> int:
    ruleset = load_plan(list(args.paths) or [DEFAULT_RULES], sys.stdout)
    if ruleset is None:
        return 1
    results = run_tests(ruleset)
    if not results:
        where = " ".join(args.paths) or DEFAULT_RULES
        print(f"nudge test: no `test` blocks in {where}", file=sys.stderr)
    sys.stdout.write(format_report(results))
    return 0 if all(r.passed for r in results) else 1
