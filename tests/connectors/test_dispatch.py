"""The Dispatcher: retries, bounces, dead letters, holds, rate limits and never sending twice.

Email cases run against the real SMTP server on loopback; the clock is fake, so backoff
and holds take no time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from nudge.config import parse_smtp_url
from nudge.connectors.base import (
    Action,
    BounceError,
    Outcome,
    PermanentError,
    RetryableError,
)
from nudge.connectors.dispatch import Dispatcher, RetryPolicy, TokenBucket, outcome_event
from nudge.connectors.email import EmailConnector
from nudge.connectors.ledger import DeliveryLedger, MemoryLedger, RedisLedger
from nudge.connectors.templates import Templates
from nudge.connectors.tracking import Tracker

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
POLICY = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=60.0)


def email_connector(url: str, timeout: float = 5.0) -> EmailConnector:
    return EmailConnector(
        parse_smtp_url(url, "off"),
        "Shop <hello@shop.example>",
        Templates(TEMPLATES),
        Tracker("secret", "https://t.shop.example"),
        timeout=timeout,
    )


class Scripted:
    """A connector answering from a script: an Outcome, or an exception to raise."""

    def __init__(self, *script: Outcome | Exception) -> None:
        self.script = list(script)
        self.calls: list[Action] = []

    async def deliver(self, action: Action) -> Outcome:
        self.calls.append(action)
        step = self.script.pop(0) if self.script else Outcome("sent")
        if isinstance(step, Exception):
            raise step
        return step


class Gate:
    """A connector that blocks until released, to interrupt a delivery mid-send."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def deliver(self, action: Action) -> Outcome:
        self.entered.set()
        await self.release.wait()
        return Outcome("sent")


class Stopped:
    """A clock at 11:00 on which every sleep lasts until cancelled; counts the sleepers."""

    def __init__(self) -> None:
        self.sleepers = 0

    def now(self) -> datetime:
        return datetime(2026, 11, 20, 11, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        self.sleepers += 1
        await asyncio.Event().wait()


def dispatcher(
    connectors: dict[str, Any],
    ledger: DeliveryLedger,
    clock: Any,
    events: Any = None,
    dead_letters: Any = None,
    **kwargs: Any,
) -> Dispatcher:
    return Dispatcher(
        connectors, ledger, POLICY, events, dead_letters, clock=clock, draw=lambda: 0.5, **kwargs
    )


# ---------------------------------------------------------------------------- real SMTP


async def test_451_then_success_is_retried(
    mail_server: Any, make_action: Callable[..., dict[str, Any]], clock: Any, events: Any,
    dead_letters: Any,
) -> None:  # fmt: skip
    mail_server.reply_next("data", "451 4.3.0 Try again later", "451 4.3.0 Try again later")
    action = make_action("email")
    d = dispatcher(
        {"email": email_connector(mail_server.url())}, MemoryLedger(), clock, events, dead_letters
    )
    outcome = await d.deliver(action)
    assert outcome is not None and outcome.status == "sent"
    assert len(mail_server.messages) == 1
    assert clock.sleeps == [0.5, 1.0]  # full jitter (draw 0.5) of 1s, then 2s
    [event] = events.items
    assert event == {
        "id": f"{action['id']}.email_sent",
        "event": "email_sent",
        "contact_id": action["contact_id"],
        "timestamp": "2026-11-20T11:00:01.500Z",
        "origin": "connector",
        "inbound": False,
        "properties": {
            "action_id": action["id"],
            "rule": "abandoned_cart",
            "template": "cart_reminder",
            "kind": "email",
            "provider_id": f"<nudge.{action['id']}@shop.example>",
        },
    }
    assert dead_letters.items == []


async def test_550_bounces_without_retry(
    mail_server: Any, make_action: Callable[..., dict[str, Any]], clock: Any, events: Any,
    dead_letters: Any,
) -> None:  # fmt: skip
    mail_server.reply_next("rcpt", "550 5.1.1 No such user")
    action = make_action("email")
    d = dispatcher(
        {"email": email_connector(mail_server.url())}, MemoryLedger(), clock, events, dead_letters
    )
    outcome = await d.deliver(action)
    assert outcome is not None and outcome.status == "bounced"
    assert mail_server.attempts == 1
    assert clock.sleeps == []
    assert events.names() == ["email_bounced"]
    assert "550 5.1.1 No such user" in events.items[0]["properties"]["reason"]
    assert dead_letters.items == []  # a bounce is an answer, not a failure to deliver


async def test_refused_connection_retries_then_dead_letters(
    closed_port: int, make_action: Callable[..., dict[str, Any]], clock: Any, events: Any,
    dead_letters: Any,
) -> None:  # fmt: skip
    action = make_action("email")
    d = dispatcher(
        {"email": email_connector(f"smtp://127.0.0.1:{closed_port}")},
        MemoryLedger(), clock, events, dead_letters,
    )  # fmt: skip
    outcome = await d.deliver(action)
    assert outcome is not None and outcome.status == "failed"
    assert len(clock.sleeps) == POLICY.max_attempts - 1
    assert events.names() == ["email_failed"]
    [letter] = dead_letters.items
    assert letter["action"] == action
    assert letter["attempts"] == POLICY.max_attempts
    assert letter["reason"].startswith(f"gave up after {POLICY.max_attempts} attempts")


async def test_a_silent_server_times_out_retries_then_dead_letters(
    silent_server: int, make_action: Callable[..., dict[str, Any]], clock: Any, events: Any,
    dead_letters: Any,
) -> None:  # fmt: skip
    policy = RetryPolicy(max_attempts=2, base_delay=1.0, max_delay=5.0)
    connector = email_connector(f"smtp://127.0.0.1:{silent_server}", timeout=0.2)
    d = Dispatcher({"email": connector}, MemoryLedger(), policy, events, dead_letters, clock=clock)
    outcome = await d.deliver(make_action("email"))
    assert outcome is not None and outcome.status == "failed"
    assert len(clock.sleeps) == 1
    [letter] = dead_letters.items
    assert "Timeout" in letter["reason"]
    assert letter["attempts"] == 2


# ---------------------------------------------------------------------------- never twice


async def test_a_restart_sends_nothing_twice(
    mail_server: Any, make_action: Callable[..., dict[str, Any]], clock: Any, events: Any
) -> None:
    ledger = MemoryLedger()
    sent_before = make_action("email")
    held = make_action("email", at="2026-11-20T15:00:00Z")  # due in 4 hours
    retrying = make_action("email")
    stopped = Stopped()
    first = dispatcher({"email": email_connector(mail_server.url())}, ledger, stopped, events)
    assert (await first.deliver(sent_before)) is not None
    mail_server.reply_next("data", "451 4.3.0 later")
    first.submit(held)
    stuck = first.submit(retrying)
    while stopped.sleepers < 2:  # held waits for its time, retrying between attempts
        await asyncio.sleep(0.01)
    await first.aclose()  # the worker stops: held and retrying are cancelled
    assert stuck.cancelled()
    assert len(mail_server.messages) == 1

    second = dispatcher({"email": email_connector(mail_server.url())}, ledger, clock, events)
    for action in (sent_before, held, retrying, sent_before):  # the actions topic again
        second.submit(action)
    await second.drain()
    received = [m["X-Nudge-Action"] for m in mail_server.messages]
    assert sorted(received) == sorted([sent_before["id"], held["id"], retrying["id"]])


async def test_an_action_interrupted_mid_send_is_not_sent_again(
    make_action: Callable[..., dict[str, Any]], clock: Any
) -> None:
    ledger = MemoryLedger()
    gate = Gate()
    action = make_action("sms")
    first = dispatcher({"sms": gate}, ledger, clock)
    first.submit(action)
    await gate.entered.wait()
    await first.aclose()  # it may or may not have gone out: at most once means not again
    again = Scripted()
    second = dispatcher({"sms": again}, ledger, clock)
    assert await second.deliver(action) is None
    assert again.calls == []


@pytest.mark.redis
async def test_concurrent_workers_deliver_once(
    mail_server: Any, make_action: Callable[..., dict[str, Any]], clock: Any, redis: Redis
) -> None:
    action = make_action("email")
    workers = [
        dispatcher({"email": email_connector(mail_server.url())}, RedisLedger(redis), clock)
        for _ in range(5)
    ]
    results = await asyncio.gather(*(w.deliver(action) for w in workers))
    assert len(mail_server.messages) == 1
    assert sum(r is not None for r in results) == 1


@pytest.mark.redis
async def test_restart_with_a_redis_ledger(
    mail_server: Any, make_action: Callable[..., dict[str, Any]], clock: Any, events: Any,
    redis_url: str,
) -> None:  # fmt: skip
    action = make_action("email")
    for _ in range(2):  # two processes, one after the other: new client, new ledger
        client = Redis.from_url(redis_url)
        d = dispatcher(
            {"email": email_connector(mail_server.url())}, RedisLedger(client), clock, events
        )
        await d.deliver(action)
        await client.aclose()
    assert len(mail_server.messages) == 1
    # The second run re-emits the recorded outcome, same id and time: events are at least once.
    assert events.items[0] == events.items[1]


# ---------------------------------------------------------------------------- holding


async def test_actions_are_held_until_due(
    make_action: Callable[..., dict[str, Any]], clock: Any
) -> None:
    seen_at: list[Any] = []

    class Stamp:
        async def deliver(self, action: Action) -> Outcome:
            seen_at.append(clock.now())
            return Outcome("sent")

    action = make_action("sms", at="2026-11-20T13:30:00+02:00")  # 11:30 UTC, 30 minutes on
    d = dispatcher({"sms": Stamp()}, MemoryLedger(), clock)
    await d.deliver(action)
    assert seen_at == [clock.now()]
    assert clock.now() - timedelta(minutes=30) == clock.now().replace(hour=11, minute=0)
    assert clock.sleeps == [1800.0]


async def test_past_or_missing_at_is_delivered_at_once(
    make_action: Callable[..., dict[str, Any]], clock: Any
) -> None:
    d = dispatcher({"sms": Scripted()}, MemoryLedger(), clock)
    await d.deliver(make_action("sms", at="2026-11-19T00:00:00Z"))
    await d.deliver(make_action("sms", at=None))
    await d.deliver(make_action("sms", at="not a time"))
    assert clock.sleeps == []


async def test_pending_counts_held_actions(make_action: Callable[..., dict[str, Any]]) -> None:
    d = Dispatcher({"sms": Scripted()}, MemoryLedger())
    d.submit(make_action("sms", at="2999-01-01T00:00:00Z"))
    await asyncio.sleep(0)
    assert d.pending == 1
    await d.aclose()
    assert d.pending == 0


# ---------------------------------------------------------------------------- outcomes


async def test_permanent_errors_fail_and_dead_letter(
    make_action: Callable[..., dict[str, Any]], clock: Any, events: Any, dead_letters: Any
) -> None:
    hook = Scripted(PermanentError("webhook `crm`: HTTP 404", detail="HTTP 404: not found"))
    d = dispatcher({"webhook": hook}, MemoryLedger(), clock, events, dead_letters)
    outcome = await d.deliver(make_action("webhook"))
    assert outcome == Outcome("failed", "webhook `crm`: HTTP 404: HTTP 404: not found")
    assert events.names() == ["webhook_failed"]
    assert events.items[0]["properties"]["name"] == "crm"
    assert len(hook.calls) == 1
    assert dead_letters.items[0]["reason"] == outcome.detail


async def test_a_crashing_connector_is_a_failure_not_a_crash(
    make_action: Callable[..., dict[str, Any]], clock: Any, dead_letters: Any
) -> None:
    d = dispatcher({"sms": Scripted(KeyError("to"))}, MemoryLedger(), clock, None, dead_letters)
    outcome = await d.deliver(make_action("sms"))
    assert outcome is not None and outcome.status == "failed"
    assert "KeyError" in dead_letters.items[0]["reason"]


async def test_unknown_kinds_and_malformed_actions_are_dead_lettered(
    make_action: Callable[..., dict[str, Any]], clock: Any, dead_letters: Any
) -> None:
    d = dispatcher({"email": Scripted()}, MemoryLedger(), clock, None, dead_letters)
    assert await d.deliver(make_action("fax")) is None
    assert await d.deliver({"kind": "email"}) is None
    reasons = [letter["reason"] for letter in dead_letters.items]
    assert reasons[0] == "no connector for kind `fax`"
    assert reasons[1].startswith("malformed action")


async def test_retry_after_is_honoured(
    make_action: Callable[..., dict[str, Any]], clock: Any
) -> None:
    connector = Scripted(RetryableError("HTTP 429", retry_after=30))
    d = dispatcher({"webhook": connector}, MemoryLedger(), clock)
    await d.deliver(make_action("webhook"))
    assert clock.sleeps == [30.0]


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=2.0, max_delay=20.0)
    assert [policy.backoff(n, 1.0) for n in range(1, 6)] == [2.0, 4.0, 8.0, 16.0, 20.0]
    assert policy.backoff(3, 0.0) == 0.0
    assert policy.backoff(3, 0.25) == 2.0
    assert policy.backoff(1, 0.1, retry_after=500) == 20.0


@pytest.mark.parametrize(
    ("kind", "outcome", "name"),
    [
        ("email", Outcome("sent"), "email_sent"),
        ("email", Outcome("bounced", "550"), "email_bounced"),
        ("email", Outcome("failed", "x"), "email_failed"),
        ("sms", Outcome("sent"), "sms_sent"),
        ("webhook", Outcome("sent"), "webhook_delivered"),
        ("audience_add", Outcome("sent"), "audience_added"),
        ("audience_remove", Outcome("failed", "x"), "audience_failed"),
        ("show", Outcome("sent"), "content_shown"),
    ],
)
def test_outcome_event_names(
    make_action: Callable[..., dict[str, Any]], clock: Any, kind: str, outcome: Outcome, name: str
) -> None:
    event = outcome_event(make_action(kind), outcome, clock.now())
    assert event["event"] == name
    assert event["origin"] == "connector"
    assert event["inbound"] is False


async def test_a_bounce_from_any_connector_is_a_bounce(
    make_action: Callable[..., dict[str, Any]], clock: Any, events: Any
) -> None:
    d = dispatcher({"email": Scripted(BounceError("550"))}, MemoryLedger(), clock, events)
    outcome = await d.deliver(make_action("email"))
    assert outcome is not None and outcome.status == "bounced"


# ---------------------------------------------------------------------------- rate limits


async def test_token_bucket_spaces_out_deliveries(
    make_action: Callable[..., dict[str, Any]], clock: Any
) -> None:
    connector = Scripted()
    d = dispatcher({"sms": connector}, MemoryLedger(), clock, rate_limits={"sms": 2.0})
    start = clock.monotonic()
    for _ in range(6):
        await d.deliver(make_action("sms", at=None))
    # A burst of 2, then one every half second.
    assert clock.monotonic() - start == pytest.approx(2.0)
    assert len(connector.calls) == 6


async def test_channels_are_limited_separately(
    make_action: Callable[..., dict[str, Any]], clock: Any
) -> None:
    d = dispatcher(
        {"sms": Scripted(), "webhook": Scripted()}, MemoryLedger(), clock, rate_limits={"sms": 1.0}
    )
    for _ in range(3):
        await d.deliver(make_action("webhook", at=None))
    assert clock.sleeps == []


def test_a_bucket_needs_a_rate(clock: Any) -> None:
    with pytest.raises(ValueError):
        TokenBucket(0, clock)
