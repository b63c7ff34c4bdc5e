"""What every connector shares: the outcome of a delivery, its errors, and the Protocol.

A connector turns one action (a plain dict, LANGUAGE.md section 5b) into a message and
either returns an `Outcome` or raises::

    DeliveryError                 anything that stopped a delivery
    ├── RetryableError            try again later (4xx SMTP, HTTP 5xx/429, timeouts, refused)
    └── PermanentError            trying again will not help (bad request, missing template)
        └── BounceError           the recipient's server refused the address (5xx SMTP)

Retrying, ledgers and events are the Dispatcher's job, not the connector's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

__all__ = [
    "Action",
    "BounceError",
    "Connector",
    "DeliveryError",
    "EmitEvent",
    "Outcome",
    "PermanentError",
    "RetryableError",
    "Status",
    "channel_of",
    "format_timestamp",
    "parse_at",
]

Action = Mapping[str, Any]
Status = Literal["sent", "bounced", "failed"]
EmitEvent = Callable[[dict[str, Any]], Awaitable[None]]
"""Where events produced by delivery and tracking go (the events topic, in production)."""

# kind -> the channel that rate limits, outboxes and settings are named after
_CHANNELS = {
    "email": "email",
    "sms": "sms",
    "webhook": "webhook",
    "audience_add": "audience",
    "audience_remove": "audience",
    "show": "show",
}


def channel_of(kind: str) -> str:
    """`audience_add` and `audience_remove` share the `audience` channel; others are their kind."""
    return _CHANNELS.get(kind, kind)


class DeliveryError(Exception):
    """A delivery did not happen; `detail` is the provider's own words when there are any."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.message}: {self.detail}" if self.detail else self.message


class RetryableError(DeliveryError):
    """Worth another attempt; `retry_after` is the provider's hint in seconds, if it gave one."""

    def __init__(self, message: str, *, detail: str = "", retry_after: float | None = None):
        super().__init__(message, detail=detail)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """Another attempt would fail the same way."""


class BounceError(PermanentError):
    """The recipient's mail server refused the message for good (a hard bounce)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a delivery ended: `sent` (accepted by the provider), `bounced` or `failed`."""

    status: Status
    detail: str = ""
    provider_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail, "provider_id": self.provider_id}


class Connector(Protocol):
    """Delivers one kind of action. Raises `RetryableError` or `PermanentError` on failure."""

    async def deliver(self, action: Action) -> Outcome: ...


def format_timestamp(moment: datetime) -> str:
    """UTC ISO 8601 with `Z`, as events carry it: `2026-11-20T11:00:00Z` (milliseconds if any)."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    millis = utc.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def parse_at(action: Action) -> datetime | None:
    """The action's `at` as an aware datetime (naive means UTC); None when absent or malformed."""
    at = action.get("at")
    if not isinstance(at, str):
        return None
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
