"""Settings: one frozen `Settings`, read from flags, `NUDGE_*` variables and `nudge.toml`.

Precedence, highest first: command-line flags, `NUDGE_<KEY>` environment variables, the
config file, then the defaults below. The config file is the `config_path` argument, else
`$NUDGE_CONFIG`, else `nudge.toml` in the working directory when it exists. Its keys are
the field names of `Settings` (flat, except the `[webhooks]` table); an unknown key is an
error that names it. Every key is documented in docs/delivery.md.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import structlog

__all__ = [
    "CONFIG_FILE",
    "ENV_PREFIX",
    "STREAM_TUNING",
    "ConfigError",
    "Settings",
    "SmtpTarget",
    "add_settings_arguments",
    "load_settings",
    "parse_duration",
    "parse_smtp_url",
]

CONFIG_FILE = "nudge.toml"
ENV_PREFIX = "NUDGE_"

_log = structlog.get_logger("nudge.config")

_DAY = 86_400.0


class ConfigError(ValueError):
    """A setting is unknown or has a value of the wrong shape; the message names the source."""


def _setting(default: Any, kind: str, *, secret: bool = False, **extra: Any) -> Any:
    metadata = {"kind": kind, "secret": secret, **extra}
    if isinstance(default, MappingProxyType):
        return field(default_factory=lambda: default, repr=not secret, metadata=metadata)
    return field(default=default, repr=not secret, metadata=metadata)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting with its default. Durations are seconds; rates are messages per second."""

    # Rules and templates.
    rules: str = _setting("rules", "str")
    templates: str | None = _setting(None, "optional_str")
    # Streaming.
    broker_url: str = _setting("kafka://127.0.0.1:9092", "str")
    app_id: str = _setting("nudge", "str")
    partitions: int = _setting(8, "int", minimum=1)
    events_topic: str = _setting("nudge.events", "str")
    actions_topic: str = _setting("nudge.actions", "str")
    dlq_topic: str = _setting("nudge.events.dlq", "str")
    actions_dlq_topic: str = _setting("nudge.actions.dlq", "str")
    # LANGUAGE.md section 1: "ids are remembered for at least 7 days, configurable".
    dedupe_ttl: float = _setting(7 * _DAY, "duration", minimum=7 * _DAY)
    replication_factor: int | None = _setting(None, "optional_int", minimum=1)
    # Worker tuning (`nudge worker`; see docs/operations.md for their measured effect).
    batch_records: int = _setting(100, "int", minimum=1)
    batch_within: float = _setting(0.005, "duration")
    timer_interval: float = _setting(0.2, "duration", positive=True)
    reload_interval: float = _setting(2.0, "duration", positive=True)
    session_timeout: float = _setting(10.0, "duration", positive=True)
    heartbeat_interval: float = _setting(1.0, "duration", positive=True)
    rebalance_timeout: float = _setting(10.0, "duration", positive=True)
    commit_interval: float = _setting(1.0, "duration", positive=True)
    fetch_wait: float = _setting(0.01, "duration", positive=True)
    # State.
    redis_url: str | None = _setting(None, "optional_str", secret=True)
    redis_key_prefix: str = _setting("nudge", "str")
    state_cache: int = _setting(10_000, "int", minimum=0)
    # HTTP (collector, tracking, content).
    http_host: str = _setting("127.0.0.1", "str")
    http_port: int = _setting(8080, "int", minimum=0, maximum=65535)
    # Delivery.
    outbox: str = _setting("outbox", "str")
    smtp_url: str | None = _setting(None, "optional_str", secret=True)
    smtp_from: str | None = _setting(None, "optional_str")
    smtp_starttls: Literal["auto", "on", "off"] = _setting(
        "auto", "choice", choices=("auto", "on", "off")
    )
    smtp_timeout: float = _setting(30.0, "duration")
    smtp_connections: int = _setting(4, "int", minimum=1)
    sms_url: str | None = _setting(None, "optional_str")
    sms_token: str | None = _setting(None, "optional_str", secret=True)
    sms_from: str | None = _setting(None, "optional_str")
    webhooks: Mapping[str, str] = _setting(MappingProxyType({}), "mapping")
    webhook_secret: str | None = _setting(None, "optional_str", secret=True)
    audience_url: str | None = _setting(None, "optional_str")
    audience_token: str | None = _setting(None, "optional_str", secret=True)
    http_timeout: float = _setting(10.0, "duration")
    tracking_url: str = _setting("http://127.0.0.1:8080", "str")
    tracking_secret: str | None = _setting(None, "optional_str", secret=True)
    rate_email: float = _setting(50.0, "float", minimum=0)
    rate_sms: float = _setting(10.0, "float", minimum=0)
    rate_webhook: float = _setting(50.0, "float", minimum=0)
    rate_audience: float = _setting(10.0, "float", minimum=0)
    retry_max_attempts: int = _setting(12, "int", minimum=1)
    retry_base_delay: float = _setting(1.0, "duration")
    retry_max_delay: float = _setting(300.0, "duration")
    ledger_ttl: float = _setting(30 * _DAY, "duration")
    max_pending: int = _setting(1000, "int", minimum=1)
    drain_timeout: float = _setting(30.0, "duration")
    log_level: str = _setting("info", "choice", choices=("debug", "info", "warning", "error"))

    @property
    def templates_dir(self) -> Path:
        """`templates` when set, else the `templates` folder beside the rules folder."""
        if self.templates is not None:
            return Path(self.templates)
        return Path(self.rules).parent / "templates"

    @property
    def rate_limits(self) -> dict[str, float]:
        """Per-channel rates (messages per second; 0 means unlimited)."""
        return {
            "email": self.rate_email,
            "sms": self.rate_sms,
            "webhook": self.rate_webhook,
            "audience": self.rate_audience,
        }

    @property
    def stream_tuning(self) -> dict[str, float | int]:
        """The worker's tuning knobs, by the names of `nudge.engine.stream.StreamOptions`."""
        return {name: getattr(self, name) for name in STREAM_TUNING}

    def redacted(self) -> dict[str, Any]:
        """Every setting, secrets masked: safe to log or print."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata["secret"] and value is not None:
                value = _mask_url(value) if f.name.endswith("_url") else "***"
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out


KEYS: tuple[str, ...] = tuple(f.name for f in fields(Settings))

STREAM_TUNING: tuple[str, ...] = (
    "batch_records",
    "batch_within",
    "timer_interval",
    "reload_interval",
    "session_timeout",
    "heartbeat_interval",
    "rebalance_timeout",
    "commit_interval",
    "fetch_wait",
)


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to connect, from `smtp_url` and `smtp_starttls`."""

    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None  # None: upgrade when the server offers STARTTLS


def parse_smtp_url(url: str, starttls: str = "auto") -> SmtpTarget:
    """`smtp://user:pass@host:587` (STARTTLS per `starttls`) or `smtps://…` (implicit TLS).

    >>> parse_smtp_url("smtps://ann:s%40cret@mail.example:465").password
    's@cret'
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        raise ConfigError(f"smtp_url: expected smtp:// or smtps://, got `{_mask_url(url)}`")
    if not parts.hostname:
        raise ConfigError(f"smtp_url: no host in `{_mask_url(url)}`")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"smtp_url: {exc}") from None
    use_tls = scheme == "smtps"
    start_tls: bool | None = {"auto": None, "on": True, "off": False}[starttls]
    if use_tls:
        start_tls = False
    if port is None:
        port = 465 if use_tls else (587 if start_tls else 25)
    return SmtpTarget(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        use_tls=use_tls,
        start_tls=start_tls,
    )


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": _DAY, "w": 7 * _DAY, None: 1.0}


def parse_duration(text: str) -> float:
    """`"30s"`, `"15m"`, `"2h"`, `"7d"`, `"2w"`, `"250ms"` or plain seconds to seconds.

    >>> parse_duration("2h")
    7200.0
    """
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"expected a duration like 30s, 15m, 2h, 7d or a number of seconds, got {text!r}"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_path: Path | None = None,
) -> Settings:
    """Merge defaults, the config file, `NUDGE_*` variables and flags (highest wins).

    `flags` may be `vars(args)` of an argparse namespace: keys that are not settings and
    values that are None (flags not given) are skipped, and its `config`, if any, is the
    config file when `config_path` is not given. `environ` defaults to `os.environ`.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}

    path = config_path
    if path is None and flags and flags.get("config"):
        path = Path(flags["config"])
    explicit = path is not None
    if path is None and env.get(f"{ENV_PREFIX}CONFIG"):
        path, explicit = Path(env[f"{ENV_PREFIX}CONFIG"]), True
    if path is None and Path(CONFIG_FILE).is_file():
        path = Path(CONFIG_FILE)
    if path is not None:
        values.update(_from_file(path, required=explicit))

    for name, text in env.items():
        if not name.startswith(ENV_PREFIX) or name == f"{ENV_PREFIX}CONFIG":
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in KEYS:
            _log.warning("config.unknown_env", variable=name, hint=_did_you_mean(key))
            continue
        values[key] = _coerce(key, text, source=name)

    for key, value in (flags or {}).items():
        if key in KEYS and value is not None:
            values[key] = _coerce(key, value, source=f"--{key.replace('_', '-')}")

    settings = Settings(**values)
    _validate(settings)
    return settings


def add_settings_arguments(
    parser: argparse.ArgumentParser, keys: Iterable[str] = (), *, config: bool = True
) -> None:
    """Add `--config` and a `--<key>` flag (dashes for underscores) for each of `keys`.

    Flags default to None, so `load_settings(vars(args))` lets unset flags fall through
    to the environment, the file and the defaults.
    """
    if config:
        parser.add_argument(
            "--config",
            metavar="FILE",
            default=None,
            help=f"settings file (default: ./{CONFIG_FILE})",
        )
    for key in keys:
        if key not in KEYS:
            raise ValueError(f"no setting `{key}`{_did_you_mean(key)}")
        parser.add_argument(
            f"--{key.replace('_', '-')}",
            dest=key,
            default=None,
            metavar=key.rsplit("_", 1)[-1].upper(),
            help=f"setting `{key}` (else ${ENV_PREFIX}{key.upper()})",
        )


def _from_file(path: Path, *, required: bool) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        if required:
            raise ConfigError(f"{path}: config file not found") from None
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for key, value in document.items():
        if key not in KEYS:
            raise ConfigError(f"{path}: unknown key `{key}`{_did_you_mean(key)}")
        values[key] = _coerce(key, value, source=f"{path}: `{key}`")
    return values


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(key.lower(), KEYS, n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


_FIELDS = {f.name: f for f in fields(Settings)}


def _coerce(key: str, value: Any, *, source: str) -> Any:
    meta = _FIELDS[key].metadata
    kind: str = meta["kind"]
    try:
        result = _CONVERT[kind](value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if kind == "choice" and result not in meta["choices"]:
        raise ConfigError(f"{source}: expected one of {', '.join(meta['choices'])}, got {result!r}")
    if result is None:
        return result
    if meta.get("positive") and result <= 0:
        raise ConfigError(f"{source}: must be more than 0, got {result}")
    if "minimum" in meta and result < meta["minimum"]:
        least, got = meta["minimum"], result
        if kind == "duration":
            least, got = _duration_text(least), _duration_text(got)
        raise ConfigError(f"{source}: must be at least {least}, got {got}")
    if "maximum" in meta and result > meta["maximum"]:
        raise ConfigError(f"{source}: must be at most {meta['maximum']}, got {result}")
    return result


def _to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _to_optional_str(value: Any) -> str | None:
    text = _to_str(value).strip()
    return text or None


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("expected a whole number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise ValueError(f"expected a whole number, got {value!r}")


def _to_optional_int(value: Any) -> int | None:
    """A whole number; an empty string (an unset variable) is None."""
    if isinstance(value, str) and not value.strip():
        return None
    return _to_int(value)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("expected a number, got a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"expected a number, got {value!r}")


def _duration_text(seconds: float) -> str:
    """Seconds in the largest unit up to days that holds them whole (`604800.0` -> `7d`)."""
    for unit in ("d", "h", "m"):
        amount = seconds / _UNITS[unit]
        if amount >= 1 and amount == int(amount):
            return f"{int(amount)}{unit}"
    return f"{seconds:g}s"


def _to_duration(value: Any) -> float:
    if isinstance(value, str):
        return parse_duration(value)
    seconds = _to_float(value)
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def _to_choice(value: Any) -> str:
    if isinstance(value, bool):  # TOML `smtp_starttls = true`
        return "on" if value else "off"
    return _to_str(value).strip().lower()


def _to_mapping(value: Any) -> Mapping[str, str]:
    """A TOML table, a dict, JSON text, or `name=url` pairs separated by commas or spaces."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            value = json.loads(text)
        else:
            pairs: dict[str, str] = {}
            for item in re.split(r"[\s,]+", text):
                if not item:
                    continue
                name, sep, url = item.partition("=")
                if not sep or not name or not url:
                    raise ValueError(f"expected name=url pairs, got {item!r}")
                pairs[name] = url
            value = pairs
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a table of name = url, got {type(value).__name__}")
    for name, url in value.items():
        if not isinstance(url, str):
            raise TypeError(f"`{name}` must be a URL string, got {type(url).__name__}")
    return MappingProxyType(dict(value))


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "str": _to_str,
    "optional_str": _to_optional_str,
    "int": _to_int,
    "optional_int": _to_optional_int,
    "float": _to_float,
    "duration": _to_duration,
    "choice": _to_choice,
    "mapping": _to_mapping,
}


def _validate(settings: Settings) -> None:
    """Checks that span keys or need a parsed URL."""
    if settings.smtp_url is not None:
        parse_smtp_url(settings.smtp_url, settings.smtp_starttls)
    for key in ("tracking_url", "sms_url", "audience_url"):
        url = getattr(settings, key)
        if url is not None and urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"{key}: expected an http:// or https:// URL, got `{url}`")
    for name, url in settings.webhooks.items():
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"webhooks.{name}: expected an http:// or https:// URL, got `{url}`")
    prefix = settings.redis_key_prefix
    if not prefix or "{" in prefix or "}" in prefix or prefix != prefix.strip():
        raise ConfigError(
            f"redis_key_prefix: expected a non-empty name without braces or spaces, got {prefix!r}"
        )
    if settings.heartbeat_interval * 3 > settings.session_timeout:
        raise ConfigError(
            f"heartbeat_interval ({settings.heartbeat_interval}s) must be at most a third of "
            f"session_timeout ({settings.session_timeout}s)"
        )
    if settings.retry_base_delay > settings.retry_max_delay:
        raise ConfigError(
            f"retry_base_delay ({settings.retry_base_delay}s) is above "
            f"retry_max_delay ({settings.retry_max_delay}s)"
        )


def _mask_url(url: str) -> str:
    """The URL with any password replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
