"""The read-back marks in Redis (`RedisMarks`): key layout, a single node and a Cluster."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot
from redis_cluster import RedisClusterServer

from nudge.engine.publisher import RedisMarks

pytestmark = pytest.mark.redis


async def test_marks_round_trip_under_the_key_prefix(redis_url: str, prefix: str) -> None:
    marks = RedisMarks(redis_url, "shop.actions", key_prefix=prefix)
    admin = Redis.from_url(redis_url)
    try:
        assert await marks.get([0, 1, 2]) == {0: None, 1: None, 2: None}
        await marks.set({0: 17, 2: 5})
        assert await marks.get([2, 0, 1]) == {0: 17, 1: None, 2: 5}
        keys = sorted([k async for k in admin.scan_iter(match=f"{prefix}:*")])
        assert keys == [
            f"{prefix}:actions-mark:{{shop.actions}}:0".encode(),
            f"{prefix}:actions-mark:{{shop.actions}}:2".encode(),
        ]
        assert await marks.get([]) == {}
    finally:
        for key in [k async for k in admin.scan_iter(match=f"{prefix}:*")]:
            await admin.delete(key)
        await admin.aclose()
        await marks.close()


def test_the_marks_of_a_topic_share_one_slot() -> None:
    marks = RedisMarks("redis://127.0.0.1:1/0", "shop.actions")
    slots = {key_slot(f"{marks.prefix}{p}".encode()) for p in range(64)}
    assert len(slots) == 1


async def test_marks_on_a_cluster(redis_cluster: RedisClusterServer, prefix: str) -> None:
    marks = RedisMarks(redis_cluster.url + "?cluster=true", "shop.actions", key_prefix=prefix)
    try:
        await marks.set({p: p * 10 for p in range(12)})
        assert await marks.get(range(12)) == {p: p * 10 for p in range(12)}
    finally:
        await marks.close()
