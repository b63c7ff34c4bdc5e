"""One Redis client for a `redis_url`, a single node or (with `?cluster=true`) a Cluster."""

from __future__ import annotations

from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from nudge.engine.stores.redis import pooled_client

__all__ = ["AnyRedis", "redis_from_url"]

AnyRedis: TypeAlias = Redis | RedisCluster

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def redis_from_url(url: str, **options: Any) -> AnyRedis:
    """A client for `url`; `?cluster=true` in it makes a Cluster client (keys hash-tagged)."""
    parts = urlsplit(url)
    cluster = False
    kept: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name != "cluster":
            kept.append((name, value))
        elif value.lower() in _TRUE:
            cluster = True
        elif value.lower() not in _FALSE:
            raise ValueError(f"redis_url: cluster={value!r}: expected true or false")
    plain = urlunsplit(parts._replace(query=urlencode(kept)))
    if cluster:
        return RedisCluster.from_url(plain, **options)
    return pooled_client(plain, **options)  # commands wait for a free connection
