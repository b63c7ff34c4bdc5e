"""Streaming throughput and latency: a trivial faust agent against the full `nudge worker`.

    python benchmarks/stream.py                      # 100k events, 4 partitions, rules/
    python benchmarks/stream.py --events 500000 --contacts 20000 --partitions 8
    python benchmarks/stream.py --broker kafka://host:9092 --redis redis://host:6379/5

In one go, on one broker (Tansu from the dev servers unless `--broker` is given) and one
Redis:

1. trivial: a faust agent that only counts the events of each packed record, consuming the
   same micro-batches as the worker (`noack_take`, acknowledged after each batch);
2. full: `nudge worker` with the example rules and Redis state, over a backlog produced once
   the consumer is in its group (events per second from its first batch to its last);
3. the ratio of the two;
4. sustainable: the highest steady offered load one worker keeps up with (its latency does
   not grow through a step of `--step-seconds`), found by bisection below the backlog rate;
   then latency at half of it: `demo_requested` probes (1% of the events) whose
   `sales_alert` action is timed from the moment the event was sent to the moment the
   action arrives on the actions topic (after `--warmup` seconds of the same load, not
   counted); each load is packed into records beforehand, only its timestamps filled in as
   it is sent;
5. two workers sharing the partitions, over the same backlog.

Every phase and step has its own topics and its own Redis keys (`NUDGE_REDIS_KEY_PREFIX`):
none sees another's contacts or events, and Tansu (whose memory storage slows down as its
topics grow) starts each one empty.

The trivial agent runs twice: over one event per Kafka record (what a plain faust
deployment consumes) and over the same packed records as the worker. Rates are given per
second of wall time and per second of the consumer process's CPU time (all threads), the
latter being steadier on a machine with other work on it.

Events are the synthetic shop's (`nudge.engine.synthetic`), with timestamps set to the
time they are sent, so waits and `not followed by` timers fall due in the future, as in
production. The machine and the command are printed with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from nudge.engine.events import Event, format_time, parse_event
from nudge.engine.kafka_io import (
    PackedRecord,
    bootstrap_servers,
    ensure_topics,
    pack_events,
    start_producer,
)
from nudge.engine.partitioning import partition_for
from nudge.engine.synthetic import generate_lines

ROOT = Path(__file__).resolve().parent.parent
WORKER_FLAGS = ["--session-timeout", "6", "--heartbeat-interval", "1", "--rebalance-timeout", "6"]
_STOPPED = re.compile(r"worker\.stopped\s+(.*)$", re.MULTILINE)
_FIELD = re.compile(r"(\w+)=(\S+)")


# ----------------------------------------------------------------------------- the trivial agent


def trivial_agent(bootstrap: str, topic: str, group: str, expected: int, partitions: int) -> None:
    """Count events until `expected`; print {"events", "first_at", "last_at"} as JSON."""
    import faust

    app = faust.App(
        group,
        broker=";".join(f"kafka://{h}" for h in bootstrap.split(",")),
        store="memory://",
        autodiscover=False,
        datadir=tempfile.mkdtemp(prefix="nudge-bench-"),
        web_enabled=False,
        topic_partitions=partitions,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        broker_rebalance_timeout=6,
        stream_wait_empty=False,
    )
    source = app.topic(topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    state: dict[str, Any] = {"events": 0, "first_at": None, "last_at": None, "cpu": 0.0}

    def events_in(value: bytes) -> int:
        decoded = orjson.loads(value)
        return len(decoded) if isinstance(decoded, list) else 1

    async def count(stream: Any) -> None:
        cpu_first = 0.0
        async for batch in stream.noack_take(100, within=0.005):
            if state["first_at"] is None:
                state["first_at"] = time.time()
                cpu_first = time.process_time()
            state["events"] += sum(events_in(e.message.value) for e in batch)
            for e in batch:
                await stream.ack(e)
            state["last_at"] = time.time()
            state["cpu"] = time.process_time() - cpu_first
            if state["events"] >= expected:
                print(json.dumps(state), flush=True)
                os.kill(os.getpid(), signal.SIGTERM)

    app.agent(source, name="count")(count)

    async def assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        print("ASSIGNED", flush=True)

    app.on_partitions_assigned.connect(assigned)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.spinner = None
    worker.execute_from_commandline()


# ----------------------------------------------------------------------------- the echo worker


class EchoProcessor:
    """The worker's faust app with no engine, no Redis: each probe's event is answered by an
    action record as soon as its batch comes in (the floor of the latency phase on this broker:
    faust's fetch and batching, a publish, and the way back)."""

    def __init__(self, bootstrap: str, actions_topic: str) -> None:
        self.bootstrap = bootstrap
        self.actions_topic = actions_topic
        self.producer: Any = None

    async def submit(self, records: Sequence[tuple[int, bytes | None, bytes]]) -> Any:
        if self.producer is None:
            self.producer = await start_producer(self.bootstrap)
        sent = []
        for partition, _, value in records:
            decoded = orjson.loads(value)
            for event in decoded if isinstance(decoded, list) else [decoded]:
                plan = (event.get("properties") or {}).get("plan")
                if event.get("event") == "demo_requested" and plan is not None:
                    body = orjson.dumps({"id": event["id"], "data": {"plan": plan}})
                    sent.append(
                        await self.producer.send(self.actions_topic, body, partition=partition)
                    )
        return asyncio.ensure_future(asyncio.gather(*sent))

    async def tick(self) -> int:
        return 0

    async def revoke(self) -> None:
        return None

    async def assign(self, partitions: Any) -> None:
        print(f"worker.assigned partitions={sorted(partitions)}", flush=True)


def echo_worker(bootstrap: str, events: str, actions: str, app_id: str, partitions: int) -> None:
    """`nudge worker`'s faust app (`build_app`, default options) around an `EchoProcessor`."""
    from nudge.engine.stream import StreamOptions, build_app, run_app

    options = StreamOptions(session_timeout=6, heartbeat_interval=1, rebalance_timeout=6)
    processor: Any = EchoProcessor(bootstrap, actions)
    app = build_app(
        app_id=app_id,
        bootstrap=bootstrap,
        events_topic=events,
        partitions=partitions,
        processor=processor,
        options=options,
    )
    run_app(app, asyncio.new_event_loop())


# ----------------------------------------------------------------------------- shared pieces


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )


def shop_events(events: int, contacts: int, seed: int) -> list[Event]:
    out: list[Event] = []
    for line in generate_lines(contacts, events, seed):
        item = parse_event(line.rstrip(b"\n"))
        if isinstance(item, Event):
            out.append(item)
    return out


def stamped(events: Sequence[Event], ts: float) -> list[Event]:
    text = format_time(ts)
    return [
        Event(e.id, e.type, e.contact_id, ts, text, e.properties, e.traits, e.anonymous_id)
        for e in events
    ]


async def produce_backlog(
    bootstrap: str,
    topic: str,
    events: Sequence[Event],
    partitions: int,
    *,
    packed: bool = True,
    chunk: int = 5000,
) -> float:
    """Send every event (timestamped now), packed or one per record; return the seconds."""
    producer = await start_producer(bootstrap)
    started = time.perf_counter()
    try:
        acks = []
        for i in range(0, len(events), chunk):
            part = stamped(events[i : i + chunk], time.time())
            if packed:
                for r in pack_events(part, partitions):
                    acks.append(
                        await producer.send(topic, r.value, key=r.key, partition=r.partition)
                    )
            else:
                for e in part:
                    key = e.contact_id.encode()
                    value = orjson.dumps(e.to_json())
                    partition = partition_for(e.contact_id, partitions)
                    acks.append(await producer.send(topic, value, key=key, partition=partition))
            if len(acks) > 50_000:
                await asyncio.gather(*acks)
                acks = []
        await asyncio.gather(*acks)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def committed_all(bootstrap: str, topic: str, group: str, partitions: int) -> bool:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            if (await consumer.committed(tp) or 0) < ends[tp]:
                return False
        return True
    finally:
        await consumer.stop()


class Deployment:
    """A fresh set of topics and a consumer group for one phase."""

    def __init__(self, args: argparse.Namespace, bootstrap: str, redis_url: str, tag: str) -> None:
        self.args = args
        self.bootstrap = bootstrap
        self.redis_url = redis_url
        self.prefix = f"bench-{tag}-{uuid.uuid4().hex[:6]}"
        self.workers: list[tuple[subprocess.Popen[bytes], Path]] = []

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def actions(self) -> str:
        return f"{self.prefix}.actions"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
        env.update(
            NUDGE_EVENTS_TOPIC=self.events,
            NUDGE_ACTIONS_TOPIC=self.actions,
            NUDGE_DLQ_TOPIC=f"{self.prefix}.dlq",
            NUDGE_APP_ID=self.prefix,
            NUDGE_REDIS_KEY_PREFIX=self.prefix,  # no phase sees another's contacts
            NUDGE_LOG_LEVEL="info",
        )
        return env

    async def create(self) -> None:
        p = self.args.partitions
        await ensure_topics(self.bootstrap, {self.events: p, self.actions: p})

    def start_worker(self, logdir: Path) -> None:
        log = logdir / f"{self.prefix}-{len(self.workers)}.log"
        if self.args.echo:
            argv = [
                sys.executable, __file__, "--echo-worker", self.bootstrap, self.events,
                self.actions, self.prefix, str(self.args.partitions),
            ]  # fmt: skip
            with log.open("wb") as out:
                process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=logdir)
            self.workers.append((process, log))
            return
        argv = [
            sys.executable, "-m", "nudge.cli", "worker",
            "--rules", str(self.args.rules),
            "--broker", f"kafka://{self.bootstrap}",
            "--redis", self.redis_url,
            "--partitions", str(self.args.partitions),
            "--batch-records", str(self.args.batch_records),
            *WORKER_FLAGS,
            *shlex.split(self.args.worker_args),
        ]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=self.env(), cwd=logdir
            )
        self.workers.append((process, log))

    def wait_assigned(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            seen: list[int] = []
            for process, log in self.workers:
                if process.poll() is not None:
                    raise RuntimeError(f"worker exited: {log.read_text()[-2000:]}")
                found = re.findall(r"worker\.assigned\s+partitions=\[([0-9, ]*)\]", log.read_text())
                if found:
                    seen += [int(p) for p in found[-1].replace(" ", "").split(",") if p]
            if sorted(seen) == list(range(self.args.partitions)):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not get the partitions in time")
            time.sleep(0.1)

    def stop_workers(self) -> list[dict[str, str]]:
        stats = []
        for process, log in self.workers:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            found = _STOPPED.findall(log.read_text())
            if found:
                stats.append(dict(_FIELD.findall(found[-1])))
        self.workers = []
        return stats


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


# ----------------------------------------------------------------------------- phases


async def phase_trivial(
    args: argparse.Namespace, bootstrap: str, events: list[Event], *, packed: bool
) -> tuple[float, float]:
    """(events per second, events per CPU second) of a counting faust agent."""
    d = Deployment(args, bootstrap, "", "trivial")
    await d.create()
    argv = [
        sys.executable, __file__, "--trivial-agent",
        bootstrap, d.events, d.prefix, str(len(events)), str(args.partitions),
    ]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    line = await asyncio.to_thread(process.stdout.readline)
    if b"ASSIGNED" not in line:
        raise RuntimeError(f"trivial agent: {line!r}")
    await produce_backlog(bootstrap, d.events, events, args.partitions, packed=packed)
    result_line = await asyncio.to_thread(process.stdout.readline)
    await asyncio.to_thread(process.wait, 30)
    result = json.loads(result_line)
    n = result["events"]
    return n / (result["last_at"] - result["first_at"]), n / max(result["cpu"], 1e-9)


async def phase_full(
    args: argparse.Namespace,
    bootstrap: str,
    redis_url: str,
    events: list[Event],
    *,
    workers: int,
    logdir: Path,
) -> tuple[float, float]:
    """(events per second, events per CPU second of the workers) over the backlog."""
    d = Deployment(args, bootstrap, redis_url, f"full{workers}")
    await d.create()
    for _ in range(workers):
        d.start_worker(logdir)
    d.wait_assigned()
    produce_seconds = await produce_backlog(bootstrap, d.events, events, args.partitions)
    deadline = time.monotonic() + 600
    while not await committed_all(bootstrap, d.events, d.prefix, args.partitions):
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not finish in 10 minutes")
        await asyncio.sleep(0.5)
    stats = d.stop_workers()
    processed = sum(int(s["events"]) for s in stats)
    first = min(float(s["first_at"]) for s in stats if s.get("first_at") not in (None, "None"))
    last = max(float(s["last_at"]) for s in stats if s.get("last_at") not in (None, "None"))
    cpu = sum(float(s["cpu_seconds"]) for s in stats)
    if processed < len(events):
        raise RuntimeError(f"processed {processed} of {len(events)} events")
    print(
        f"  ({workers} worker(s): {processed} events, backlog sent in {produce_seconds:.2f}s)",
        file=sys.stderr,
    )
    return processed / (last - first), processed / max(cpu, 1e-9)


class SteadyLoad:
    """A steady offered load on one deployment's events topic, with probes timed end to end.

    `demo_requested` probes (about 1% of the events) give a `sales_alert` action each, timed
    from the moment the event was sent to the moment the action arrives on the actions topic.
    Each `offer` packs its load into records beforehand, each tick's records with a
    placeholder where the timestamp goes: at send time only the time is filled in, so the
    load generator takes little of the cores the broker, Redis and the worker share.
    """

    def __init__(self, d: Deployment, events: Sequence[Event], partitions: int) -> None:
        self.d = d
        self.partitions = partitions
        self.stream = iter_forever(events)
        self.probes = 0
        self.sent: dict[str, float] = {}
        self.arrived: dict[str, float] = {}

    async def __aenter__(self) -> SteadyLoad:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.d.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5
        )
        await self.consumer.start()
        tps = [TopicPartition(self.d.actions, p) for p in range(self.partitions)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        self.collector = asyncio.create_task(self._collect())
        self.producer = await start_producer(self.d.bootstrap)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.collector.cancel()
        await self.producer.stop()
        await self.consumer.stop()

    async def _collect(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=50)
            now = time.time()
            for records in batch.values():
                for record in records:
                    plan = (orjson.loads(record.value).get("data") or {}).get("plan")
                    if isinstance(plan, str) and plan in self.sent:
                        self.arrived[plan] = now

    def _plan(self, rate: float, seconds: float) -> list[tuple[list[PackedRecord], list[str], int]]:
        tick = 0.01
        per_tick = max(1, round(rate * tick))
        planned: list[tuple[list[PackedRecord], list[str], int]] = []
        offered = 0
        for _ in range(math.ceil(seconds / tick)):
            batch = [_placeheld(next(self.stream)) for _ in range(per_tick)]
            plans: list[str] = []
            if offered // 100 != (offered + per_tick) // 100:  # about 1% probes
                self.probes += 1
                n = self.probes
                plan = f"probe-{n}"
                batch.append(
                    _placeheld(Event(f"{self.d.prefix}-p{n}", "demo_requested",
                                     f"probe-{n % 500}", 0.0, "", {"plan": plan}))
                )  # fmt: skip
                plans.append(plan)
            planned.append((pack_events(batch, self.partitions), plans, len(batch)))
            offered += per_tick
        return planned

    async def offer(
        self, rate: float, seconds: float, *, drain: float = 30.0
    ) -> tuple[list[tuple[float, float]], float, int]:
        """Offer `rate` events/s for `seconds`, then wait up to `drain` seconds for the
        probes' actions. Returns (sent at, latency) of each probe answered, the rate
        achieved, and how many probes got no action."""
        planned = self._plan(rate, seconds)
        mine: list[str] = []
        send = self.producer.send
        offered = 0
        started = time.monotonic()
        for records, plans, count in planned:
            delay = started + offered / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.time()
            stamp = _stamp(now)
            for plan in plans:
                self.sent[plan] = now
            mine += plans
            for r in records:
                await send(self.d.events, r.value.replace(_PLACEHOLDER, stamp),
                           key=r.key, partition=r.partition)  # fmt: skip
            offered += count
        await self.producer.flush()
        achieved = offered / (time.monotonic() - started)
        deadline = time.monotonic() + drain
        while any(p not in self.arrived for p in mine) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        timed = sorted(
            (self.sent[p], self.arrived[p] - self.sent[p]) for p in mine if p in self.arrived
        )
        return timed, achieved, sum(1 for p in mine if p not in self.arrived)


def keeps_up(timed: Sequence[tuple[float, float]], lost: int) -> bool:
    """Whether the worker kept up with a step's load: every probe answered, and the
    latency of the last third of the step no worse than of its first third (plus 50 ms):
    a worker that falls behind builds a queue, and its latency grows through the step."""
    if lost or len(timed) < 30:
        return False
    third = len(timed) // 3
    first = percentile([lat for _, lat in timed[:third]], 0.5)
    last = percentile([lat for _, lat in timed[-third:]], 0.5)
    return last <= first + 0.05


async def steady(
    args: argparse.Namespace,
    bootstrap: str,
    redis_url: str,
    events: list[Event],
    *,
    rate: float,
    seconds: float,
    logdir: Path,
) -> tuple[list[tuple[float, float]], float, int]:
    """`SteadyLoad.offer` of `rate` for `seconds` after `args.warmup` seconds of the same load
    (not counted), on a fresh deployment: fresh topics (Tansu's memory storage slows down as
    its topics grow: over a minute at 20k events/s its CPU use rose by half and the worker's
    latency with it) and its own Redis keys."""
    d = Deployment(args, bootstrap, redis_url, "latency")
    await d.create()
    d.start_worker(logdir)
    d.wait_assigned()
    try:
        async with SteadyLoad(d, events, args.partitions) as load:
            await load.offer(rate, args.warmup)
            return await load.offer(rate, seconds)
    finally:
        d.stop_workers()


async def phase_latency(
    args: argparse.Namespace,
    bootstrap: str,
    redis_url: str,
    events: list[Event],
    *,
    rate: float | None,
    ceiling: float,
    logdir: Path,
) -> tuple[list[float], float, float | None]:
    """The sustainable rate (unless `rate` is given), then latency at half of it (or `rate`).

    Sustainable: the highest steady offered load the worker keeps up with (`keeps_up`),
    found by bisection between 0 and `ceiling` (the backlog rate) in `args.steps` steps of
    `args.step_seconds` each. Returns the probes' latencies, the rate achieved in the
    latency phase, and the sustainable rate (None when `rate` was given).
    """
    sustainable: float | None = None
    if rate is None:
        low, high = 0.0, ceiling
        for _ in range(args.steps):
            step = (low + high) / 2
            timed, achieved, lost = await steady(
                args, bootstrap, redis_url, events, rate=step, seconds=args.step_seconds,
                logdir=logdir,
            )  # fmt: skip
            ok = keeps_up(timed, lost)
            median = percentile([lat for _, lat in timed], 0.5) * 1000
            print(f"  step {achieved:,.0f} events/s: {'keeps up' if ok else 'falls behind'}"
                  f" (p50 {median:.0f} ms, {lost} probes lost)", file=sys.stderr)  # fmt: skip
            if ok:
                low = step
            else:
                high = step
        if low == 0:
            raise SystemExit(
                "the worker kept up with none of the steps: raise --ceiling or --steps"
            )
        sustainable = low
        rate = low / 2
    timed, achieved, lost = await steady(
        args, bootstrap, redis_url, events, rate=rate, seconds=args.seconds, logdir=logdir
    )
    if lost:
        print(f"  {lost} probes got no action within 30s", file=sys.stderr)
    return [lat for _, lat in timed], achieved, sustainable


_PLACEHOLDER = b"0000-00-00T00:00:00.000Z"  # as long as every `_stamp`


def _placeheld(e: Event) -> Event:
    """The event with the placeholder for its timestamp (filled in when it is sent)."""
    return Event(e.id, e.type, e.contact_id, 0.0, _PLACEHOLDER.decode(), e.properties,
                 e.traits, e.anonymous_id)  # fmt: skip


def _stamp(ts: float) -> bytes:
    """`ts` as ISO 8601 UTC with milliseconds, always 24 characters."""
    whole = int(ts)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))}.{int((ts - whole) * 1000):03d}Z".encode()


def iter_forever(events: Sequence[Event]) -> Iterator[Event]:
    """The events over and over, each round with fresh event and contact ids: none is a
    duplicate, and contacts' states do not grow round after round (ten events a contact, as
    in the list, rather than ten more each round)."""
    round_ = 0
    while True:
        tail = f".{round_}"
        for e in events:
            anonymous = None if e.anonymous_id is None else e.anonymous_id + tail
            yield Event(e.id + tail, e.type, e.contact_id + tail, e.ts, e.timestamp,
                        e.properties, e.traits, anonymous)  # fmt: skip
        round_ += 1


# ----------------------------------------------------------------------------- main


async def main(args: argparse.Namespace) -> None:
    from nudge.devservers import KafkaBroker, RedisServer

    with contextlib.ExitStack() as stack:
        if args.broker:
            bootstrap = bootstrap_servers(args.broker)
        else:
            bootstrap = stack.enter_context(KafkaBroker()).bootstrap
        redis_url = args.redis or stack.enter_context(RedisServer()).url_for(1)
        logdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nudge-bench-")))
        print(f"generating {args.events} events over {args.contacts} contacts...", file=sys.stderr)
        events = shop_events(args.events, args.contacts, args.seed)

        if args.only_latency:
            latencies, offered, sustainable = await phase_latency(
                args, bootstrap, redis_url, events, rate=args.latency_rate,
                ceiling=args.ceiling, logdir=logdir,
            )  # fmt: skip
            if sustainable is not None:
                print(f"sustainable: {sustainable:,.0f} events/s")
            print(f"latency at {offered:,.0f} events/s: {summary(latencies)}")
            return
        load_before = os.getloadavg()[0]
        if args.only_full:
            full, full_cpu = await phase_full(
                args, bootstrap, redis_url, events, workers=1, logdir=logdir
            )
            print(f"full pipeline: {full:,.0f} events/s, {full_cpu:,.0f} per CPU second")
            return
        print("1. trivial faust agent, one event per record", file=sys.stderr)
        single, single_cpu = await phase_trivial(args, bootstrap, events, packed=False)
        print("1b. trivial faust agent, packed records", file=sys.stderr)
        trivial, trivial_cpu = await phase_trivial(args, bootstrap, events, packed=True)
        print("2. full pipeline, one worker", file=sys.stderr)
        full, full_cpu = await phase_full(
            args, bootstrap, redis_url, events, workers=1, logdir=logdir
        )
        print("3. sustainable rate, and latency at half of it", file=sys.stderr)
        latencies, offered, sustainable = await phase_latency(
            args, bootstrap, redis_url, events, rate=args.latency_rate, ceiling=full,
            logdir=logdir,
        )  # fmt: skip
        print("4. full pipeline, two workers", file=sys.stderr)
        two, two_cpu = await phase_full(
            args, bootstrap, redis_url, events, workers=2, logdir=logdir
        )
        load_after = os.getloadavg()[0]

    print(f"machine: {machine()}; load average {load_before:.1f} before, {load_after:.1f} after")
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"events: {len(events)} synthetic shop events, {args.contacts} contacts, "
        f"{args.partitions} partitions, rules {args.rules}, batch {args.batch_records} records"
    )
    print(f"{'':42} {'events/s':>10} {'per CPU s':>10}")
    rows = [
        ("trivial faust agent, one event per record", single, single_cpu),
        ("trivial faust agent, packed records", trivial, trivial_cpu),
        ("full pipeline, one worker", full, full_cpu),
        ("full pipeline, two workers", two, two_cpu),
    ]
    for name, rate, cpu_rate in rows:
        print(f"{name:42} {rate:10,.0f} {cpu_rate:10,.0f}")
    print(
        f"ratio full / trivial one-per-record: {full / single:.2f} "
        f"(per CPU second {full_cpu / single_cpu:.2f}); "
        f"full / trivial packed: {full / trivial:.2f} (per CPU second {full_cpu / trivial_cpu:.2f})"
    )
    print(f"two workers / one: {two / full:.2f}")
    if sustainable is not None:
        print(f"sustainable steady load, one worker: {sustainable:,.0f} events/s")
    print(f"latency event -> action at {offered:,.0f} events/s offered: {summary(latencies)}")


def summary(latencies: Sequence[float]) -> str:
    return (
        f"{len(latencies)} probes, p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
        f"max {max(latencies, default=float('nan')) * 1000:.1f} ms"
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rules", default=str(ROOT / "rules"))
    parser.add_argument("--seconds", type=float, default=15.0, help="latency phase length")
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds of load before probes count"
    )
    parser.add_argument("--batch-records", type=int, default=100)
    parser.add_argument(
        "--latency-rate",
        type=float,
        help="offered events/s for the latency (default: half the sustainable rate)",
    )
    parser.add_argument(
        "--steps", type=int, default=6, help="bisection steps for the sustainable rate"
    )
    parser.add_argument("--step-seconds", type=float, default=8.0, help="length of each step")
    parser.add_argument(
        "--ceiling",
        type=float,
        default=60_000.0,
        help="with --only-latency: the highest rate the search tries (else the backlog rate)",
    )
    parser.add_argument("--only-latency", action="store_true", help="skip the throughput phases")
    parser.add_argument(
        "--echo",
        action="store_true",
        help="with --only-latency: time an echo worker (the worker's faust app answering each "
        "probe at once, no engine, no Redis) instead: the floor on this broker",
    )
    parser.add_argument(
        "--only-full", action="store_true", help="only the one-worker throughput phase"
    )
    parser.add_argument(
        "--worker-args", default="", help='more `nudge worker` flags, e.g. "--fetch-wait 0.1"'
    )
    parser.add_argument("--broker", help="an existing broker (default: start Tansu)")
    parser.add_argument("--redis", help="an existing Redis database URL (default: start one)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.echo and not (args.only_latency and args.latency_rate):
        parser.error("--echo goes with --only-latency --latency-rate N")
    return args


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--trivial-agent":
        b, t, g, n, p = sys.argv[2:7]
        trivial_agent(b, t, g, int(n), int(p))
    elif len(sys.argv) > 1 and sys.argv[1] == "--echo-worker":
        b, ev, ac, g, p = sys.argv[2:7]
        echo_worker(b, ev, ac, g, int(p))
    else:
        asyncio.run(main(parse_args(sys.argv[1:])))
