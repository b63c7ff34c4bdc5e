"""RedisStore: contact states and the timer index in Redis (single node or Redis Cluster).

    store = RedisStore.from_url("redis://localhost:6379/0", partitions=12)
    states = await store.load(["c-42", "a-7"])   # one round trip
    ...                                          # the engine mutates the states
    await store.save(states.values())            # one round trip (single node)
    await store.close()

Key layout (`key_prefix` "nudge" by default; it lets tests and tenants share one Redis):

- `nudge:{<contact_id>}:state`: a string, the contact's `ContactState.to_json()` (the JSON
  of `to_dict()`). Generic over `to_dict()`/`from_dict()`: a field added to `ContactState`
  needs no change here. Every key of one contact carries the hash tag `{<contact_id>}`, so
  they share a Cluster slot (the delivery ledger's `nudge:{<contact_id>}:sent:<action_id>` too).
- `nudge:timers:{<shard>}`: a sorted set per shard (the Kafka partition of the contact id),
  score = due time (epoch seconds), member = `<contact_id>\\x1f<timer_id>`.
- `nudge:id:{<event_id>}`: a string, `<contact_id>\\x1f<event time>`: who claimed the event
  id and when (`claim_ids`), expiring after the de-duplication window: an id is unique across
  contacts, and another contact's event with it within the window is a duplicate. Its own
  hash tag: one key per command.
- `nudge:meta`: a hash, `partitions` = the shard count the index was built with; a store
  opened with another count refuses to work (its timers would be looked for in the wrong
  shards).

One string per contact rather than a hash of parts: measured with redis-py (no hiredis),
reading 1,000 hashes of 11 fields takes 5 to 10 times the client time of one MGET of 1,000
strings (batch loads, decoding included, are about 3 times as fast), and a typical event
changes most of the bytes anyway: the parts it touches (`seen`, `traits`, `last_inbound`,
`timers`) hold about 85% of a state. Figures in docs/state.md, `benchmarks/redis_store.py`.

What is atomic:

- Single node (the default): a whole `save` batch is one MULTI/EXEC transaction: the index
  entries of the batch's timers (ZADD), the states (MSET, SET with a TTL, DEL), then the
  removal of dropped timers from the index (ZREM). Readers never see a state without its
  index entries, nor half a batch.
- Cluster (`cluster=True`, or `?cluster=true` in the URL): a contact's keys share a slot but
  the shard indexes live in other slots, so a save runs in up to three pipelined phases,
  each one round trip to every node involved: (1) ZADD every timer of every saved state,
  (2) write each state with one single-key command (SET or DEL, atomic by itself), (3) ZREM
  the dropped timers. The state is the truth and the index a superset of it: a crash between
  phases leaves index entries whose timer is gone or due at another time (the engine skips
  them when it loads the contact: `Engine.fire` checks id and due), never a timer without
  its entry. Adding before writing the state matters: were the state written first, a
  crash before the ZADD would leave the event marked seen, its reprocessing a duplicate that
  saves nothing, and the timer unindexed for ever.
- `load` reads each state with one command (MGET on a single node: one consistent
  snapshot of the batch; GET per key on a cluster).

Kept states (`state_cache`, single node): a saved state stays in memory and is written with
a revision unique to this store as its first field (`{"rev":"<revision>",...`). A later load
reads it back only if Redis holds something else by then (one EVAL beside the MGET, same
round trip); otherwise the kept object is handed out again, undecoded. Handed out, it leaves
the memory until saved again, so a batch that failed half-way never leaks its changes.

The index is kept exact without reading it: the store remembers, for each contact it loaded
or saved (up to `cache_size` contacts), which timers the index holds for it, so a save knows
which entries to remove. A state saved without that knowledge (never loaded here, or
forgotten) costs one extra round trip that reads its stored timers first. Every save
re-adds all of the contact's current timers (ZADD is idempotent), so an index entry removed
by a concurrent writer comes back with the next save. Index entries that turn out stale
(handed out by `due_timers`, then not found in the loaded state) are removed with the next
save or `due_timers` call, only if their due time is still the stale one.

TTL: by default states never expire. With `state_ttl`, a contact with no pending timer
expires that many seconds after its last save (an anonymous visitor who never returns);
a contact with timers never expires while they are pending. The engine prunes its
de-duplication memory inside the state; a state with nothing in it is deleted.
"""

from __future__ import annotations

import gc
import itertools
import math
import os
from collections.abc import Awaitable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster

from ..events import Event
from ..partitioning import partition_for
from ..state import ContactState, Timer, TimerRef, TimerSummary

__all__ = [
    "PreparedSave",
    "RedisStore",
    "StoreConfigError",
    "StoreDataError",
    "client_from_url",
    "pooled_client",
]

SEP = "\x1f"
_SEP = SEP.encode()
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

# Remove members of one sorted set whose score is still the given one (ARGV: member, score,
# member, score, ...). A timer re-armed since it was found stale keeps its entry.
_REMOVE_IF_SCORE = """
local removed = 0
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
"""


# Read states kept in memory only when they changed (KEYS: state keys; ARGV: the start of
# each as last written here, its revision). 0: unchanged; nil: gone; else the new value.
_READ_IF_CHANGED = """
local out = {}
for i = 1, #KEYS do
  local value = redis.call('GET', KEYS[i])
  if not value then
    out[i] = false
  elseif string.sub(value, 1, #ARGV[i]) == ARGV[i] then
    out[i] = 0
  else
    out[i] = value
  end
end
return out
"""
_REV_HEAD = b'{"rev":"'

# Claim event ids (`claim_ids` on a single node): returns the 0-based positions of the ids
# another contact holds. A claim's value is `<contact id>\x1f<event time>`. One argument holds
# every claim as JSON ([[event id, contact id, event time], ...]) and the script builds the keys
# (ARGV: the key prefix, the TTL in seconds, the claims): packing 10,000 arguments costs the
# client more than the script takes to run. A single node does not need the keys declared; a
# cluster takes pipelined commands instead (`claim_ids`).
_CLAIM = """
local foreign = {}
local ttl = tonumber(ARGV[2])
local claims = cjson.decode(ARGV[3])
for i, claim in ipairs(claims) do
  local key = ARGV[1] .. ':id:{' .. claim[1] .. '}'
  local value = claim[2] .. '\31' .. string.format('%.6f', claim[3])
  local held = redis.call('GET', key)
  if not held then
    redis.call('SET', key, value, 'EX', ttl)
  else
    local owner, at = string.match(held, '^(.*)\31([^\31]*)$')
    if owner ~= claim[2] then
      if claim[3] - tonumber(at) > ttl then
        redis.call('SET', key, value, 'EX', ttl)
      else
        foreign[#foreign + 1] = i - 1
      end
    end
  end
end
return foreign
"""


class StoreConfigError(ValueError):
    """The store's configuration does not fit the data already in Redis."""


class StoreDataError(ValueError):
    """A stored state cannot be read back."""


@dataclass(slots=True)
class PreparedSave:
    """States encoded by `RedisStore.prepare`, for `RedisStore.write`."""

    batch: dict[str, ContactState]
    indexed: dict[str, dict[str, float]] = field(default_factory=dict)  # timer id -> due
    persistent: dict[bytes, bytes] = field(default_factory=dict)  # no TTL: MSET / SET
    expiring: dict[bytes, bytes] = field(default_factory=dict)  # SET PX state_ttl
    deleted: list[bytes] = field(default_factory=list)
    revisions: dict[str, bytes] = field(default_factory=dict)


class RedisStore:
    """The production `ContactStore`, on redis-py's asyncio client.

    - `client`: a `Redis` (a single node, or a Sentinel-managed primary) or a `RedisCluster`,
      with `decode_responses` off. `close()` closes it only with `owns_client` (as
      `from_url` does).
    - `partitions`: the events topic's partition count (the timer index's shards).
    - `key_prefix`: the first part of every key.
    - `state_ttl`: seconds after its last save when a contact without timers expires; None
      (the default) keeps states for ever.
    - `cache_size`: how many contacts' indexed timers to remember between load and save.
    - `state_cache`: how many saved states to keep in memory (single node only; 0: none).
      A kept state is handed out again by `load` when Redis still holds the revision this
      store wrote, so it is neither sent nor decoded again.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        partitions: int = 8,
        key_prefix: str = "nudge",
        state_ttl: float | None = None,
        cache_size: int = 100_000,
        state_cache: int = 0,
        owns_client: bool = False,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        if not key_prefix or "{" in key_prefix or "}" in key_prefix:
            raise ValueError(f"key_prefix must be non-empty without braces, got {key_prefix!r}")
        if state_cache < 0:
            raise ValueError(f"state_cache must be 0 or more, got {state_cache}")
        if state_ttl is not None and state_ttl <= 0:
            raise ValueError(f"state_ttl must be positive seconds or None, got {state_ttl}")
        if client.get_encoder().decode_responses:
            raise ValueError("the Redis client must return bytes: decode_responses=False")
        self.partitions = partitions
        self.key_prefix = key_prefix
        self.state_ttl = state_ttl
        self.cache_size = max(cache_size, 1)
        self.cluster = isinstance(client, RedisCluster)
        self._redis = client
        self._owns_client = owns_client
        self._state_head = f"{key_prefix}:{{".encode()
        self._index_keys = [f"{key_prefix}:timers:{{{s}}}".encode() for s in range(partitions)]
        self._meta_key = f"{key_prefix}:meta".encode()
        self._meta_checked = False
        self._meta_written = False
        # contact id -> {timer id: due} the index holds for it (as last loaded or saved).
        self._known: dict[str, dict[str, float]] = {}
        # contact id -> {timer id: due} handed out by due_timers, checked when it is loaded.
        self._handed: dict[str, dict[str, float]] = {}
        # shard -> {member: due} of index entries found stale, removed with the next call.
        self._stale: dict[int, dict[bytes, float]] = {}
        self._shard_of: dict[str, int] = {}
        # contact id -> (state, the start of its stored value: `{"rev":"<revision>"`), for
        # states saved here and not handed out since. Revisions are unique to this store.
        self.state_cache = 0 if self.cluster else state_cache
        self._cached: dict[str, tuple[ContactState, bytes]] = {}
        self._rev_base = os.urandom(6).hex()
        self._claim = client.register_script(_CLAIM)  # EVALSHA: the script is sent once
        self._rev_next = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        partitions: int = 8,
        key_prefix: str = "nudge",
        state_ttl: float | None = None,
        cluster: bool | None = None,
        cache_size: int = 100_000,
        state_cache: int = 0,
        **options: Any,
    ) -> RedisStore:
        """A store on a new client for `url` (`redis://`, `rediss://`, `unix://`).

        `cluster` None reads the URL's `cluster` query parameter (`?cluster=true`); other
        options go to redis-py. Responses are always bytes (`decode_responses` is forced off).
        """
        options["decode_responses"] = False
        client = client_from_url(url, cluster=cluster, **options)
        return cls(
            client,
            partitions=partitions,
            key_prefix=key_prefix,
            state_ttl=state_ttl,
            cache_size=cache_size,
            state_cache=state_cache,
            owns_client=True,
        )

    # ------------------------------------------------------------------ keys

    def state_key(self, contact_id: str) -> bytes:
        """`<prefix>:{<contact_id>}:state`."""
        return self._state_head + contact_id.encode() + b"}:state"

    def id_key(self, event_id: str) -> bytes:
        """`<prefix>:id:{<event_id>}`."""
        return f"{self.key_prefix}:id:{{{event_id}}}".encode()

    def index_key(self, shard: int) -> bytes:
        """`<prefix>:timers:{<shard>}`."""
        return self._index_keys[shard]

    def shard(self, contact_id: str) -> int:
        shard = self._shard_of.get(contact_id)
        if shard is None:
            if len(self._shard_of) >= 4 * self.cache_size:
                self._shard_of.clear()
            shard = self._shard_of[contact_id] = partition_for(contact_id, self.partitions)
        return shard

    # ------------------------------------------------------------------ ContactStore

    async def load(self, contact_ids: Collection[str]) -> dict[str, ContactState]:
        ids = list(dict.fromkeys(contact_ids))
        if not ids:
            return {}
        await self._check_meta()
        keys = [self.state_key(cid) for cid in ids]
        kept: dict[str, ContactState] = {}
        try:
            if self._cached:
                raws = await self._read_kept(ids, keys, kept)
            else:
                raws = await self._read(keys)
        except Exception as exc:
            exc.add_note(f"RedisStore.load of {len(ids)} contacts ({self.key_prefix!r})")
            raise
        # Decoding a batch allocates many small, acyclic objects: with the collector on, the
        # burst sets off collections that walk the whole heap (measured: 2-3x slower loads).
        paused = gc.isenabled()
        gc.disable()
        try:
            out: dict[str, ContactState] = {}
            for cid, key, raw in zip(ids, keys, raws, strict=True):
                state = kept.get(cid)
                if state is None:
                    state = ContactState(cid) if raw is None else _decode(key, raw)
                    indexed = {tid: t.due for tid, t in state.timers.items()}
                    self._remember(cid, indexed)
                else:  # as saved here: what the index holds for it is known already
                    indexed = self._known.get(cid) or {}
                out[cid] = state
                handed = self._handed.pop(cid, None)
                if handed:
                    self._note_stale(cid, handed, indexed)
        finally:
            if paused:
                gc.enable()
        self._forget_oldest()
        return out

    async def save(
        self,
        states: Iterable[ContactState],
        after: Awaitable[object] | None = None,
        armed: Iterable[Timer] | None = None,
    ) -> None:
        """`write(prepare(states), after)`; the index follows each state's timers (`armed`
        is not needed)."""
        await self.write(self.prepare(states), after)

    def prepare(self, states: Iterable[ContactState]) -> PreparedSave:
        """The first half of `save`: the states encoded now, as they are at this moment (so
        they may change again before `write`). Nothing is sent."""
        batch = {state.contact_id: state for state in states}
        for cid in batch:
            if SEP in cid:
                raise ValueError(f"contact id {cid!r} contains \\x1f, the index separator")
        prepared = PreparedSave(batch)
        ttl = self.state_ttl
        caching = self.state_cache > 0
        cached = self._cached
        for cid, state in batch.items():
            key = self.state_key(cid)
            timers = state.timers
            prepared.indexed[cid] = {tid: t.due for tid, t in timers.items()}
            cached.pop(cid, None)
            if state.holds_anything():
                blob = state.to_json()
                if caching:  # `{"rev":"<revision>",` + the state's own fields
                    start = _REV_HEAD + f"{self._rev_base}{self._rev_next:x}".encode() + b'"'
                    self._rev_next += 1
                    blob = start + b"," + blob[1:]
                    prepared.revisions[cid] = start
                if ttl is None or timers:
                    prepared.persistent[key] = blob
                else:
                    prepared.expiring[key] = blob
            else:
                prepared.deleted.append(key)
        return prepared

    async def write(self, prepared: PreparedSave, after: Awaitable[object] | None = None) -> None:
        """The second half of `save`: once `after` is done, write what `prepare` encoded,
        with the timer index brought up to date. Writing the same `PreparedSave` again (after
        an error) writes the same."""
        batch = prepared.batch
        if not batch:
            if after is not None:
                await after
            return
        await self._check_meta()
        known = self._known
        if after is not None:
            await after
        unknown = [cid for cid in batch if cid not in known]
        previous = await self._stored_timers(unknown) if unknown else {}
        adds: dict[int, dict[bytes, float]] = {}
        drops: dict[int, list[bytes]] = {}
        now_indexed = prepared.indexed
        for cid, indexed in now_indexed.items():
            before = known.get(cid)
            if before is None:
                before = previous.get(cid, {})
            if not indexed and not before:
                continue
            shard = self.shard(cid)
            head = cid + SEP
            if indexed:
                members = adds.setdefault(shard, {})
                for tid, due in indexed.items():
                    members[(head + tid).encode()] = due
            gone = [(head + tid).encode() for tid in before if tid not in indexed]
            if gone:
                drops.setdefault(shard, []).extend(gone)
        persistent, expiring, deleted = prepared.persistent, prepared.expiring, prepared.deleted
        try:
            if self.cluster:
                await self._save_cluster(adds, persistent, expiring, deleted, drops)
            else:
                await self._save_single(adds, persistent, expiring, deleted, drops)
        except BaseException as exc:
            for cid in batch:  # unsure what the index holds now: read it next time
                known.pop(cid, None)
            if isinstance(exc, Exception):
                exc.add_note(f"RedisStore.save of {len(batch)} contacts ({self.key_prefix!r})")
            raise
        for cid, indexed in now_indexed.items():
            self._remember(cid, indexed)
        self._forget_oldest()
        if prepared.revisions:
            self._keep(batch, prepared.revisions)

    async def due_timers(
        self, now: float, shards: Collection[int] | None = None, limit: int = 1000
    ) -> list[TimerRef]:
        chosen = self._shards(shards)
        if limit <= 0 or not chosen:
            return []
        await self._check_meta()
        pipe = self._redis.pipeline(transaction=False)
        cleanup = self._queue_cleanup(pipe)
        for shard in chosen:
            pipe.zrangebyscore(
                self._index_keys[shard], "-inf", now, start=0, num=limit, withscores=True
            )
        try:
            results = await pipe.execute()
        except Exception as exc:
            exc.add_note(f"RedisStore.due_timers of {len(chosen)} shards ({self.key_prefix!r})")
            raise
        found: list[TimerRef] = []
        for rows in results[cleanup:]:
            for member, score in rows:
                cid, _, tid = bytes(member).partition(_SEP)
                found.append(TimerRef(float(score), cid.decode(), tid.decode()))
        found.sort()
        del found[limit:]
        self._hand_out(found)
        return found

    async def timer_summary(self, shards: Collection[int] | None = None) -> TimerSummary:
        chosen = self._shards(shards)
        if not chosen:
            return TimerSummary(0, None)
        await self._check_meta()
        pipe = self._redis.pipeline(transaction=False)
        for shard in chosen:
            key = self._index_keys[shard]
            pipe.zcard(key)
            pipe.zrange(key, 0, 0, withscores=True)
        results = await pipe.execute()
        pending = 0
        next_due: float | None = None
        for i in range(0, len(results), 2):
            pending += int(results[i])
            for _, score in results[i + 1]:
                due = float(score)
                if next_due is None or due < next_due:
                    next_due = due
        return TimerSummary(pending, next_due)

    async def claim_ids(self, events: Sequence[Event], ttl: float, now: float) -> set[int]:
        """One script on a single node (`_CLAIM`); on a cluster (ids in many slots) a
        pipelined `SET NX` per id, a `GET` of each id that was held already, and a `SET` of
        each one taken over."""
        if not events:
            return set()
        seconds = max(1, math.ceil(ttl))
        if not self.cluster:
            claims = orjson.dumps([(e.id, e.contact_id, e.ts) for e in events])
            reply = await self._claim(keys=[], args=[self.key_prefix, seconds, claims])
            return {int(i) for i in reply}
        # A cluster: the ids live in many slots. Claims by SET NX, then a look at those held.
        keys = [self.id_key(e.id) for e in events]
        values = [f"{e.contact_id}\x1f{e.ts:.6f}" for e in events]
        pipe = self._redis.pipeline(transaction=False)
        for key, value in zip(keys, values, strict=True):
            pipe.set(key, value, nx=True, ex=seconds)
        held = [i for i, ok in enumerate(await pipe.execute()) if not ok]
        if not held:
            return set()
        pipe = self._redis.pipeline(transaction=False)
        for i in held:
            pipe.get(keys[i])
        foreign: set[int] = set()
        retake = self._redis.pipeline(transaction=False)
        taken: dict[bytes, tuple[str, float]] = {}  # ids taken over so far in this batch
        for i, raw in zip(held, await pipe.execute(), strict=True):
            e = events[i]
            if keys[i] in taken:
                owner, at = taken[keys[i]]
            elif raw is None:
                continue  # expired meanwhile: nobody's
            else:
                text, _, stamp = raw.decode().rpartition("\x1f")
                owner, at = text, float(stamp)
            if owner == e.contact_id:
                continue
            if e.ts - at > ttl:  # long ago: the id is free again
                retake.set(keys[i], values[i], ex=seconds)
                taken[keys[i]] = (e.contact_id, e.ts)
            else:
                foreign.add(i)
        if len(retake):
            await retake.execute()
        return foreign

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()

    # ------------------------------------------------------------------ internals

    async def _read(self, keys: list[bytes]) -> list[bytes | None]:
        """The values of `keys`, in one round trip (one MGET, or a GET per key on a cluster)."""
        if not self.cluster:
            # decode_responses is off: values are bytes or None (redis-py types them wider).
            return cast("list[bytes | None]", await self._redis.mget(keys))
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        return list(await pipe.execute())

    async def _read_kept(
        self, ids: list[str], keys: list[bytes], kept: dict[str, ContactState]
    ) -> list[bytes | None]:
        """`_read`, but states kept in memory are only read back when Redis holds another
        revision (written elsewhere: another worker, a merge across partitions). One round
        trip. Kept states that are still current go to `kept` (and leave the cache: the
        caller changes them; `save` keeps them again)."""
        cached = self._cached
        mine = [i for i, cid in enumerate(ids) if cid in cached]
        if not mine:
            return await self._read(keys)
        others = [i for i, cid in enumerate(ids) if cid not in cached]
        pipe = self._redis.pipeline(transaction=False)
        if others:
            pipe.mget([keys[i] for i in others])
        heads = [cached[ids[i]][1] for i in mine]
        pipe.eval(_READ_IF_CHANGED, len(mine), *[keys[i] for i in mine], *heads)
        results = await pipe.execute()
        raws: list[bytes | None] = [None] * len(ids)
        if others:
            for i, raw in zip(others, results[0], strict=True):
                raws[i] = raw
        for i, reply in zip(mine, results[-1], strict=True):
            state, _ = cached.pop(ids[i])
            if reply == 0:
                kept[ids[i]] = state
            else:
                raws[i] = reply
        return raws

    def _keep(self, batch: dict[str, ContactState], revisions: dict[str, bytes]) -> None:
        """Keep the states just written, the oldest kept going first beyond `state_cache`."""
        cached = self._cached
        for cid, start in revisions.items():
            cached[cid] = (batch[cid], start)
        _drop_oldest(cached, self.state_cache)

    async def _stored_timers(self, contact_ids: list[str]) -> dict[str, dict[str, float]]:
        """{timer id: due} of the stored states of contacts this store knows nothing of."""
        keys = [self.state_key(cid) for cid in contact_ids]
        out: dict[str, dict[str, float]] = {}
        for cid, key, raw in zip(contact_ids, keys, await self._read(keys), strict=True):
            if raw is not None:
                timers = _decode_json(key, raw).get("timers") or {}
                out[cid] = {tid: float(t["due"]) for tid, t in timers.items()}
        return out

    async def _save_single(
        self,
        adds: dict[int, dict[bytes, float]],
        persistent: dict[bytes, bytes],
        expiring: dict[bytes, bytes],
        deleted: list[bytes],
        drops: dict[int, list[bytes]],
    ) -> None:
        """The whole batch as one MULTI/EXEC: index entries, states, then index removals."""
        pipe = self._redis.pipeline(transaction=True)
        self._queue_cleanup(pipe)
        self._queue_meta(pipe)
        for shard, members in adds.items():
            pipe.zadd(self._index_keys[shard], members)
        if persistent:
            pipe.mset(persistent)
        self._queue_expiring(pipe, expiring)
        if deleted:
            pipe.delete(*deleted)
        for shard, gone in drops.items():
            pipe.zrem(self._index_keys[shard], *gone)
        await pipe.execute()
        self._meta_written = True

    async def _save_cluster(
        self,
        adds: dict[int, dict[bytes, float]],
        persistent: dict[bytes, bytes],
        expiring: dict[bytes, bytes],
        deleted: list[bytes],
        drops: dict[int, list[bytes]],
    ) -> None:
        """Index entries first, then each state in one single-key command, then removals."""
        redis = self._redis
        pipe = redis.pipeline(transaction=False)
        queued = self._queue_cleanup(pipe) + self._queue_meta(pipe)
        for shard, members in adds.items():
            pipe.zadd(self._index_keys[shard], members)
            queued += 1
        if queued:
            await pipe.execute()
            self._meta_written = True
        pipe = redis.pipeline(transaction=False)
        for key, blob in persistent.items():
            pipe.set(key, blob)
        self._queue_expiring(pipe, expiring)
        for key in deleted:
            pipe.delete(key)
        await pipe.execute()
        if drops:
            pipe = redis.pipeline(transaction=False)
            for shard, gone in drops.items():
                pipe.zrem(self._index_keys[shard], *gone)
            await pipe.execute()

    def _queue_expiring(self, pipe: Any, expiring: dict[bytes, bytes]) -> None:
        if expiring:
            ttl_ms = max(1, round((self.state_ttl or 0) * 1000))
            for key, blob in expiring.items():
                pipe.set(key, blob, px=ttl_ms)

    def _queue_meta(self, pipe: Any) -> int:
        if self._meta_written:
            return 0
        pipe.hsetnx(self._meta_key, "partitions", str(self.partitions))
        return 1

    async def check_layout(self) -> None:
        """Refuse, now rather than at the first timer, an index built for another partition
        count (`StoreConfigError`)."""
        await self._check_meta()

    async def _check_meta(self) -> None:
        """Once per store: refuse an index built for another partition count."""
        if self._meta_checked:
            return
        stored = await self._redis.hget(self._meta_key, "partitions")
        if stored is not None and int(stored) != self.partitions:
            raise StoreConfigError(
                f"the timer index under {self.key_prefix!r} was built for {int(stored)} "
                f"partitions, this store has {self.partitions}: use the same count (the "
                "Kafka topic's partitions, the `partitions` setting) or another "
                "`redis_key_prefix`"
            )
        self._meta_checked = True
        self._meta_written = stored is not None

    def _shards(self, shards: Collection[int] | None) -> list[int]:
        if shards is None:
            return list(range(self.partitions))
        chosen = sorted(set(shards))
        for shard in chosen:
            if not 0 <= shard < self.partitions:
                raise ValueError(f"shard {shard} is outside 0..{self.partitions - 1}")
        return chosen

    def _remember(self, contact_id: str, indexed: dict[str, float]) -> None:
        """Note what the index holds for a contact (trimmed once per batch by
        `_forget_oldest`: trimming per contact walked the whole map each time)."""
        known = self._known
        known.pop(contact_id, None)
        known[contact_id] = indexed

    def _forget_oldest(self) -> None:
        _drop_oldest(self._known, self.cache_size)

    def _hand_out(self, refs: list[TimerRef]) -> None:
        handed = self._handed
        for ref in refs:
            handed.setdefault(ref.contact_id, {})[ref.timer_id] = ref.due
        _drop_oldest(handed, self.cache_size)

    def _note_stale(
        self, contact_id: str, handed: dict[str, float], indexed: dict[str, float]
    ) -> None:
        """Handed-out refs the loaded state does not hold (with that due) are stale."""
        stale = [(tid, due) for tid, due in handed.items() if indexed.get(tid) != due]
        if stale:
            entries = self._stale.setdefault(self.shard(contact_id), {})
            for tid, due in stale:
                entries[(contact_id + SEP + tid).encode()] = due

    def _queue_cleanup(self, pipe: Any) -> int:
        """Queue the removal of stale index entries; how many commands were queued."""
        stale, self._stale = self._stale, {}
        for shard, entries in stale.items():
            args: list[bytes | str] = []
            for member, due in entries.items():
                args += (member, repr(due))
            pipe.eval(_REMOVE_IF_SCORE, 1, self._index_keys[shard], *args)
        return len(stale)


def _drop_oldest(entries: dict[str, Any], keep: int) -> None:
    """Drop the entries inserted first until `keep` are left (the dicts here are in LRU order:
    an entry is re-inserted when used)."""
    excess = len(entries) - keep
    if excess > 0:
        for key in list(itertools.islice(entries, excess)):
            del entries[key]


def _decode_json(key: bytes, raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StoreDataError(f"{key!r} does not hold JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise StoreDataError(f"{key!r} holds {type(data).__name__}, not a state object")
    return data


def _decode(key: bytes, raw: bytes) -> ContactState:
    data = _decode_json(key, raw)
    try:
        return ContactState.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StoreDataError(f"{key!r} does not hold a contact state: {exc!r}") from exc


def client_from_url(
    url: str, *, cluster: bool | None = None, **options: Any
) -> Redis | RedisCluster:
    """A redis-py asyncio client for `url`: a `RedisCluster` when `cluster` is true, or when
    it is None and the URL says `?cluster=true` (the parameter is not passed on)."""
    url, from_query = _split_cluster_flag(url)
    if from_query if cluster is None else cluster:
        return RedisCluster.from_url(url, **options)
    return pooled_client(url, **options)


POOL_SIZE = 64  # connections a client keeps to one Redis node
POOL_WAIT = 30.0  # seconds a command waits for one of them before it fails


def pooled_client(url: str, **options: Any) -> Redis:
    """A single-node client whose commands wait for a free connection when all `POOL_SIZE`
    are busy (redis-py's own pool fails at once instead: `nudge deliver`, with a thousand
    deliveries at work, lost ledger records to it)."""
    size = options.pop("max_connections", POOL_SIZE)
    pool = BlockingConnectionPool.from_url(url, max_connections=size, timeout=POOL_WAIT, **options)
    return Redis.from_pool(pool)


def _split_cluster_flag(url: str) -> tuple[str, bool]:
    """The URL without its `cluster` query parameter, and that parameter as a bool."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    flag = False
    kept: list[tuple[str, str]] = []
    for name, value in query:
        if name != "cluster":
            kept.append((name, value))
        elif value.lower() in _TRUE:
            flag = True
        elif value.lower() not in _FALSE:
            raise ValueError(f"cluster={value!r} in {url!r}: expected true or false")
    return urlunsplit(parts._replace(query=urlencode(kept))), flag
