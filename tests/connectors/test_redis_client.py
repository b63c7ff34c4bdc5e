"""The Redis client every command makes from `redis_url`."""

from __future__ import annotations

import asyncio

import pytest

from nudge.connectors.redis_client import redis_from_url

pytestmark = pytest.mark.redis


async def test_commands_wait_for_a_free_connection_rather_than_fail(redis_url: str) -> None:
    # `nudge deliver` works on up to a thousand actions at once: more than the pool holds
    client = redis_from_url(redis_url, max_connections=2)
    try:
        key = "nudge-test:pool"
        await client.delete(key)

        async def slow_increment() -> None:
            await client.blpop(["nudge-test:nothing"], timeout=0.05)  # holds a connection
            await client.incr(key)

        await asyncio.gather(*(slow_increment() for _ in range(20)))
        assert int(await client.get(key)) == 20
    finally:
        await client.aclose()


def test_a_cluster_flag_that_is_neither_true_nor_false_is_refused() -> None:
    with pytest.raises(ValueError, match="cluster='maybe'"):
        redis_from_url("redis://127.0.0.1:6379/0?cluster=maybe")
