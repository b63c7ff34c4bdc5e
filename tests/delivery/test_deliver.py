"""`nudge deliver` on a real broker, Redis and SMTP server: actions in, emails and events out."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from nudge_process import NudgeProcess, clean_env

from nudge.devservers import KafkaBroker, SmtpServer
from nudge.engine.actions import Action
from nudge.engine.kafka_io import action_record, start_producer

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

PARTITIONS = 2
_n = itertools.count(1)


def email_action(contact: str, *, template: str = "hello") -> Action:
    n = next(_n)
    return Action(
        id=f"a-{n}-{contact}",
        rule="welcome",
        contact_id=contact,
        kind="email",
        at="2026-11-20T09:00:00Z",  # due already
        template=template,
        to=f"{contact}@example.se",
        data={"plan": "pro"},
        contact={"first_name": "Ann", "email": f"{contact}@example.se", "consent_email": True},
    )


class Deployment:
    def __init__(self, prefix: str, broker: KafkaBroker, redis_url: str, smtp: SmtpServer):
        self.prefix = prefix
        self.broker = broker
        self.redis_url = redis_url
        self.smtp = smtp

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def actions(self) -> str:
        return f"{self.prefix}.actions"

    @property
    def actions_dlq(self) -> str:
        return f"{self.prefix}.actions.dlq"

    def env(self, app_id: str, **extra: str) -> dict[str, str]:
        return clean_env(
            NUDGE_BROKER_URL=self.broker.url,
            NUDGE_REDIS_URL=self.redis_url,
            NUDGE_PARTITIONS=str(PARTITIONS),
            NUDGE_EVENTS_TOPIC=self.events,
            NUDGE_ACTIONS_TOPIC=self.actions,
            NUDGE_DLQ_TOPIC=f"{self.prefix}.events.dlq",
            NUDGE_ACTIONS_DLQ_TOPIC=self.actions_dlq,
            NUDGE_APP_ID=app_id,
            NUDGE_SMTP_URL=f"smtp://{self.smtp.host}:{self.smtp.port}",
            NUDGE_SMTP_FROM="Shop <hello@shop.example>",
            NUDGE_SMTP_STARTTLS="off",
            NUDGE_TRACKING_SECRET="test-secret",
            NUDGE_RETRY_BASE_DELAY="50ms",
            NUDGE_RETRY_MAX_DELAY="200ms",
            NUDGE_SESSION_TIMEOUT="3",
            NUDGE_HEARTBEAT_INTERVAL="0.5",
            NUDGE_COMMIT_INTERVAL="200ms",
            NUDGE_FETCH_WAIT="50ms",
            NUDGE_LOG_LEVEL="info",
            **extra,
        )

    async def produce(self, actions: list[Action]) -> None:
        producer = await start_producer(self.broker.bootstrap)
        try:
            for action in actions:
                partition, key, value = action_record(action, PARTITIONS)
                await producer.send_and_wait(self.actions, value, key=key, partition=partition)
        finally:
            await producer.stop()

    async def read(self, topic: str) -> list[dict[str, Any]]:
        """Every JSON object on `topic` so far (packed arrays unpacked)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.broker.bootstrap)
        await consumer.start()
        try:
            parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            out: list[dict[str, Any]] = []
            while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        value = orjson.loads(record.value)
                        out.extend(value if isinstance(value, list) else [value])
            return out
        finally:
            await consumer.stop()

    def start(self, workdir: Path, app_id: str, name: str, **extra: str) -> NudgeProcess:
        process = NudgeProcess(["deliver"], workdir, self.env(app_id, **extra), name=name)
        return process.start()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "hello.subject.txt").write_text("Hello {{ contact.first_name }}\n")
    (templates / "hello.html").write_text("<p>Your plan: {{ data.plan }}</p>\n")
    return tmp_path


@pytest.fixture
def deployment(
    topic_prefix: str, kafka_broker: KafkaBroker, redis_db_url: str, smtp_server: SmtpServer
) -> Iterator[Deployment]:
    deployment = Deployment(topic_prefix, kafka_broker, redis_db_url, smtp_server)
    kafka_broker.create_topic_sync(deployment.events, PARTITIONS)
    kafka_broker.create_topic_sync(deployment.actions, PARTITIONS)
    kafka_broker.create_topic_sync(deployment.actions_dlq, PARTITIONS)
    yield deployment


async def wait_for(condition: Any, what: str, process: NudgeProcess, timeout: float = 40) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await condition()
        if result:
            return result
        if process.process is not None and process.process.poll() is not None:
            raise AssertionError(f"deliver exited before {what}:\n{process.stderr[-4000:]}")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{process.stderr[-4000:]}")
        await asyncio.sleep(0.2)


async def test_actions_become_emails_and_outcome_events_once_across_restarts(
    deployment: Deployment, workdir: Path, smtp_server: SmtpServer
) -> None:
    actions = [email_action(f"c{i}") for i in range(4)]
    await deployment.produce(actions)
    first = deployment.start(workdir, deployment.prefix, "first")
    try:
        received = await smtp_server.await_messages(4, timeout=40)
        assert sorted(m.rcpt_tos[0] for m in received) == [f"c{i}@example.se" for i in range(4)]
        assert {str(m.message["Subject"]) for m in received} == {"Hello Ann"}

        async def sent_events() -> list[dict[str, Any]]:
            found = await deployment.read(deployment.events)
            return [e for e in found if e["event"] == "email_sent"]

        events = await wait_for(lambda: _at_least(sent_events, 4), "email_sent events", first)
        assert {e["properties"]["action_id"] for e in events} == {a.id for a in actions}
        assert all(e["properties"]["rule"] == "welcome" for e in events)
        assert all(e["inbound"] is False for e in events)  # not the contact's own activity
    finally:
        assert first.stop() == 0

    # Same group: everything was committed, nothing is read again.
    again = deployment.start(workdir, deployment.prefix, "again")
    try:
        again.wait_for(lambda: "deliver.assigned" in again.stderr, "an assignment", timeout=40)
        await asyncio.sleep(1.0)
        assert "delivery.done" not in again.stderr and "delivery.skipped" not in again.stderr
    finally:
        assert again.stop() == 0

    # A new group reads every action again: the Redis ledger sends none of them twice, and
    # reports their recorded outcomes again, with the same event ids.
    fresh = deployment.start(workdir, f"{deployment.prefix}-other", "fresh")
    try:
        fresh.wait_for(lambda: fresh.stderr.count("delivery.skipped") >= 4, "the skips", 40)
        events = await wait_for(lambda: _at_least(sent_events, 8), "outcomes again", fresh)
        assert len({e["id"] for e in events}) == 4
    finally:
        assert fresh.stop() == 0
    assert len(smtp_server.messages) == 4


async def _at_least(read: Any, n: int) -> Any:
    found = await read()
    return found if len(found) >= n else None


async def test_smtp_4xx_is_retried_and_5xx_bounces(
    deployment: Deployment, workdir: Path, smtp_server: SmtpServer
) -> None:
    smtp_server.fail_next(2, 451)
    retried = email_action("c-retry")
    await deployment.produce([retried])
    process = deployment.start(workdir, deployment.prefix, "smtp")
    try:
        received = await smtp_server.await_messages(1, timeout=40)
        assert received[0].rcpt_tos == ("c-retry@example.se",)
        assert process.stderr.count("delivery.retry") == 2

        smtp_server.fail_next(1, 550, "No such user", stage="rcpt")
        bounced = email_action("c-bounce")
        await deployment.produce([bounced])

        async def outcomes() -> dict[str, str] | None:
            found = {
                e["properties"]["action_id"]: e["event"]
                for e in await deployment.read(deployment.events)
            }
            return found if len(found) >= 2 else None

        by_action = await wait_for(outcomes, "both outcomes", process)
        assert by_action == {retried.id: "email_sent", bounced.id: "email_bounced"}
        assert len(smtp_server.messages) == 1
    finally:
        assert process.stop() == 0


async def test_given_up_actions_go_to_the_dead_letter_topic(
    deployment: Deployment, workdir: Path, smtp_server: SmtpServer
) -> None:
    smtp_server.fail_next(5, 451)
    exhausted = email_action("c-busy")
    no_template = email_action("c-missing", template="nowhere")
    await deployment.produce([exhausted, no_template])
    process = deployment.start(workdir, deployment.prefix, "dlq", NUDGE_RETRY_MAX_ATTEMPTS="2")
    try:

        async def dead() -> list[dict[str, Any]] | None:
            found = await deployment.read(deployment.actions_dlq)
            return found if len(found) >= 2 else None

        letters = {d["action"]["id"]: d for d in await wait_for(dead, "two dead letters", process)}
        assert letters[exhausted.id]["attempts"] == 2
        assert "gave up after 2 attempts" in letters[exhausted.id]["reason"]
        assert "missing template" in letters[no_template.id]["reason"]
        assert letters[no_template.id]["action"]["contact_id"] == "c-missing"
    finally:
        assert process.stop() == 0
    assert smtp_server.messages == []


async def test_an_action_not_delivered_at_shutdown_is_read_again(
    deployment: Deployment, workdir: Path, smtp_server: SmtpServer
) -> None:
    from datetime import UTC, datetime, timedelta

    due = datetime.now(UTC) + timedelta(seconds=6)
    held = email_action("c-held")
    held.at = due.isoformat().replace("+00:00", "Z")
    await deployment.produce([held])
    first = deployment.start(workdir, deployment.prefix, "held", NUDGE_DRAIN_TIMEOUT="100ms")
    first.wait_for(lambda: "deliver.assigned" in first.stderr, "an assignment", timeout=40)
    await asyncio.sleep(0.5)  # read, and held until due
    assert first.stop() == 0
    assert "deliver.drain_timeout" in first.stderr
    assert smtp_server.messages == []

    second = deployment.start(workdir, deployment.prefix, "resumed")
    try:
        received = await smtp_server.await_messages(1, timeout=40)
        assert received[0].rcpt_tos == ("c-held@example.se",)
        assert datetime.now(UTC) >= due
    finally:
        assert second.stop() == 0
