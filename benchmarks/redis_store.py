"""RedisStore throughput: contacts per second loaded and saved in batches of 1,000.

    python benchmarks/redis_store.py                       # a redis-server started here
    python benchmarks/redis_store.py --url redis://localhost:6379/0
    python benchmarks/redis_store.py --url redis://localhost:7000 --cluster
    python benchmarks/redis_store.py --compare             # also the layouts not chosen

Typical states are real ones: the synthetic shop's events run through the engine with the
rules in rules/ (a median state is about 3 KB of JSON: traits, a week of seen event ids,
firings, windows, two or three timers with their events). Each measured batch is what a
worker does per batch of events: load 1,000 contacts (one round trip), let the engine handle
one event for each (not timed), save them (one round trip). `--compare` runs the same
batches against the layouts that were measured and not chosen: a hash per contact with one
field per part of the state (HGETALL / HSET of the changed parts), and one string per
contact read and written with a GET / SET per key instead of MGET / MSET. The machine and
the command are printed with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import shlex
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version

import orjson
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from nudge.devservers import RedisServer
from nudge.dsl import load_ruleset
from nudge.engine.engine import Engine
from nudge.engine.events import Event, event_from_dict
from nudge.engine.state import ContactState
from nudge.engine.stores.redis import RedisStore
from nudge.engine.synthetic import generate

Batch = dict[str, Event]  # contact id -> the event it handles in this batch
Load = Callable[[list[str]], Awaitable[dict[str, ContactState]]]
Save = Callable[[Iterable[ContactState]], Awaitable[None]]


def build(
    contacts: int, events: int, batch: int, rules: str
) -> tuple[Engine, list[ContactState], list[Batch]]:
    """States after most of the events, and batches of distinct contacts with their next event."""
    result = load_ruleset([rules])
    if result.ruleset is None:
        raise SystemExit(f"the rules in {rules} do not compile")
    engine = Engine(result.ruleset)
    evs = [
        e for e in map(event_from_dict, generate(contacts, events, seed=1)) if isinstance(e, Event)
    ]
    cut = len(evs) * 3 // 4
    states: dict[str, ContactState] = {}
    for e in evs[:cut]:
        state = states.get(e.contact_id)
        if state is None:
            state = states[e.contact_id] = ContactState(e.contact_id)
        merge = states.get(e.anonymous_id) if e.anonymous_id else None
        engine.handle(e, state, e.ts, merge)
    batches: list[Batch] = []
    current: Batch = {}
    for e in evs[cut:]:
        if e.contact_id in states and e.contact_id not in current and e.anonymous_id is None:
            current[e.contact_id] = e
            if len(current) == batch:
                batches.append(current)
                current = {}
    return engine, list(states.values()), batches


async def measure(
    name: str, engine: Engine, batches: list[Batch], load: Load, save: Save
) -> tuple[float, float]:
    """Contacts per second for load and for save over all batches."""
    loading = saving = 0.0
    count = 0
    for batch in batches:
        t0 = time.perf_counter()
        states = await load(list(batch))
        t1 = time.perf_counter()
        for cid, event in batch.items():
            engine.handle(event, states[cid], event.ts)
        t2 = time.perf_counter()
        await save(states.values())
        t3 = time.perf_counter()
        loading += t1 - t0
        saving += t3 - t2
        count += len(batch)
    load_rate, save_rate = count / loading, count / saving
    both = count / (loading + saving)
    print(
        f"{name:34s} load {load_rate:9,.0f}/s  save {save_rate:9,.0f}/s  "
        f"load+save {both:9,.0f} contacts/s  ({len(batches)} batches of {len(batches[0]):,})"
    )
    return load_rate, save_rate


def codec(states: Sequence[ContactState]) -> None:
    """The part of load and save that is not Redis: JSON to `ContactState` and back."""
    t0 = time.perf_counter()
    blobs = [s.to_json() for s in states]
    t1 = time.perf_counter()
    with paused_gc():
        for blob in blobs:
            ContactState.from_dict(orjson.loads(blob))
    t2 = time.perf_counter()
    n = len(states)
    print(
        f"{'of which JSON <-> ContactState':34s} decode {n / (t2 - t1):7,.0f}/s  "
        f"encode {n / (t1 - t0):9,.0f}/s"
    )


async def populate(save: Save, states: Sequence[ContactState], batch: int) -> None:
    for i in range(0, len(states), batch):
        await save(states[i : i + batch])


@contextmanager
def paused_gc() -> Iterator[None]:
    """As RedisStore.load decodes: with the cyclic collector paused."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class HashLayout:
    """The layout not chosen: a hash per contact, one field per part of `to_dict()`, only the
    changed parts rewritten (the loaded bytes are kept to compare)."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.loaded: dict[str, dict[str, bytes]] = {}

    def key(self, cid: str) -> str:
        return f"{self.prefix}:{{{cid}}}:h"

    async def load(self, ids: list[str]) -> dict[str, ContactState]:
        pipe = self.client.pipeline(transaction=False)
        for cid in ids:
            pipe.hgetall(self.key(cid))
        out = {}
        rows = await pipe.execute()
        with paused_gc():
            for cid, fields in zip(ids, rows, strict=True):
                parts = {k.decode(): v for k, v in fields.items()}
                self.loaded[cid] = parts
                data = {k: orjson.loads(v) for k, v in parts.items() if v}
                data["contact_id"] = cid
                out[cid] = ContactState.from_dict(data)
        return out

    async def save(self, states: Iterable[ContactState]) -> None:
        pipe = self.client.pipeline(transaction=True)
        for state in states:
            before = self.loaded.pop(state.contact_id, {})
            changed = {}
            for name, value in state.to_dict().items():
                if name != "contact_id":
                    blob = orjson.dumps(value) if value else b""
                    if before.get(name, b"") != blob:
                        changed[name] = blob
            if changed:
                pipe.hset(self.key(state.contact_id), mapping=changed)
        await pipe.execute()


class KeyPerCommand:
    """One string per contact like RedisStore, but a GET / SET per key in a pipeline."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def key(self, cid: str) -> str:
        return f"{self.prefix}:{{{cid}}}:s"

    async def load(self, ids: list[str]) -> dict[str, ContactState]:
        pipe = self.client.pipeline(transaction=False)
        for cid in ids:
            pipe.get(self.key(cid))
        raws = await pipe.execute()
        with paused_gc():
            return {
                cid: ContactState(cid) if raw is None else ContactState.from_dict(orjson.loads(raw))
                for cid, raw in zip(ids, raws, strict=True)
            }

    async def save(self, states: Iterable[ContactState]) -> None:
        pipe = self.client.pipeline(transaction=True)
        for state in states:
            pipe.set(self.key(state.contact_id), state.to_json())
        await pipe.execute()


async def memory_per_contact(
    client: Redis, store: RedisStore, states: Sequence[ContactState]
) -> str:
    sample = states[:: max(1, len(states) // 500)]
    state_bytes = [await client.memory_usage(store.state_key(s.contact_id)) or 0 for s in sample]
    json_bytes = [len(s.to_json()) for s in sample]
    index_bytes = 0
    entries = 0
    for shard in range(store.partitions):
        index_bytes += await client.memory_usage(store.index_key(shard), samples=0) or 0
        entries += await client.zcard(store.index_key(shard))
    return (
        f"state JSON median {statistics.median(json_bytes):,.0f} B (p90 "
        f"{sorted(json_bytes)[len(json_bytes) * 9 // 10]:,} B); state key in Redis median "
        f"{statistics.median(state_bytes):,.0f} B; timer index {entries:,} entries, "
        f"{index_bytes / max(entries, 1):,.0f} B each, "
        f"{entries / len(states):.1f} timers per contact"
    )


async def run(args: argparse.Namespace, url: str) -> None:
    engine, states, batches = build(args.contacts, args.events, args.batch, args.rules)
    batches = batches[: args.batches]
    # The states built here stay in memory (a worker holds none but its batch): keep the
    # collector from walking them again and again.
    gc.freeze()
    print(f"states: {len(states):,} contacts; {len(batches)} measured batches of {args.batch:,}")
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    store = RedisStore.from_url(
        url, partitions=args.partitions, key_prefix=prefix, cluster=args.cluster
    )
    admin = Redis.from_url(url)
    server = await admin.info("server")
    print(f"redis: {server['redis_version']} at {url}")
    try:
        used = 0 if args.cluster else (await admin.info("memory"))["used_memory"]
        t0 = time.perf_counter()
        await populate(store.save, states, args.batch)
        elapsed = time.perf_counter() - t0
        print(f"{'RedisStore: first save':34s} save {len(states) / elapsed:9,.0f}/s")
        if not args.cluster:
            used = (await admin.info("memory"))["used_memory"] - used
            print(f"memory: {used / len(states):,.0f} B of Redis memory per contact (used_memory)")
            print("memory: " + await memory_per_contact(admin, store, states))
        codec(states[: args.batch * len(batches)])
        # The engine mutates states in place: every layout starts from its own stored copy.
        label = (
            "RedisStore (cluster, GET/SET)" if args.cluster else "RedisStore (string, MGET/MSET)"
        )
        await measure(label, engine, batches, store.load, store.save)
        if not args.cluster:  # a worker's case: the states it saved itself, kept in memory
            keeping = RedisStore.from_url(
                url, partitions=args.partitions, key_prefix=prefix, state_cache=len(states)
            )
            try:
                await populate(keeping.save, states, args.batch)
                await measure("RedisStore, states kept in memory", engine, batches,
                              keeping.load, keeping.save)  # fmt: skip
            finally:
                await keeping.close()
        if args.compare and not args.cluster:
            per_key = KeyPerCommand(admin, prefix)
            await populate(per_key.save, states, args.batch)
            await measure("string, GET/SET per key", engine, batches, per_key.load, per_key.save)
            hashes = HashLayout(admin, prefix)
            await populate(hashes.save, states, args.batch)
            await measure("hash of parts, HGETALL/HSET", engine, batches, hashes.load, hashes.save)
    finally:
        await store.close()
        await drop_keys(url, prefix, cluster=args.cluster)
        await admin.aclose()


async def drop_keys(url: str, prefix: str, *, cluster: bool) -> None:
    client = RedisCluster.from_url(url) if cluster else Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        for i in range(0, len(keys), 1000):
            pipe = client.pipeline(transaction=False)
            for key in keys[i : i + 1000]:
                pipe.delete(key)
            await pipe.execute()
    finally:
        await client.aclose()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for row in f:
                if row.startswith("model name"):
                    cpu = row.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import hiredis  # noqa: F401

        parser = "hiredis"
    except ImportError:
        parser = "pure-Python parser"
    return (
        f"{cpu}, {os.cpu_count()} cpus; {platform.system()} {platform.release()}; "
        f"{platform.python_implementation()} {platform.python_version()}; "
        f"redis-py {version('redis')} ({parser}), orjson {version('orjson')}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", help="a Redis to use (default: start a redis-server here)")
    parser.add_argument("--cluster", action="store_true", help="--url is a Redis Cluster node")
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=20, help="measured batches at most")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--rules", default="rules/")
    parser.add_argument("--compare", action="store_true", help="also the layouts not chosen")
    args = parser.parse_args(argv)

    print(f"command: python {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(f"machine: {machine()}")
    if args.url is not None:
        asyncio.run(run(args, args.url))
        return 0
    with RedisServer() as server:
        asyncio.run(run(args, server.url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
