"""RedisStore: the store contract on a real Redis (single node and a 3-node Cluster), then
what is specific to Redis: key layout, slots, round trips, atomicity, TTLs, the index."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis_cluster import RedisClusterServer
from redis_wire import flatten, watch_wire
from store_contract import T0, StoreContract, _full_state, _timer

from nudge.connectors.ledger import ledger_key
from nudge.devservers import RedisServer
from nudge.engine.partitioning import partition_for
from nudge.engine.state import ContactState, ContactStore, TimerRef
from nudge.engine.stores import redis as redis_module
from nudge.engine.stores.redis import RedisStore, StoreConfigError, StoreDataError

pytestmark = pytest.mark.redis

PARTITIONS = 4


async def _drop_keys(client: Redis | RedisCluster, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
    for key in keys:
        await client.delete(key)


@pytest.fixture
async def admin(redis_url: str, prefix: str) -> AsyncIterator[Redis]:
    """A plain client on the test Redis; the test's keys are dropped afterwards."""
    client = Redis.from_url(redis_url)
    yield client
    await _drop_keys(client, prefix)
    await client.aclose()


@pytest.fixture
async def cluster_admin(
    redis_cluster: RedisClusterServer, prefix: str
) -> AsyncIterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster.url)
    yield client
    await _drop_keys(client, prefix)
    await client.aclose()


class TestRedisStore(StoreContract):
    @pytest.fixture
    async def store(self, redis_url: str, prefix: str, admin: Redis) -> AsyncIterator[ContactStore]:
        s = RedisStore.from_url(redis_url, partitions=PARTITIONS, key_prefix=prefix)
        yield s
        await s.close()


class TestRedisStoreKeepingStates(StoreContract):
    """The contract holds with saved states kept in memory between load and save."""

    @pytest.fixture
    async def store(self, redis_url: str, prefix: str, admin: Redis) -> AsyncIterator[ContactStore]:
        s = RedisStore.from_url(redis_url, partitions=PARTITIONS, key_prefix=prefix, state_cache=8)
        yield s
        await s.close()


class TestRedisClusterStore(StoreContract):
    @pytest.fixture
    async def store(
        self, redis_cluster: RedisClusterServer, prefix: str, cluster_admin: RedisCluster
    ) -> AsyncIterator[ContactStore]:
        s = RedisStore.from_url(
            redis_cluster.url, partitions=PARTITIONS, key_prefix=prefix, cluster=True
        )
        yield s
        await s.close()


@pytest.fixture
async def store(redis_url: str, prefix: str, admin: Redis) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(redis_url, partitions=PARTITIONS, key_prefix=prefix)
    yield s
    await s.close()


@pytest.fixture
async def cluster_store(
    redis_cluster: RedisClusterServer, prefix: str, cluster_admin: RedisCluster
) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(
        redis_cluster.url + "?cluster=true", partitions=PARTITIONS, key_prefix=prefix
    )
    yield s
    await s.close()


async def _index(client: Redis | RedisCluster, store: RedisStore) -> dict[tuple[str, str], float]:
    """Every index entry: (contact id, timer id) -> due."""
    out: dict[tuple[str, str], float] = {}
    for shard in range(store.partitions):
        for member, score in await client.zrange(store.index_key(shard), 0, -1, withscores=True):
            cid, _, tid = member.partition(b"\x1f")
            out[cid.decode(), tid.decode()] = float(score)
    return out


def _indexed(*states: ContactState) -> dict[tuple[str, str], float]:
    return {(s.contact_id, tid): t.due for s in states for tid, t in s.timers.items()}


# ---------------------------------------------------------------------- layout


async def test_key_layout(store: RedisStore, admin: Redis, prefix: str) -> None:
    state = _full_state("c-42")
    await store.save([state])
    shard = partition_for("c-42", PARTITIONS)
    keys = {key async for key in admin.scan_iter(match=f"{prefix}:*")}
    assert keys == {
        f"{prefix}:{{c-42}}:state".encode(),
        f"{prefix}:timers:{{{shard}}}".encode(),
        f"{prefix}:meta".encode(),
    }
    stored = await admin.get(f"{prefix}:{{c-42}}:state")
    assert orjson.loads(stored) == orjson.loads(orjson.dumps(state.to_dict()))
    members = await admin.zrange(f"{prefix}:timers:{{{shard}}}", 0, -1, withscores=True)
    assert [(bytes(m), float(s)) for m, s in members] == [
        (b"c-42\x1fnfb:r", T0 + 60),
        (b"c-42\x1fwait:r:e1:2", T0 + 3600),
        (b"c-42\x1fdeliver:a-1", T0 + 7200),
    ]
    assert await admin.hget(f"{prefix}:meta", "partitions") == str(PARTITIONS).encode()
    assert await admin.ttl(f"{prefix}:{{c-42}}:state") == -1  # no TTL unless configured


def test_all_keys_of_a_contact_share_one_slot() -> None:
    store = RedisStore(Redis(), partitions=PARTITIONS)
    # (An id starting with "}" makes an empty tag, and Redis then hashes whole keys.)
    for cid in ["c-42", "a-7", "ann@example.se", "c{1}", "kö-ü"]:
        slot = key_slot(store.state_key(cid))
        assert key_slot(ledger_key(cid, "a-123").encode()) == slot
        assert key_slot(store.state_key(cid) + b":other") == slot
    slots = {key_slot(store.state_key(f"c-{i}")) for i in range(200)}
    assert len(slots) > 150  # contacts spread over the cluster


async def test_each_timer_is_indexed_in_its_contacts_shard(store: RedisStore, admin: Redis) -> None:
    ids = [f"c-{i}" for i in range(30)]
    await store.save([_full_state(cid) for cid in ids])
    for shard in range(PARTITIONS):
        members = await admin.zrange(store.index_key(shard), 0, -1)
        owners = {bytes(m).partition(b"\x1f")[0].decode() for m in members}
        assert owners == {cid for cid in ids if partition_for(cid, PARTITIONS) == shard}


async def test_ids_with_braces_and_unicode_round_trip(store: RedisStore) -> None:
    ids = ["c{1}", "}{", "kö-ü", "a b", "x:y:z"]
    await store.save([_full_state(cid) for cid in ids])
    loaded = await store.load(ids)
    for cid in ids:
        assert loaded[cid].to_dict() == _full_state(cid).to_dict()
    refs = await store.due_timers(math.inf, limit=100)
    assert {r.contact_id for r in refs} == set(ids)


async def test_key_prefixes_keep_stores_apart(
    redis_url: str, store: RedisStore, admin: Redis
) -> None:
    other_prefix = f"t{uuid.uuid4().hex[:12]}"
    other = RedisStore.from_url(redis_url, partitions=PARTITIONS, key_prefix=other_prefix)
    try:
        await store.save([_full_state("c-1")])
        assert (await other.load(["c-1"]))["c-1"].is_new
        assert await other.due_timers(math.inf) == []
        assert (await other.timer_summary()).pending == 0
    finally:
        await other.close()
        await _drop_keys(admin, other_prefix)


# ---------------------------------------------------------------------- round trips


async def _warm(store: RedisStore) -> None:
    """Open the connection and do the once-per-store checks."""
    await store.save([ContactState("warm-up")])
    await store.timer_summary()


async def test_load_of_a_batch_is_one_round_trip(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [f"c-{i}" for i in range(1000)]
    await store.save([_full_state(cid) for cid in ids[:500]])
    await _warm(store)
    with watch_wire(monkeypatch) as wire:
        loaded = await store.load(ids)
    assert len(loaded) == 1000
    assert wire.names() == [["MGET"]]
    assert len(wire.commands()[0]) == 1 + 1000


async def test_save_of_a_batch_is_one_transaction(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [f"c-{i}" for i in range(1000)]
    await store.save([_full_state(cid) for cid in ids])
    states = await store.load(ids)
    for state in states.values():
        state.traits["last_seen"] = "2026-11-18T00:00:00Z"
        del state.timers["nfb:r"]  # dropped
        state.timers["inactive:r"] = _timer(state.contact_id, "inactive:r", T0 + 9, "nfb")
    states["c-0"].traits.clear()
    states["c-0"] = ContactState("c-0")  # emptied: deleted
    await _warm(store)
    with watch_wire(monkeypatch) as wire:
        await store.save(states.values())
    (names,) = wire.names()
    assert names[0] == "MULTI" and names[-1] == "EXEC"
    body = [n for n in names[1:-1] if n not in ("ZADD", "ZREM")]
    assert body == ["MSET", "DEL"]
    assert names.index("ZADD") < names.index("MSET") < names.index("ZREM")
    assert names.count("ZADD") == names.count("ZREM") == PARTITIONS
    assert await store.timer_summary() == (999 * 3, T0 + 9)


async def test_due_timers_and_summary_are_one_round_trip_each(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.save([_full_state(f"c-{i}") for i in range(100)])
    await _warm(store)
    with watch_wire(monkeypatch) as wire:
        refs = await store.due_timers(math.inf, limit=50)
        summary = await store.timer_summary(shards=[0, 1])
    assert len(refs) == 50
    assert summary.pending > 0
    assert wire.names() == [["ZRANGEBYSCORE"] * PARTITIONS, ["ZCARD", "ZRANGE"] * 2]


async def test_cluster_load_is_one_pipeline_and_save_writes_the_index_first(
    cluster_store: RedisStore, redis_cluster: RedisClusterServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [f"c-{i}" for i in range(300)]
    await cluster_store.save([_full_state(cid) for cid in ids])
    await _warm(cluster_store)
    with watch_wire(monkeypatch) as wire:
        states = await cluster_store.load(ids)
    assert 1 <= wire.round_trips <= redis_cluster.size  # one write per node, in parallel
    assert set(flatten(wire.names())) == {"GET"}

    for state in states.values():
        del state.timers["nfb:r"]
        state.timers["inactive:r"] = _timer(state.contact_id, "inactive:r", T0 + 9, "nfb")
    with watch_wire(monkeypatch) as wire:
        await cluster_store.save(states.values())
    phases = [set(names) for names in wire.names()]
    zadd = [i for i, p in enumerate(phases) if "ZADD" in p]
    sets = [i for i, p in enumerate(phases) if "SET" in p]
    zrem = [i for i, p in enumerate(phases) if "ZREM" in p]
    assert max(zadd) < min(sets) and max(sets) < min(zrem)
    assert all(len(p) == 1 for p in phases)  # a phase never mixes index and state writes
    assert wire.round_trips <= 3 * redis_cluster.size


# ---------------------------------------------------------------------- atomicity


async def test_readers_see_each_state_with_exactly_its_index_entries(
    store: RedisStore, redis_url: str, prefix: str
) -> None:
    """A single node writes a batch as one transaction: a reader taking its own consistent
    snapshot (MULTI) never sees a state and an index that disagree."""
    ids = [f"c-{i}" for i in range(20)]
    await store.save([_full_state(cid) for cid in ids])
    reader = Redis.from_url(redis_url)
    keys = [store.state_key(cid) for cid in ids]
    stop = asyncio.Event()
    snapshots = 0

    async def read() -> None:
        nonlocal snapshots
        while not stop.is_set():
            pipe = reader.pipeline(transaction=True)
            pipe.mget(keys)
            for shard in range(PARTITIONS):
                pipe.zrange(store.index_key(shard), 0, -1, withscores=True)
            raws, *indexes = await pipe.execute()
            index = {
                tuple(bytes(m).decode().split("\x1f", 1)): float(s)
                for rows in indexes
                for m, s in rows
            }
            states = [ContactState.from_dict(orjson.loads(r)) for r in raws if r is not None]
            assert index == _indexed(*states)
            snapshots += 1

    async def write() -> None:
        for round_ in range(60):
            states = await store.load(ids)
            for state in states.values():
                if round_ % 3 == 0:
                    state.timers.clear()
                else:
                    state.timers[f"wait:r:e{round_}:1"] = _timer(
                        state.contact_id, f"wait:r:e{round_}:1", T0 + round_
                    )
                    if "nfb:r" in state.timers:
                        state.timers["nfb:r"].due = T0 + 100 + round_
            await store.save(states.values())
            await asyncio.sleep(0)
        stop.set()

    try:
        await asyncio.gather(write(), read())
    finally:
        await reader.aclose()
    assert snapshots > 0


async def test_cluster_crash_after_the_index_leaves_the_old_state_and_a_superset_index(
    cluster_store: RedisStore, cluster_admin: RedisCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    await cluster_store.save([_full_state("c-1")])
    old = (await cluster_store.load(["c-1"]))["c-1"]
    new = (await cluster_store.load(["c-1"]))["c-1"]
    del new.timers["nfb:r"]
    new.timers["wait:r:e1:2"].due = T0 + 5000  # moved
    new.timers["inactive:r"] = _timer("c-1", "inactive:r", T0 + 10, "nfb")  # added
    new.traits["stage"] = "customer"

    calls = 0
    original = ClusterPipeline.execute

    async def crash_on_second(self: ClusterPipeline, *args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 2:  # the state phase
            await self.reset()
            raise RedisConnectionError("connection lost")
        return await original(self, *args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(ClusterPipeline, "execute", crash_on_second)
        with pytest.raises(RedisConnectionError):
            await cluster_store.save([new])

    stored = (await cluster_store.load(["c-1"]))["c-1"]
    assert stored.to_dict() == old.to_dict()  # the state is the truth, untouched
    index = await _index(cluster_admin, cluster_store)
    for key, due in _indexed(old).items():  # every timer of the state is still found...
        assert key in index
        assert index[key] == due or key == ("c-1", "wait:r:e1:2")
    assert index[("c-1", "inactive:r")] == T0 + 10  # ...and the index holds the new ones too

    # The engine skips what the state does not hold; the store then drops those entries.
    refs = await cluster_store.due_timers(math.inf)
    assert TimerRef(T0 + 10, "c-1", "inactive:r") in refs
    await cluster_store.load(["c-1"])
    refs = await cluster_store.due_timers(math.inf)
    assert {r.timer_id for r in refs} == {"nfb:r", "deliver:a-1"}
    # wait:r:e1:2 lost its entry at T0 + 3600 to the move; the retried save restores it.
    await cluster_store.save([new])
    assert await _index(cluster_admin, cluster_store) == _indexed(new)


async def test_cluster_crash_before_removals_leaves_entries_the_store_cleans_up(
    cluster_store: RedisStore, cluster_admin: RedisCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    await cluster_store.save([_full_state("c-1")])
    state = (await cluster_store.load(["c-1"]))["c-1"]
    del state.timers["nfb:r"]
    calls = 0
    original = ClusterPipeline.execute

    async def crash_on_third(self: ClusterPipeline, *args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 3:  # the removal phase
            await self.reset()
            raise RedisConnectionError("connection lost")
        return await original(self, *args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(ClusterPipeline, "execute", crash_on_third)
        with pytest.raises(RedisConnectionError):
            await cluster_store.save([state])

    assert "nfb:r" not in (await cluster_store.load(["c-1"]))["c-1"].timers
    assert ("c-1", "nfb:r") in await _index(cluster_admin, cluster_store)  # stale
    refs = await cluster_store.due_timers(math.inf)
    assert refs[0] == TimerRef(T0 + 60, "c-1", "nfb:r")
    await cluster_store.load(["c-1"])  # the runner loads it, finds no such timer
    refs = await cluster_store.due_timers(math.inf)
    assert [r.timer_id for r in refs] == ["wait:r:e1:2", "deliver:a-1"]
    assert await _index(cluster_admin, cluster_store) == _indexed(state)


async def test_a_stale_entry_rearmed_meanwhile_is_kept(store: RedisStore, admin: Redis) -> None:
    await store.save([ContactState("c-1", traits={"stage": "lead"})])
    stale = b"c-1\x1fnfb:r"
    shard = store.index_key(partition_for("c-1", PARTITIONS))
    await admin.zadd(shard, {stale: T0})  # left by a crash: the state has no such timer
    assert await store.due_timers(math.inf) == [TimerRef(T0, "c-1", "nfb:r")]
    state = (await store.load(["c-1"]))["c-1"]  # stale, noted for removal
    await admin.zadd(shard, {stale: T0 + 50})  # meanwhile re-armed by another writer
    await store.due_timers(T0 - 1)  # runs the removal: the score changed, so it stays
    assert await admin.zscore(shard, stale) == T0 + 50
    assert state.timers == {}


async def test_a_save_without_a_prior_load_removes_the_dropped_timers(
    redis_url: str, store: RedisStore, admin: Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.save([_full_state("c-1"), _full_state("c-2")])
    fresh = RedisStore.from_url(redis_url, partitions=PARTITIONS, key_prefix=prefix)
    try:
        await _warm(fresh)
        state = _full_state("c-1")
        del state.timers["nfb:r"]
        with watch_wire(monkeypatch) as wire:
            await fresh.save([state])
        assert wire.names()[0] == ["MGET"]  # it reads the stored timers first
        assert wire.round_trips == 2
        assert await _index(admin, fresh) == _indexed(state, _full_state("c-2"))
    finally:
        await fresh.close()


async def test_a_forgotten_contact_is_read_again_before_its_save(
    redis_url: str, admin: Redis, prefix: str
) -> None:
    small = RedisStore.from_url(redis_url, partitions=PARTITIONS, key_prefix=prefix, cache_size=1)
    try:
        await small.save([_full_state("c-1"), _full_state("c-2")])
        states = await small.load(["c-1", "c-2"])  # c-1 is forgotten: the cache holds one
        states["c-1"].timers.clear()
        await small.save([states["c-1"]])
        assert await _index(admin, small) == _indexed(_full_state("c-2"))
    finally:
        await small.close()


async def test_timers_moved_by_a_concurrent_writer_come_back(
    redis_url: str, store: RedisStore, admin: Redis, prefix: str
) -> None:
    """Two writers on one contact (a rebalance): the last state wins, and its timers are all
    indexed, even those the other writer removed."""
    await store.save([_full_state("c-1")])
    other = RedisStore.from_url(redis_url, partitions=PARTITIONS, key_prefix=prefix)
    try:
        mine = (await store.load(["c-1"]))["c-1"]
        theirs = (await other.load(["c-1"]))["c-1"]
        theirs.timers.clear()
        await other.save([theirs])
        mine.traits["stage"] = "customer"
        await store.save([mine])
        index = await _index(admin, store)
        assert index == _indexed(mine)
    finally:
        await other.close()


# ---------------------------------------------------------------------- TTL, deletion


async def test_an_emptied_state_is_deleted(store: RedisStore, admin: Redis) -> None:
    await store.save([_full_state("c-1")])
    await store.save([ContactState("c-1")])
    assert await admin.exists(store.state_key("c-1")) == 0
    assert (await store.load(["c-1"]))["c-1"].is_new
    assert await store.due_timers(math.inf) == []


async def test_state_ttl_applies_to_contacts_without_timers(
    redis_url: str, admin: Redis, prefix: str
) -> None:
    ttl_store = RedisStore.from_url(
        redis_url, partitions=PARTITIONS, key_prefix=prefix, state_ttl=3600
    )
    try:
        quiet = ContactState("c-quiet", traits={"stage": "prospect"})
        busy = _full_state("c-busy")
        await ttl_store.save([quiet, busy])
        assert 3590 <= await admin.ttl(ttl_store.state_key("c-quiet")) <= 3600
        assert await admin.ttl(ttl_store.state_key("c-busy")) == -1  # timers pending
        busy.timers.clear()
        quiet.timers["t"] = _timer("c-quiet", "t", T0)
        await ttl_store.save([quiet, busy])
        assert await admin.ttl(ttl_store.state_key("c-quiet")) == -1
        assert 3590 <= await admin.ttl(ttl_store.state_key("c-busy")) <= 3600
    finally:
        await ttl_store.close()


async def test_cluster_state_ttl(
    redis_cluster: RedisClusterServer, cluster_admin: RedisCluster, prefix: str
) -> None:
    ttl_store = RedisStore.from_url(
        redis_cluster.url, partitions=PARTITIONS, key_prefix=prefix, state_ttl=60, cluster=True
    )
    try:
        await ttl_store.save([ContactState("c-1", traits={"stage": "lead"}), _full_state("c-2")])
        assert 50 <= await cluster_admin.ttl(ttl_store.state_key("c-1")) <= 60
        assert await cluster_admin.ttl(ttl_store.state_key("c-2")) == -1
    finally:
        await ttl_store.close()


# ---------------------------------------------------------------------- errors, config


async def test_a_store_with_another_partition_count_refuses(
    redis_url: str, store: RedisStore, prefix: str
) -> None:
    await store.save([_full_state("c-1")])
    other = RedisStore.from_url(redis_url, partitions=PARTITIONS + 1, key_prefix=prefix)
    try:
        with pytest.raises(StoreConfigError, match=f"built for {PARTITIONS} partitions"):
            await other.due_timers(math.inf)
        # what the worker asks at its start, so that it is refused then (not at a timer)
        with pytest.raises(StoreConfigError, match="another `redis_key_prefix`"):
            await other.check_layout()
        await store.check_layout()  # the same count: fine
    finally:
        await other.close()


async def test_a_corrupt_state_is_reported_with_its_key(store: RedisStore, admin: Redis) -> None:
    await admin.set(store.state_key("c-1"), b"{not json")
    with pytest.raises(StoreDataError, match=r"c-1"):
        await store.load(["c-1"])
    await admin.set(store.state_key("c-1"), b'{"traits": {}}')
    with pytest.raises(StoreDataError, match="not hold a contact state"):
        await store.load(["c-1"])


async def test_contact_ids_with_the_index_separator_are_refused(store: RedisStore) -> None:
    with pytest.raises(ValueError, match="x1f"):
        await store.save([ContactState("c\x1f1", traits={"stage": "lead"})])


async def test_errors_say_which_call_failed(store: RedisStore, admin: Redis) -> None:
    await admin.set(store.index_key(0), b"not a sorted set")
    with pytest.raises(Exception, match="WRONGTYPE") as info:
        await store.due_timers(math.inf, shards=[0])
    assert any("RedisStore.due_timers" in note for note in info.value.__notes__)


def test_options_are_checked() -> None:
    client = Redis()
    with pytest.raises(ValueError, match="partitions"):
        RedisStore(client, partitions=0)
    with pytest.raises(ValueError, match="key_prefix"):
        RedisStore(client, key_prefix="a{b}")
    with pytest.raises(ValueError, match="state_ttl"):
        RedisStore(client, state_ttl=0)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStore(Redis(decode_responses=True))
    with pytest.raises(ValueError, match="cluster="):
        RedisStore.from_url("redis://localhost:6379/0?cluster=maybe")


def test_the_cluster_flag_comes_from_the_url() -> None:
    single = RedisStore.from_url("redis://localhost:6379/0?socket_timeout=5")
    assert not single.cluster
    clustered = RedisStore.from_url("redis://localhost:7000?cluster=true&socket_timeout=5")
    assert clustered.cluster
    assert not RedisStore.from_url("redis://localhost:7000?cluster=true", cluster=False).cluster


async def test_shards_out_of_range_are_refused(store: RedisStore) -> None:
    with pytest.raises(ValueError, match="shard 4"):
        await store.due_timers(math.inf, shards=[4])


async def test_load_of_repeated_ids_and_empty_batches(store: RedisStore) -> None:
    await store.save([])
    assert await store.load([]) == {}
    await store.save([_full_state("c-1")])
    loaded = await store.load(["c-1", "c-1", "c-2"])
    assert list(loaded) == ["c-1", "c-2"]
    assert await store.due_timers(math.inf, limit=0) == []


def test_redis_server_fixture_is_real(redis_server: RedisServer) -> None:
    assert redis_server.running


# ---------------------------------------------------------------------- kept states


@pytest.fixture
async def keeping(redis_url: str, prefix: str, admin: Redis) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(redis_url, partitions=PARTITIONS, key_prefix=prefix, state_cache=3)
    yield s
    await s.close()


async def test_a_kept_state_comes_back_without_being_read_again(
    keeping: RedisStore, store: RedisStore, admin: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _full_state("c-1")
    await store.save([_full_state("c-2")])  # stored by another store: not kept here
    await keeping.save([state])
    decoded: list[bytes] = []
    original = redis_module._decode

    def counting(key: bytes, raw: bytes) -> ContactState:
        decoded.append(key)
        return original(key, raw)

    monkeypatch.setattr(redis_module, "_decode", counting)
    with watch_wire(monkeypatch) as wire:
        loaded = await keeping.load(["c-1", "c-2"])
    assert loaded["c-1"] is state
    assert loaded["c-2"].contact_id == "c-2" and loaded["c-2"].timers
    assert decoded == [keeping.state_key("c-2")]
    assert wire.round_trips == 1
    assert sorted(flatten(wire.names())) == ["EVAL", "MGET"]
    stored = orjson.loads(await admin.get(keeping.state_key("c-1")))
    assert stored.pop("rev")
    assert stored == orjson.loads(orjson.dumps(state.to_dict()))


async def test_a_state_written_elsewhere_is_read_again(
    keeping: RedisStore, redis_url: str, prefix: str
) -> None:
    await keeping.save([_full_state("c-1")])
    other = RedisStore.from_url(redis_url, partitions=PARTITIONS, key_prefix=prefix)
    try:
        theirs = (await other.load(["c-1"]))["c-1"]
        theirs.traits["score"] = 99
        await other.save([theirs])
    finally:
        await other.close()
    mine = (await keeping.load(["c-1"]))["c-1"]
    assert mine.traits["score"] == 99


async def test_a_state_deleted_elsewhere_comes_back_empty(
    keeping: RedisStore, admin: Redis
) -> None:
    await keeping.save([_full_state("c-1")])
    await admin.delete(keeping.state_key("c-1"))
    state = (await keeping.load(["c-1"]))["c-1"]
    assert state == ContactState("c-1")


async def test_a_state_handed_out_and_not_saved_is_read_again(keeping: RedisStore) -> None:
    """A batch that fails half-way leaves its states changed in memory and not saved: the
    next load must not hand out those changes."""
    await keeping.save([_full_state("c-1")])
    state = (await keeping.load(["c-1"]))["c-1"]
    state.traits["score"] = 1234
    again = (await keeping.load(["c-1"]))["c-1"]
    assert again is not state
    assert again.traits.get("score") != 1234


async def test_at_most_state_cache_states_are_kept(keeping: RedisStore) -> None:
    states = [_full_state(f"c-{i}") for i in range(5)]
    await keeping.save(states)
    loaded = await keeping.load([s.contact_id for s in states])
    assert [loaded[s.contact_id] is s for s in states] == [False, False, True, True, True]


async def test_a_cluster_store_keeps_no_states(
    redis_cluster: RedisClusterServer, prefix: str, cluster_admin: RedisCluster
) -> None:
    s = RedisStore.from_url(
        redis_cluster.url, partitions=PARTITIONS, key_prefix=prefix, cluster=True, state_cache=5
    )
    try:
        state = _full_state("c-1")
        await s.save([state])
        assert (await s.load(["c-1"]))["c-1"] is not state
    finally:
        await s.close()
