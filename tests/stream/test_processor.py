"""The worker's core without faust: batches, timers, DLQ, forwarding, and a crash between
publishing and saving that must not publish anything twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.exceptions
from stream_topics import read_topic

from nudge.devservers import KafkaBroker
from nudge.dsl.load import load_ruleset
from nudge.engine.clock import ManualClock
from nudge.engine.engine import Engine
from nudge.engine.events import Event, format_time
from nudge.engine.kafka_io import ensure_topics, pack_events, start_producer
from nudge.engine.partitioning import partition_for
from nudge.engine.processor import Record, StreamProcessor
from nudge.engine.publisher import ActionPublisher, MarkStore
from nudge.engine.state import ContactState, Timer, TimerRef, TimerSummary
from nudge.engine.stores.memory import MemoryStore

pytestmark = pytest.mark.kafka

RULES = """
rule greet
    when signed_up
    then
        send webhook "welcome" with { event_id: event.id }
end

rule remind
    when cart_updated as cart not followed by order_completed within 1h
    then
        send webhook "cart_reminder" with { event_id: cart.id }
end
"""

P = 4
T0 = 1_795_000_000.0


class SerialisingStore:
    """A MemoryStore that keeps states as JSON, like Redis: loads give fresh copies."""

    def __init__(self, partitions: int = P) -> None:
        self.inner = MemoryStore(partitions)
        self.partitions = partitions
        self.fail_saves = False  # a crash: an error the worker does not retry
        self.flaky_saves = 0  # this many saves fail as if Redis were briefly away
        self.flaky_loads = 0

    async def load(self, contact_ids: Collection[str]) -> dict[str, ContactState]:
        if self.flaky_loads:
            self.flaky_loads -= 1
            raise redis.exceptions.ConnectionError("connection reset")
        states = await self.inner.load(contact_ids)
        return {
            cid: ContactState.from_dict(orjson.loads(orjson.dumps(s.to_dict())))
            for cid, s in states.items()
        }

    async def save(
        self,
        states: Iterable[ContactState],
        after: Awaitable[object] | None = None,
        armed: Iterable[Timer] | None = None,
    ) -> None:
        if after is not None:
            await after
        if self.fail_saves:
            raise redis.exceptions.ResponseError("the process died here")
        if self.flaky_saves:
            self.flaky_saves -= 1
            raise redis.exceptions.TimeoutError("timed out")
        copies = [ContactState.from_dict(orjson.loads(orjson.dumps(s.to_dict()))) for s in states]
        await self.inner.save(copies)

    async def due_timers(
        self, now: float, shards: Collection[int] | None = None, limit: int = 1000
    ) -> list[TimerRef]:
        return await self.inner.due_timers(now, shards, limit)

    async def timer_summary(self, shards: Collection[int] | None = None) -> TimerSummary:
        return await self.inner.timer_summary(shards)

    async def claim_ids(self, events: Sequence[Event], ttl: float, now: float) -> set[int]:
        return await self.inner.claim_ids(events, ttl, now)

    async def close(self) -> None:
        return None


class Crashed(Exception):
    pass


def crash(code: int) -> None:
    raise Crashed(code)


def signed_up(n: int, contact: str | None = None, ts: float = T0) -> Event:
    return Event(f"s-{n}", "signed_up", contact or f"c-{n}", ts, format_time(ts), {})


def records_of(events: list[Event]) -> list[Record]:
    return [(r.partition, r.key, r.value) for r in pack_events(events, P)]


@pytest.fixture
async def topics(kafka_broker: KafkaBroker, topic_prefix: str) -> dict[str, str]:
    names = {k: f"{topic_prefix}.{k}" for k in ("events", "actions", "dlq")}
    await ensure_topics(kafka_broker.bootstrap, dict.fromkeys(names.values(), P))
    return names


@pytest.fixture
async def producer(kafka_broker: KafkaBroker) -> AsyncIterator[Any]:
    p = await start_producer(kafka_broker.bootstrap)
    yield p
    await p.stop()


def engine_for(tmp_path: Path, text: str = RULES) -> Engine:
    (tmp_path / "r.rules").write_text(text)
    result = load_ruleset([tmp_path])
    assert result.ruleset is not None, result.diagnostics
    return Engine(result.ruleset)


def make_processor(
    engine: Engine,
    *,
    store: Any,
    marks: MarkStore,
    producer: Any,
    topics: dict[str, str],
    bootstrap: str,
    clock: ManualClock,
) -> StreamProcessor:
    publisher = ActionPublisher(
        producer, marks, bootstrap=bootstrap, topic=topics["actions"], partitions=P
    )
    return StreamProcessor(
        engine,
        store,
        publisher,
        producer,
        events_topic=topics["events"],
        dlq_topic=topics["dlq"],
        partitions=P,
        clock=clock,
        fatal=crash,
    )


async def actions_on(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in await read_topic(bootstrap, topic)]


async def test_batch_to_actions_with_contact_snapshot(
    kafka_broker: KafkaBroker, topics: dict[str, str], producer: Any, tmp_path: Path
) -> None:
    proc = make_processor(
        engine_for(tmp_path),
        store=SerialisingStore(),
        marks=MarkStore(),
        producer=producer,
        topics=topics,
        bootstrap=kafka_broker.bootstrap,
        clock=ManualClock(T0),
    )
    await proc.assign(range(P))
    events = [signed_up(n) for n in range(20)]
    await proc.handle(records_of(events))
    got = await actions_on(kafka_broker.bootstrap, topics["actions"])
    assert sorted(a["data"]["event_id"] for a in got) == sorted(e.id for e in events)
    records = await read_topic(kafka_broker.bootstrap, topics["actions"])
    for record in records:
        action = orjson.loads(record.value)
        assert record.key == action["contact_id"].encode()
        assert record.partition == partition_for(action["contact_id"], P)
        assert action["contact"]["stage"] == "prospect"  # the snapshot, for templates


async def test_timers_fire_on_owned_partitions_only(
    kafka_broker: KafkaBroker, topics: dict[str, str], producer: Any, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    proc = make_processor(
        engine_for(tmp_path),
        store=SerialisingStore(),
        marks=MarkStore(),
        producer=producer,
        topics=topics,
        bootstrap=kafka_broker.bootstrap,
        clock=clock,
    )
    await proc.assign(range(P))
    carts = [Event(f"k-{n}", "cart_updated", f"c-{n}", T0, format_time(T0), {}) for n in range(12)]
    await proc.handle(records_of(carts))
    mine = {partition_for(e.contact_id, P) for e in carts[:3]}
    await proc.revoke()
    await proc.assign(mine)
    clock.advance(T0 + 3601)
    await proc.tick()
    got = await actions_on(kafka_broker.bootstrap, topics["actions"])
    fired = {a["data"]["event_id"] for a in got}
    expected = {e.id for e in carts if partition_for(e.contact_id, P) in mine}
    assert fired == expected
    await proc.revoke()
    await proc.assign(range(P))
    await proc.tick()
    got = await actions_on(kafka_broker.bootstrap, topics["actions"])
    assert sorted(a["data"]["event_id"] for a in got) == sorted(e.id for e in carts)


async def test_rejects_go_to_dlq_and_misrouted_events_are_forwarded(
    kafka_broker: KafkaBroker, topics: dict[str, str], producer: Any, tmp_path: Path
) -> None:
    proc = make_processor(
        engine_for(tmp_path),
        store=SerialisingStore(),
        marks=MarkStore(),
        producer=producer,
        topics=topics,
        bootstrap=kafka_broker.bootstrap,
        clock=ManualClock(T0),
    )
    await proc.assign(range(P))
    good = signed_up(1)
    home = partition_for(good.contact_id, P)
    away = (home + 1) % P
    stray = orjson.dumps(good.to_json())
    await proc.handle([(away, None, b"not json"), (away, None, stray)])
    assert proc.stats.rejected == 1
    assert proc.stats.forwarded == 1
    (dead,) = await read_topic(kafka_broker.bootstrap, topics["dlq"])
    assert orjson.loads(dead.value)["reason"] == "not_json"
    assert orjson.loads(dead.value)["source"] == "worker"
    (forwarded,) = await read_topic(kafka_broker.bootstrap, topics["events"])
    assert forwarded.partition == home
    assert await read_topic(kafka_broker.bootstrap, topics["actions"]) == []
    await proc.handle([(forwarded.partition, forwarded.key, forwarded.value)])
    (action,) = await actions_on(kafka_broker.bootstrap, topics["actions"])
    assert action["data"]["event_id"] == good.id


async def test_crash_after_publishing_before_saving_publishes_nothing_twice(
    kafka_broker: KafkaBroker, topics: dict[str, str], producer: Any, tmp_path: Path
) -> None:
    engine = engine_for(tmp_path)
    store, marks, clock = SerialisingStore(), MarkStore(), ManualClock(T0)
    first = make_processor(
        engine,
        store=store,
        marks=marks,
        producer=producer,
        topics=topics,
        bootstrap=kafka_broker.bootstrap,
        clock=clock,
    )
    await first.assign(range(P))
    before = [signed_up(n) for n in range(10)]
    await first.handle(records_of(before))
    during = [signed_up(n) for n in range(10, 30)]
    store.fail_saves = True
    with pytest.raises(Crashed):
        await first.handle(records_of(during))
    store.fail_saves = False
    published = await actions_on(kafka_broker.bootstrap, topics["actions"])
    assert len(published) == 30  # published, but the states of the last 20 were not saved

    second = make_processor(
        engine,
        store=store,
        marks=marks,
        producer=producer,
        topics=topics,
        bootstrap=kafka_broker.bootstrap,
        clock=clock,
    )
    await second.assign(range(P))
    assert len(second.publisher.recovered) == 20  # only what follows the marks is read back
    after = [signed_up(n) for n in range(30, 35)]
    await second.handle(records_of(before + during + after))  # the replay after the crash
    published = await actions_on(kafka_broker.bootstrap, topics["actions"])
    ids = [a["id"] for a in published]
    assert len(ids) == len(set(ids)) == 35
    assert second.publisher.skipped == 20
    states = await store.load([e.contact_id for e in during])
    assert all(e.id in states[e.contact_id].seen for e in during)


async def test_rules_swap_between_batches(
    kafka_broker: KafkaBroker, topics: dict[str, str], producer: Any, tmp_path: Path
) -> None:
    proc = make_processor(
        engine_for(tmp_path),
        store=SerialisingStore(),
        marks=MarkStore(),
        producer=producer,
        topics=topics,
        bootstrap=kafka_broker.bootstrap,
        clock=ManualClock(T0),
    )
    await proc.assign(range(P))
    await proc.handle(records_of([signed_up(1)]))
    other = tmp_path / "v2"
    other.mkdir()
    text = RULES.replace('"welcome"', '"welcome_v2"')
    await proc.swap_engine(engine_for(other, text))
    await proc.handle(records_of([signed_up(2)]))
    names = [a["name"] for a in await actions_on(kafka_broker.bootstrap, topics["actions"])]
    assert sorted(names) == ["welcome", "welcome_v2"]


async def test_revoke_waits_for_the_batch_under_way(
    kafka_broker: KafkaBroker, topics: dict[str, str], producer: Any, tmp_path: Path
) -> None:
    proc = make_processor(
        engine_for(tmp_path),
        store=SerialisingStore(),
        marks=MarkStore(),
        producer=producer,
        topics=topics,
        bootstrap=kafka_broker.bootstrap,
        clock=ManualClock(T0),
    )
    await proc.assign(range(P))
    batch = asyncio.create_task(proc.handle(records_of([signed_up(n) for n in range(50)])))
    await asyncio.sleep(0)
    started = time.monotonic()
    await proc.revoke()
    assert batch.done()
    assert time.monotonic() - started < 30
    assert len(await actions_on(kafka_broker.bootstrap, topics["actions"])) == 50
    # Records of partitions no longer owned are left for their next owner.
    waiting = asyncio.create_task(proc.handle(records_of([signed_up(99)])))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await proc.assign([])
    await proc.assign([p for p in range(P) if p != partition_for("c-99", P)])
    await asyncio.wait_for(waiting, 5)
    assert proc.stats.dropped_revoked == 1


class PoisonEngine(Engine):
    """Fails on events whose id starts with `poison`, as an engine bug would."""

    def handle(self, event: Event, *args: Any, **kwargs: Any) -> Any:
        if event.id.startswith("poison"):
            raise RuntimeError(f"cannot handle {event.id}")
        return super().handle(event, *args, **kwargs)


async def test_an_event_the_engine_fails_on_is_set_aside_and_the_rest_runs(
    kafka_broker: KafkaBroker, topics: dict[str, str], producer: Any, tmp_path: Path
) -> None:
    base = engine_for(tmp_path)
    proc = make_processor(
        PoisonEngine(base.ruleset),
        store=SerialisingStore(),
        marks=MarkStore(),
        producer=producer,
        topics=topics,
        bootstrap=kafka_broker.bootstrap,
        clock=ManualClock(T0),
    )
    await proc.assign(range(P))
    events = [signed_up(n) for n in range(6)]
    events.insert(3, Event("poison-1", "signed_up", "c-1", T0, format_time(T0), {}))
    await proc.handle(records_of(events))
    await proc.handle(records_of([Event("poison-2", "signed_up", "c-9", T0, format_time(T0), {})]))
    got = await actions_on(kafka_broker.bootstrap, topics["actions"])
    assert sorted(a["data"]["event_id"] for a in got) == [f"s-{n}" for n in range(6)]
    dead = [orjson.loads(r.value) for r in await read_topic(kafka_broker.bootstrap, topics["dlq"])]
    assert sorted((d["reason"], orjson.loads(d["raw"])["id"]) for d in dead) == [
        ("engine_error", "poison-1"),
        ("engine_error", "poison-2"),
    ]
    assert all("cannot handle poison-" in d["detail"] for d in dead)
    assert proc.stats.engine_errors == 2


async def test_redis_away_for_a_moment_is_retried_without_publishing_twice(
    kafka_broker: KafkaBroker, topics: dict[str, str], producer: Any, tmp_path: Path
) -> None:
    store = SerialisingStore()
    proc = make_processor(
        engine_for(tmp_path),
        store=store,
        marks=MarkStore(),
        producer=producer,
        topics=topics,
        bootstrap=kafka_broker.bootstrap,
        clock=ManualClock(T0),
    )
    await proc.assign(range(P))
    store.flaky_loads = 1
    await proc.handle(records_of([signed_up(n) for n in range(5)]))
    store.flaky_saves = 2  # after publishing: the retry must not publish again
    await proc.handle(records_of([signed_up(n) for n in range(5, 10)]))
    got = await actions_on(kafka_broker.bootstrap, topics["actions"])
    ids = [a["data"]["event_id"] for a in got]
    assert sorted(ids) == sorted(f"s-{n}" for n in range(10))
    states = await store.load([f"c-{n}" for n in range(10)])
    assert all(f"s-{n}" in states[f"c-{n}"].seen for n in range(10))


COUNTING = """
rule count_views
    when page_viewed
    then
        score += 1
        send webhook "views" with { score: contact.score }
end
"""


async def test_batches_submitted_back_to_back_on_redis_see_each_other(
    kafka_broker: KafkaBroker,
    topics: dict[str, str],
    producer: Any,
    tmp_path: Path,
    redis_db_url: str,
) -> None:
    """Batches submitted one after the other, none awaited: each runs once the one before is
    saved, sees its states, and the marks move with every save."""
    from nudge.engine.stores.redis import RedisStore

    store = RedisStore.from_url(redis_db_url, partitions=P, state_cache=1000)
    marks = MarkStore()
    proc = make_processor(
        engine_for(tmp_path, COUNTING),
        store=store,
        marks=marks,
        producer=producer,
        topics=topics,
        bootstrap=kafka_broker.bootstrap,
        clock=ManualClock(T0),
    )
    proc.publisher.mark_interval = 0.0
    await proc.assign(range(P))
    views = [
        Event(f"v-{n}", "page_viewed", "c-1", T0 + n, format_time(T0 + n), {}) for n in range(6)
    ]
    saved = [await proc.submit(records_of([view])) for view in views]  # none awaited
    await asyncio.gather(*saved)
    published = await actions_on(kafka_broker.bootstrap, topics["actions"])
    assert [a["data"]["score"] for a in published] == [1, 2, 3, 4, 5, 6]
    again = RedisStore.from_url(redis_db_url, partitions=P)  # what Redis itself holds
    state = (await again.load(["c-1"]))["c-1"]
    assert state.traits["score"] == 6
    assert set(state.seen) == {v.id for v in views}
    assert sum(marks.marks.values()) == 6  # every action's mark moved, once saved
    await again.close()
    await store.close()


async def test_a_batch_failing_right_after_another_changes_nothing_twice(
    kafka_broker: KafkaBroker,
    topics: dict[str, str],
    producer: Any,
    tmp_path: Path,
    redis_db_url: str,
) -> None:
    """The engine fails half-way through a batch submitted right after another: what the
    failed batch changed is forgotten, and its events run one by one from the saved states,
    each counted once."""
    from nudge.engine.stores.redis import RedisStore

    store = RedisStore.from_url(redis_db_url, partitions=P, state_cache=1000)
    proc = make_processor(
        PoisonEngine(engine_for(tmp_path, COUNTING).ruleset),
        store=store,
        marks=MarkStore(),
        producer=producer,
        topics=topics,
        bootstrap=kafka_broker.bootstrap,
        clock=ManualClock(T0),
    )
    await proc.assign(range(P))

    def view(eid: str, n: int) -> Event:
        return Event(eid, "page_viewed", "c-1", T0 + n, format_time(T0 + n), {})

    first = await proc.submit(records_of([view("v-0", 0), view("v-1", 1)]))
    second = await proc.submit(records_of([view("v-2", 2), view("poison-1", 3), view("v-3", 4)]))
    await asyncio.gather(first, second)
    published = await actions_on(kafka_broker.bootstrap, topics["actions"])
    assert [a["data"]["score"] for a in published] == [1, 2, 3, 4]
    again = RedisStore.from_url(redis_db_url, partitions=P)
    state = (await again.load(["c-1"]))["c-1"]
    assert state.traits["score"] == 4
    assert set(state.seen) == {"v-0", "v-1", "v-2", "v-3"}
    await again.close()
    await store.close()
