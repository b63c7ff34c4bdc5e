"""The `nudge` command line: one program, one module per subcommand.

Each subcommand lives in `nudge.commands.<name>` and exposes
`configure(parser: argparse.ArgumentParser) -> None` and `run(args: argparse.Namespace) -> int`.
Modules are imported only when their command runs, so `nudge check` never pays for faust.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence

from nudge import __version__

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("nudge.commands.check", "check a ruleset and report every error"),
    "fmt": ("nudge.commands.fmt", "rewrite .rules files in the canonical layout"),
    "test": ("nudge.commands.test", "run the test blocks of a ruleset"),
    "replay": ("nudge.commands.replay", "run events from a file through the rules, print actions"),
    "run": ("nudge.commands.run", "embedded mode: collector, engine and delivery in one process"),
    "generate": ("nudge.commands.generate", "write a synthetic shop's events as JSON lines"),
    "worker": ("nudge.commands.worker", "run the engine as a streaming worker on Kafka"),
    "collect": ("nudge.commands.collect", "run the HTTP collector, producing to Kafka"),
    "produce": ("nudge.commands.produce", "push a JSON-lines file of events to Kafka"),
    "deliver": ("nudge.commands.deliver", "run the connector workers on the actions topic"),
    "stats": ("nudge.commands.stats", "print per-rule figures"),
    "demo": ("nudge.commands.demo", "generate a shop's events and show what the example rules do"),
}


def _available() -> dict[str, tuple[str, str]]:
    found = {}
    for name, (module, help_text) in COMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            found[name] = (module, help_text)
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nudge", description="Real-time marketing automation.")
    parser.add_argument("--version", action="version", version=f"nudge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in _available().items():
        sub.add_parser(name, help=help_text, description=help_text)
    return parser


def _logs_to_stderr() -> None:
    """Every command's logs go to stderr (stdout is its output: actions, reports); commands
    that run servers configure them further."""
    import structlog

    from nudge.commands._streaming import StderrLogger

    structlog.configure(logger_factory=StderrLogger, cache_logger_on_first_use=False)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    available = _available()
    if args_list and args_list[0] in available:
        name = args_list[0]
        module = importlib.import_module(available[name][0])
        _logs_to_stderr()
        parser = argparse.ArgumentParser(prog=f"nudge {name}", description=available[name][1])
        module.configure(parser)
        args = parser.parse_args(args_list[1:])
        try:
            code: int = module.run(args)
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            # The reader went away (`nudge replay ... | head`): stop quietly, like other Unix tools.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
        return code
    parser = build_parser()
    parser.parse_args(args_list)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
