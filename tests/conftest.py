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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite golden files (expected outputs) from what the code produces now",
    )


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    """True under `pytest --update-goldens`: golden tests write instead of compare."""
    return bool(request.config.getoption("--update-goldens"))
