"""`nudge worker` end to end: subprocess workers on the broker, state in Redis.

Events in, actions out for every trigger kind; two workers sharing the partitions; one
killed with SIGKILL mid-stream; malformed input; rules reloaded while running.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from stream_topics import read_topic, wait_for_records
from stream_workers import (
    Deployment,
    WorkerProcess,
    action_values,
    event,
    produce,
    produce_raw,
    wait_for_split,
    wait_until,
)

from nudge.devservers import KafkaBroker
from nudge.engine.kafka_io import ensure_topics, start_producer
from nudge.engine.partitioning import partition_for

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

P = 4

EVERY_TRIGGER = """
segment big = contact.score > 10

rule welcome
    when signed_up
    then
        send webhook "welcome" with { event_id: event.id }
end

rule bought_after_view
    when viewed as v followed by purchased as p within 1h
    then
        send webhook "bought_after_view" with { viewed: v.id, purchased: p.id }
end

rule cart_reminder
    when cart_updated as cart not followed by order_completed
         where order_completed.cart_id == cart.cart_id within 2s
    then
        send webhook "cart_reminder" with { cart_id: cart.cart_id }
end

rule engaged
    when 3 page_viewed within 1h
    then
        send webhook "engaged"
end

rule gone_quiet
    when inactive for 3s
    then
        send webhook "inactive"
end

rule bump
    when bumped
    then
        score += 20
end

rule drop
    when dropped
    then
        score -= 20
end

rule hello_big
    when entered big
    then
        send webhook "entered_big"
end

rule bye_big
    when left big
    then
        send webhook "left_big"
end
"""

SIMPLE = """
rule welcome
    when signed_up
    then
        send webhook "welcome" with { event_id: event.id }
end

rule cart_reminder
    when cart_updated as cart not followed by order_completed within 2s
    then
        send webhook "cart_reminder" with { event_id: cart.id }
end
"""


@pytest.fixture
def deployment(kafka_broker: KafkaBroker, redis_db_url: str, topic_prefix: str) -> Deployment:
    d = Deployment(topic_prefix, kafka_broker.url, redis_db_url, P)
    kafka_broker.create_topic_sync(d.events, P)
    return d


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture
async def producer(kafka_broker: KafkaBroker) -> AsyncIterator[Any]:
    p = await start_producer(kafka_broker.bootstrap)
    yield p
    await p.stop()


def rules_dir(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "main.rules").write_text(text)
    return folder


def start(
    workers: list[WorkerProcess], deployment: Deployment, rules: Path, name: str
) -> WorkerProcess:
    worker = WorkerProcess(deployment, rules, rules.parent / f"{name}.log").start()
    workers.append(worker)
    return worker


async def settle(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[Any]:
    """Wait for `count` records, then a little longer to catch any extra one."""
    await wait_for_records(bootstrap, topic, count, timeout=timeout)
    await asyncio.sleep(1.5)
    return await read_topic(bootstrap, topic)


async def test_events_in_actions_out_for_every_trigger_kind(
    deployment: Deployment,
    workers: list[WorkerProcess],
    producer: Any,
    kafka_broker: KafkaBroker,
    tmp_path: Path,
) -> None:
    worker = start(workers, deployment, rules_dir(tmp_path, EVERY_TRIGGER), "w")
    wait_for_split([worker], P)
    topic = deployment.events
    await produce(
        producer,
        topic,
        [
            event("e1", "signed_up", "c-ev"),
            event("f1", "viewed", "c-fb"),
            event("f2", "purchased", "c-fb"),
            event("n1", "cart_updated", "c-nfb", cart_id="k1"),
            event("n2", "cart_updated", "c-paid", cart_id="k2"),
            event("n3", "order_completed", "c-paid", cart_id="k2"),
            event("r1", "page_viewed", "c-rep"),
            event("r2", "page_viewed", "c-rep"),
            event("r3", "page_viewed", "c-rep"),
            event("g1", "bumped", "c-seg"),
            event("g2", "dropped", "c-seg"),
        ],
        P,
    )
    # Malformed input on the way is set aside; what follows it still runs.
    await produce_raw(producer, topic, b"{not json", partition_for("c-ev", P))
    await produce_raw(producer, topic, b'[{"id": "x", "event": "a"}]', partition_for("c-ev", P))
    await produce(producer, topic, [event("e2", "signed_up", "c-late")], P)

    expected = Counter(
        {
            ("c-ev", "welcome"): 1,
            ("c-late", "welcome"): 1,
            ("c-fb", "bought_after_view"): 1,
            ("c-nfb", "cart_reminder"): 1,
            ("c-rep", "engaged"): 1,
            ("c-seg", "entered_big"): 1,
            ("c-seg", "left_big"): 1,
        }
    )
    for contact in ("c-ev", "c-late", "c-fb", "c-nfb", "c-paid", "c-rep", "c-seg"):
        expected[(contact, "inactive")] = 1
    records = await settle(kafka_broker.bootstrap, deployment.actions, expected.total())
    actions = action_values(records)
    assert Counter((a["contact_id"], a["name"]) for a in actions) == expected
    by_name = {a["name"]: a for a in actions if a["contact_id"] != "c-late"}
    assert by_name["bought_after_view"]["data"] == {"viewed": "f1", "purchased": "f2"}
    assert by_name["cart_reminder"]["data"] == {"cart_id": "k1"}
    assert by_name["entered_big"]["contact"]["score"] == 20  # the contact snapshot
    for record in records:
        assert record.key == orjson.loads(record.value)["contact_id"].encode()
    dead = [orjson.loads(r.value) for r in await read_topic(kafka_broker.bootstrap, deployment.dlq)]
    assert sorted(d["reason"] for d in dead) == ["missing_field", "not_json"]
    assert all(d["source"] == "worker" for d in dead)


async def test_two_workers_share_partitions_and_publish_each_action_once(
    deployment: Deployment,
    workers: list[WorkerProcess],
    producer: Any,
    kafka_broker: KafkaBroker,
    tmp_path: Path,
) -> None:
    rules = rules_dir(tmp_path, SIMPLE)
    first = start(workers, deployment, rules, "a")
    wait_for_split([first], P)
    half = [event(f"s{n}", "signed_up", f"c{n % 97}") for n in range(300)]
    await produce(producer, deployment.events, half, P)
    second = start(workers, deployment, rules, "b")  # joins mid-stream: a rebalance
    for n in range(300, 600):
        await produce(producer, deployment.events, [event(f"s{n}", "signed_up", f"c{n % 97}")], P)
        if n % 50 == 0:
            await asyncio.sleep(0.2)
    wait_for_split([first, second], P)
    assert first.assigned() and second.assigned()
    rest = [event(f"s{n}", "signed_up", f"c{n % 97}") for n in range(600, 800)]
    await produce(producer, deployment.events, rest, P)
    records = await settle(kafka_broker.bootstrap, deployment.actions, 800)
    ids = [a["data"]["event_id"] for a in action_values(records)]
    assert len(ids) == 800
    assert set(ids) == {f"s{n}" for n in range(800)}


async def test_sigkill_mid_stream_loses_and_repeats_nothing(
    deployment: Deployment,
    workers: list[WorkerProcess],
    producer: Any,
    kafka_broker: KafkaBroker,
    tmp_path: Path,
) -> None:
    rules = rules_dir(tmp_path, SIMPLE)
    victim = start(workers, deployment, rules, "victim")
    survivor = start(workers, deployment, rules, "survivor")
    wait_for_split([victim, survivor], P)
    victim_partitions = victim.assigned() or set()
    sent_signups: list[str] = []
    sent_carts: list[str] = []
    killed_at = 0.0
    carts_before_kill: list[str] = []
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < 7.0:
        batch = []
        for _ in range(20):
            n += 1
            if n % 4 == 0:
                batch.append(event(f"k{n}", "cart_updated", f"cart-owner-{n}"))
                sent_carts.append(f"k{n}")
            else:
                batch.append(event(f"s{n}", "signed_up", f"c{n % 61}"))
                sent_signups.append(f"s{n}")
        await produce(producer, deployment.events, batch, P)
        if not killed_at and time.monotonic() - started > 2.5:
            victim.kill()
            killed_at = time.monotonic()
            carts_before_kill = list(sent_carts)
        await asyncio.sleep(0.05)
    assert killed_at
    # Each cart has a contact of its own: a `not followed by` wait each, all reminded.
    expected = {*sent_signups, *sent_carts}
    # Some of the victim's contacts had a wait pending when it died: the survivor fires them.
    orphaned = [
        c for c in carts_before_kill if partition_for(f"cart-owner-{c[1:]}", P) in victim_partitions
    ]
    assert orphaned
    wait_for_split([survivor], P, timeout=40)
    records = await settle(kafka_broker.bootstrap, deployment.actions, len(expected), timeout=60)
    ids = [a["data"]["event_id"] for a in action_values(records)]
    duplicates = [i for i, count in Counter(ids).items() if count > 1]
    assert not duplicates, f"published twice: {duplicates[:10]}"
    assert set(ids) == expected


async def test_rules_reload_while_running(
    deployment: Deployment,
    workers: list[WorkerProcess],
    producer: Any,
    kafka_broker: KafkaBroker,
    tmp_path: Path,
) -> None:
    rules = rules_dir(tmp_path, SIMPLE)
    worker = start(workers, deployment, rules, "w")
    wait_for_split([worker], P)
    await produce(producer, deployment.events, [event("s1", "signed_up", "c1")], P)
    await wait_for_records(kafka_broker.bootstrap, deployment.actions, 1)

    extra = '\nrule thanks\n    when signed_up\n    then\n        send webhook "thanks"\nend\n'
    (rules / "main.rules").write_text(SIMPLE + extra)
    wait_until(lambda: "rules.reloaded" in worker.text, 20, "the reload", [worker])
    await produce(producer, deployment.events, [event("s2", "signed_up", "c2")], P)
    await wait_for_records(kafka_broker.bootstrap, deployment.actions, 3)

    (rules / "broken.rules").write_text("rule oops\n    when\nend\n")
    wait_until(lambda: "rules.reload_rejected" in worker.text, 20, "the rejection", [worker])
    assert "broken.rules" in worker.text
    await produce(producer, deployment.events, [event("s3", "signed_up", "c3")], P)
    records = await settle(kafka_broker.bootstrap, deployment.actions, 5)
    names = Counter((a["contact_id"], a["name"]) for a in action_values(records))
    assert names == Counter(
        {
            ("c1", "welcome"): 1,
            ("c2", "welcome"): 1,
            ("c2", "thanks"): 1,
            ("c3", "welcome"): 1,
            ("c3", "thanks"): 1,
        }
    )


def test_worker_refuses_a_ruleset_that_fails_the_check(tmp_path: Path) -> None:
    import subprocess
    import sys

    rules = rules_dir(tmp_path, "rule oops\n    when\nend\n")
    done = subprocess.run(
        [sys.executable, "-m", "nudge.cli", "worker", "--rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 1
    assert "main.rules" in done.stderr
    assert "fails the check" in done.stderr


async def test_topics_with_another_partition_count_are_refused(
    kafka_broker: KafkaBroker, topic_prefix: str, redis_db_url: str, tmp_path: Path
) -> None:
    import subprocess
    import sys

    d = Deployment(topic_prefix, kafka_broker.url, redis_db_url, P)
    await ensure_topics(kafka_broker.bootstrap, {d.events: 2})
    rules = rules_dir(tmp_path, SIMPLE)
    done = subprocess.run(
        [
            *(sys.executable, "-m", "nudge.cli", "worker", "--rules", str(rules)),
            *("--broker", d.broker_url, "--redis", d.redis_url, "--partitions", str(P)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=d.env(),
        check=False,
    )
    assert done.returncode == 1
    assert "has 2 partitions" in done.stderr
