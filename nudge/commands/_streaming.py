"""What `nudge produce`, `collect`, `worker` and `deliver` share: settings, logging, and how
they say that the broker is out of reach."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from typing import Any

import structlog

from nudge.config import ConfigError, Settings, load_settings

__all__ = [
    "StderrLogger",
    "add_broker_flag",
    "broker_unreachable",
    "configure_logging",
    "settings_from",
]


def add_broker_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker",
        dest="broker_url",
        metavar="URL",
        help="Kafka bootstrap, e.g. kafka://127.0.0.1:9092 (NUDGE_BROKER_URL)",
    )
    parser.add_argument(
        "--config", type=str, default=None, metavar="FILE", help="config file (nudge.toml)"
    )


def settings_from(args: argparse.Namespace, command: str) -> Settings | None:
    """Settings from flags, `NUDGE_*` and the config file; None (after saying why) if bad."""
    from pathlib import Path

    flags: Mapping[str, Any] = vars(args)
    config = flags.get("config")
    try:
        settings = load_settings(flags, config_path=Path(config) if config else None)
        if command in _BROKER_COMMANDS:
            from nudge.engine.kafka_io import bootstrap_servers

            bootstrap_servers(settings.broker_url)  # a URL it cannot read is a bad setting
    except (ConfigError, ValueError) as exc:
        print(f"nudge {command}: {exc}", file=sys.stderr)
        return None
    return settings


_BROKER_COMMANDS = frozenset({"worker", "collect", "produce", "deliver"})


def broker_unreachable(command: str, settings: Settings, exc: Exception) -> int:
    """Say that the broker could not be reached, or what it refused (one line, no
    traceback); the exit status."""
    from aiokafka.errors import KafkaConnectionError

    if isinstance(exc, KafkaConnectionError):
        what = f"cannot reach the broker at {settings.broker_url}"
    else:
        what = f"the broker at {settings.broker_url} refused"
    print(f"nudge {command}: {what}: {exc}", file=sys.stderr)
    return 1


def configure_logging(level: str = "info") -> None:
    """structlog to stderr, one key=value line per event (stdout stays for output)."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(
        stream=sys.stderr, level=max(numeric, logging.WARNING), format="%(message)s"
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=StderrLogger,
        cache_logger_on_first_use=True,
    )


class StderrLogger:
    """Writes each line to whatever `sys.stderr` is at the time (it may be replaced)."""

    def __init__(self, *args: Any) -> None:
        pass

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg
