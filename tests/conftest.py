"""Real servers for the whole test tree, each started only when a test asks for it.

Redis and the Kafka broker live for the session (tests keep to their own keys and topics);
the SMTP server is fresh for each test, so its inbox starts empty.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nudge.devservers import KafkaBroker, RedisServer, SmtpServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    with KafkaBroker() as broker:
        yield broker


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server
