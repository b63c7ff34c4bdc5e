"""Delivery tests: `nudge run` and `nudge deliver` as subprocesses, on real servers."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from nudge.devservers import RedisServer

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

_next_db = iter(range(1, 10_000))


@pytest.fixture
def topic_prefix() -> str:
    """A prefix no other test uses, for topic names and consumer groups."""
    return f"d{uuid.uuid4().hex[:10]}"


@pytest.fixture
def redis_db_url(redis_server: RedisServer) -> str:
    """A Redis database of its own (1 to 15, in turn), emptied first."""
    import redis

    db = next(_next_db) % 15 + 1
    client = redis.Redis(host=redis_server.host, port=redis_server.port, db=db)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_server.url_for(db)
