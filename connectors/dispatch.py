"""The Dispatcher: hold an action until due, claim it, deliver with retries, report back.

For each action (`deliver`):

1. wait until its `at` (a clock is injected, so tests need not wait);
2. claim its id in the ledger; an id claimed before is not sent again (its recorded
   outcome event is emitted again, with the same id and time, so events are at least once);
3. call the kind's connector, after a token from the channel's rate limiter; retry a
   `RetryableError` with exponential backoff and full jitter, up to `max_attempts`;
4. record the outcome, emit it as an event (`on_outcome`), and dead-letter what failed
   (`on_dead_letter`): retries used up, or a permanent error other than a bounce.

Outcome events have the LANGUAGE.md section 1 shape plus `"origin": "connector"` and
`"inbound": false` (not the contact's own activity), and an id derived from the action id.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from nudge.connectors.base import (
    Action,
    BounceError,
    Connector,
    EmitEvent,
    Outcome,
    PermanentError,
    RetryableError,
    channel_of,
    format_timestamp,
    parse_at,
)
from nudge.connectors.ledger import DeliveryLedger, LedgerEntry

__all__ = [
    "Clock",
    "DeadLetter",
    "Dispatcher",
    "RetryPolicy",
    "SystemClock",
    "TokenBucket",
    "outcome_event",
]

DeadLetter = Callable[[dict[str, Any]], Awaitable[None]]
"""Receives `{"action", "reason", "attempts", "failed_at"}` for an action given up on."""

_log = structlog.get_logger("nudge.connectors.dispatch")


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall-clock time, aware (UTC)."""
        ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 12  # with full jitter, about 9 minutes of retries in all
    base_delay: float = 1.0
    max_delay: float = 300.0

    def backoff(self, attempt: int, draw: float, retry_after: float | None = None) -> float:
        """Delay after failed attempt number `attempt` (1-based), `draw` uniform in [0, 1).

        Full jitter: uniform in [0, min(max_delay, base_delay * 2 ** (attempt - 1))]; a
        provider's `Retry-After` raises it (never above `max_delay`).
        """
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        delay = draw * ceiling
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_delay))
        return delay


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; `acquire` waits for one."""

    def __init__(self, rate: float, clock: Clock, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("a token bucket needs a positive rate")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self.clock = clock
        self._tokens = self.burst
        self._stamp = clock.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self.clock.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> None:
        async with self._lock:
            self._refill()
            while self._tokens < 1:
                await self.clock.sleep((1 - self._tokens) / self.rate)
                self._refill()
            self._tokens -= 1


_SENT_EVENTS = {
    "email": "email_sent",
    "sms": "sms_sent",
    "webhook": "webhook_delivered",
    "audience_add": "audience_added",
    "audience_remove": "audience_removed",
    "show": "content_shown",
}


def _event_name(kind: str, outcome: Outcome) -> str:
    if outcome.status == "sent":
        return _SENT_EVENTS.get(kind, f"{kind}_sent")
    if outcome.status == "bounced" and kind == "email":
        return "email_bounced"
    return f"{channel_of(kind)}_failed"


def outcome_event(action: Action, outcome: Outcome, when: datetime) -> dict[str, Any]:
    """The event reporting `outcome`: `email_sent`, `email_bounced`, `sms_sent`, ...

    Names: sent is `email_sent`, `sms_sent`, `webhook_delivered`, `audience_added`,
    `audience_removed`, `content_shown`; a bounce is `email_bounced`; any other failure
    is `<channel>_failed` (`email_failed`, `sms_failed`, `webhook_failed`,
    `audience_failed`, `show_failed`).
    """
    kind = str(action.get("kind"))
    name = _event_name(kind, outcome)
    properties: dict[str, Any] = {
        "action_id": action.get("id"),
        "rule": action.get("rule"),
        "template": action.get("template"),
        "kind": kind,
    }
    for key in ("name", "slot"):
        if action.get(key) is not None:
            properties[key] = action.get(key)
    if outcome.provider_id is not None:
        properties["provider_id"] = outcome.provider_id
    if outcome.status != "sent":
        properties["reason"] = outcome.detail
    return {
        "id": f"{action.get('id')}.{name}",
        "event": name,
        "contact_id": action.get("contact_id"),
        "timestamp": format_timestamp(when),
        "origin": "connector",
        "inbound": False,
        "properties": properties,
    }


class _Send:
    """Whether a connector call is under way (then a cancellation may have sent it)."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = False


class Dispatcher:
    """Delivers actions through `connectors_by_kind`; see the module docstring for the steps.

    `rate_limits` maps a channel (`email`, `sms`, `webhook`, `audience`, `show`) to messages
    per second; missing or 0 is unlimited. `on_close` callables run in `aclose`, after the
    pending deliveries are cancelled (e.g. closing the HTTP client built for connectors).
    """

    def __init__(
        self,
        connectors_by_kind: Mapping[str, Connector],
        ledger: DeliveryLedger,
        retry: RetryPolicy | None = None,
        on_outcome: EmitEvent | None = None,
        on_dead_letter: DeadLetter | None = None,
        *,
        rate_limits: Mapping[str, float] | None = None,
        clock: Clock | None = None,
        draw: Callable[[], float] = random.random,
        on_close: Sequence[Callable[[], Awaitable[Any]]] = (),
    ) -> None:
        self.connectors = dict(connectors_by_kind)
        self.ledger = ledger
        self.retry = retry or RetryPolicy()
        self.on_outcome = on_outcome
        self.on_dead_letter = on_dead_letter
        self.clock: Clock = clock or SystemClock()
        self.draw = draw
        self.buckets = {
            channel: TokenBucket(rate, self.clock)
            for channel, rate in (rate_limits or {}).items()
            if rate > 0
        }
        self._on_close = list(on_close)
        self._tasks: set[asyncio.Task[Outcome | None]] = set()

    # ------------------------------------------------------------------ public

    async def deliver(self, action: Action) -> Outcome | None:
        """Deliver one action to the end; None if it was delivered (or claimed) before."""
        action_id, contact_id, kind = action.get("id"), action.get("contact_id"), action.get("kind")
        if not isinstance(action_id, str) or not action_id or not isinstance(contact_id, str):
            await self._dead_letter(
                action, "malformed action: needs string `id` and `contact_id`", 0
            )
            return None
        log = _log.bind(action_id=action_id, kind=kind, rule=action.get("rule"))
        connector = self.connectors.get(str(kind))
        if connector is None:
            await self._dead_letter(action, f"no connector for kind `{kind}`", 0)
            return None
        await self._hold(action, log)
        if not await self.ledger.claim(action_id, contact_id):
            await self._replay(action, await self.ledger.get(action_id, contact_id), log)
            return None
        send = _Send()
        try:
            outcome, reason, attempts = await self._attempts(action, connector, send, log)
        except asyncio.CancelledError:
            if send.active:
                log.warning("delivery.cancelled_mid_send", note="claim kept: it may have gone out")
            else:
                await asyncio.shield(self.ledger.release(action_id, contact_id))
            raise
        finished = self.clock.now()
        await self.ledger.record(action_id, contact_id, outcome, finished.timestamp())
        log.info("delivery.done", status=outcome.status, attempts=attempts, detail=outcome.detail)
        if self.on_outcome is not None:
            await self.on_outcome(outcome_event(action, outcome, finished))
        if reason is not None:
            await self._dead_letter(action, reason, attempts)
        return outcome

    def submit(self, action: Action) -> asyncio.Task[Outcome | None]:
        """Deliver in the background (held actions wait there); see `drain` and `aclose`."""
        task = asyncio.create_task(self.deliver(action), name=f"deliver {action.get('id')}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    @property
    def pending(self) -> int:
        """Deliveries submitted and not finished (including those held until due)."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for every submitted delivery to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel what is still pending (held or between attempts), then close resources."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for close in self._on_close:
            await close()

    # ------------------------------------------------------------------ steps

    async def _hold(self, action: Action, log: Any) -> None:
        due = parse_at(action)
        if due is None:
            if action.get("at") is not None:
                log.warning("delivery.bad_at", at=action.get("at"), note="delivering now")
            return
        while (wait := (due - self.clock.now()).total_seconds()) > 0:
            log.debug("delivery.held", until=format_timestamp(due), seconds=wait)
            await self.clock.sleep(wait)

    async def _attempts(
        self, action: Action, connector: Connector, send: _Send, log: Any
    ) -> tuple[Outcome, str | None, int]:
        """(outcome, dead-letter reason or None, attempts made)."""
        bucket = self.buckets.get(channel_of(str(action.get("kind"))))
        attempt = 0
        while True:
            attempt += 1
            if bucket is not None:
                await bucket.acquire()
            send.active = True
            try:
                outcome = await connector.deliver(action)
            except Exception as exc:
                send.active = False  # not on cancellation: then it may have gone out
                error: Exception = exc
            else:
                send.active = False
                return outcome, None, attempt
            if isinstance(error, RetryableError):
                if attempt >= self.retry.max_attempts:
                    reason = f"gave up after {attempt} attempts: {error}"
                    return Outcome("failed", reason), reason, attempt
                delay = self.retry.backoff(attempt, self.draw(), error.retry_after)
                log.warning(
                    "delivery.retry", attempt=attempt, delay=round(delay, 3), error=str(error)
                )
                await self.clock.sleep(delay)
                continue
            if isinstance(error, BounceError):
                return Outcome("bounced", str(error)), None, attempt
            if isinstance(error, PermanentError):
                return Outcome("failed", str(error)), str(error), attempt
            log.error("delivery.connector_crashed", exc_info=error)
            reason = f"connector error: {type(error).__name__}: {error}"
            return Outcome("failed", reason), reason, attempt

    async def _replay(self, action: Action, entry: LedgerEntry | None, log: Any) -> None:
        if entry is None or entry.outcome is None:
            log.info("delivery.skipped", reason="claimed by another delivery")
            return
        log.info("delivery.skipped", reason="delivered before", status=entry.outcome.status)
        if self.on_outcome is not None:
            when = datetime.fromtimestamp(entry.ts, UTC)
            await self.on_outcome(outcome_event(action, entry.outcome, when))

    async def _dead_letter(self, action: Action, reason: str, attempts: int) -> None:
        _log.error("delivery.dead_letter", action_id=action.get("id"), reason=reason)
        if self.on_dead_letter is not None:
            await self.on_dead_letter(
                {
                    "action": dict(action),
                    "reason": reason,
                    "attempts": attempts,
                    "failed_at": format_timestamp(self.clock.now()),
                }
            )

    def _finished(self, task: asyncio.Task[Outcome | None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("delivery.crashed", task=task.get_name(), error=repr(task.exception()))
