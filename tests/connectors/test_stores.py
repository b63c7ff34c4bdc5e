"""The delivery ledger and the content store: one contract, in memory and on a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from aiohttp import test_utils, web
from redis.asyncio import Redis

from nudge.connectors.base import Outcome, PermanentError
from nudge.connectors.content import (
    ContentStore,
    MemoryContentStore,
    RedisContentStore,
    ShowConnector,
    add_content_routes,
)
from nudge.connectors.ledger import DeliveryLedger, MemoryLedger, RedisLedger

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------- ledger


@pytest.fixture(params=BACKENDS)
async def ledgers(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], DeliveryLedger]]:
    """Makes ledgers sharing one store, each a separate worker (its own owner id)."""
    if request.param == "memory":
        shared = MemoryLedger()
        yield lambda: shared
        return
    redis = Redis.from_url(request.getfixturevalue("redis_url"))
    yield lambda: RedisLedger(redis, ttl=3600)
    await redis.aclose()


async def test_an_action_is_claimed_once(ledgers: Callable[[], DeliveryLedger]) -> None:
    ledger = ledgers()
    action, contact = fresh("a"), fresh("c")
    assert await ledger.claim(action, contact)
    assert not await ledger.claim(action, contact)
    assert not await ledgers().claim(action, contact)
    assert await ledger.claim(fresh("a"), contact)
    entry = await ledger.get(action, contact)
    assert entry is not None and entry.state == "claimed"


async def test_concurrent_claims_have_one_winner(ledgers: Callable[[], DeliveryLedger]) -> None:
    action, contact = fresh("a"), fresh("c")
    results = await asyncio.gather(*(ledgers().claim(action, contact) for _ in range(20)))
    assert results.count(True) == 1


async def test_recorded_outcomes_stay_claimed(ledgers: Callable[[], DeliveryLedger]) -> None:
    ledger = ledgers()
    action, contact = fresh("a"), fresh("c")
    await ledger.claim(action, contact)
    await ledger.record(action, contact, Outcome("sent", "250 ok", "<m@x>"), 1_700_000_000.5)
    entry = await ledger.get(action, contact)
    assert entry is not None
    assert (entry.state, entry.outcome, entry.ts) == (
        "done",
        Outcome("sent", "250 ok", "<m@x>"),
        1_700_000_000.5,
    )
    await ledger.release(action, contact)  # a finished delivery is never given back
    assert not await ledger.claim(action, contact)


async def test_release_gives_back_only_ones_own_claim(
    ledgers: Callable[[], DeliveryLedger],
) -> None:
    action, contact = fresh("a"), fresh("c")
    first = ledgers()
    assert await first.claim(action, contact)
    if isinstance(first, RedisLedger):
        await ledgers().release(action, contact)  # another worker: no effect
        assert not await ledgers().claim(action, contact)
    await first.release(action, contact)
    assert await ledgers().claim(action, contact)
    assert await ledgers().get(fresh("a"), contact) is None


@pytest.mark.redis
async def test_redis_ledger_key_is_hash_tagged_and_expires(redis: Redis) -> None:
    action, contact = fresh("a"), fresh("c")
    await RedisLedger(redis, ttl=120).claim(action, contact)
    key = f"nudge:{{{contact}}}:sent:{action}"
    assert 0 < await redis.ttl(key) <= 120
    assert orjson.loads(await redis.get(key))["state"] == "claimed"


# ---------------------------------------------------------------------------- content


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ContentStore]:
    if request.param == "memory":
        yield MemoryContentStore()
        return
    redis = Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisContentStore(redis)
    await redis.aclose()


async def test_slots_hold_the_newest_content(store: ContentStore) -> None:
    contact = fresh("c")
    assert await store.get(contact, "hero") is None
    assert await store.put(contact, "hero", "welcome_banner", ts=100.0, action_id="a1")
    assert await store.put(contact, "sidebar", "tips", ts=100.0)
    assert await store.put(contact, "hero", "vip_banner", ts=200.0)
    assert not await store.put(contact, "hero", "stale_banner", ts=150.0)  # older: kept newer
    assert await store.get(contact, "hero") == "vip_banner"
    assert await store.slots(contact) == {"hero": "vip_banner", "sidebar": "tips"}
    assert await store.slots(fresh("c")) == {}


@pytest.mark.redis
async def test_redis_content_lives_in_a_hash_per_contact(redis: Redis) -> None:
    contact = fresh("c")
    await RedisContentStore(redis).put(contact, "hero", "vip_banner", ts=1.0)
    assert await redis.type(f"nudge:{{{contact}}}:slots") == b"hash"


async def test_show_connector_stores_by_action_time(
    store: ContentStore, make_action: Callable[..., dict[str, Any]]
) -> None:
    show = ShowConnector(store)
    later = make_action("show", content="vip_banner", at="2026-11-20T12:00:00Z")
    earlier = make_action(
        "show", contact_id=later["contact_id"], content="welcome", at="2026-11-20T11:00:00Z"
    )
    assert (await show.deliver(later)).detail == "stored"
    assert (await show.deliver(earlier)).detail == "kept newer content"
    assert await store.get(later["contact_id"], "hero") == "vip_banner"
    with pytest.raises(PermanentError):
        await show.deliver(make_action("show", slot=None))


async def test_content_route(store: ContentStore) -> None:
    contact = fresh("c")
    await store.put(contact, "hero", "vip_banner")
    app = web.Application()
    add_content_routes(app, store)
    async with test_utils.TestClient(test_utils.TestServer(app)) as client:
        found = await client.get(f"/v1/content/{contact}/hero")
        assert found.status == 200
        assert await found.json() == {
            "contact_id": contact,
            "slot": "hero",
            "content": "vip_banner",
        }
        assert found.headers["Access-Control-Allow-Origin"] == "*"
        empty = await client.get(f"/v1/content/{contact}/footer")
        assert empty.status == 404
        assert (await empty.json())["content"] is None
