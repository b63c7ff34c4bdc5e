"""One Redis client for a `redis_url`, a single node or (with `?cluster=true`) a Cluster."""

from __future__ import annotations

from typing import Any, TypeAlias

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from nudge.engine.stores.redis import client_from_url

__all__ = ["AnyRedis", "redis_from_url"]

AnyRedis: TypeAlias = Redis | RedisCluster


def redis_from_url(url: str, **options: Any) -> AnyRedis:
    """A client for `url`; `?cluster=true` in it makes a Cluster client (keys hash-tagged), and
    a single node's commands wait for a free connection (`pooled_client`)."""
    return client_from_url(url, **options)
