"""Running `nudge worker` as a subprocess in tests, and producing events to it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from nudge.engine.events import Event
from nudge.engine.kafka_io import pack_events

_ASSIGNED = re.compile(r"worker\.assigned\s+partitions=\[([0-9, ]*)\]")

# Short group timings: a dead worker's partitions move within a few seconds.
FAST_GROUP = [
    "--session-timeout", "3",
    "--heartbeat-interval", "0.5",
    "--rebalance-timeout", "5",
    "--timer-interval", "0.1",
    "--reload-interval", "0.3",
]  # fmt: skip


@dataclass
class Deployment:
    """Topic names, consumer group and Redis database of one test."""

    prefix: str
    broker_url: str
    redis_url: str
    partitions: int = 4

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def actions(self) -> str:
        return f"{self.prefix}.actions"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
        env.update(
            NUDGE_EVENTS_TOPIC=self.events,
            NUDGE_ACTIONS_TOPIC=self.actions,
            NUDGE_DLQ_TOPIC=self.dlq,
            NUDGE_APP_ID=self.prefix,
            NUDGE_LOG_LEVEL="info",
        )
        return env


@dataclass
class WorkerProcess:
    """One `nudge worker` subprocess; its stderr goes to a log file."""

    deployment: Deployment
    rules: Path
    log: Path
    extra: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        d = self.deployment
        argv = [
            sys.executable, "-m", "nudge.cli", "worker",
            "--rules", str(self.rules),
            "--broker", d.broker_url,
            "--redis", d.redis_url,
            "--partitions", str(d.partitions),
            *FAST_GROUP,
            *self.extra,
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.log.parent,
                env=d.env(),
            )
        return self

    @property
    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def assigned(self) -> set[int] | None:
        """The partitions of the latest assignment, or None before the first one."""
        found = _ASSIGNED.findall(self.text)
        if not found:
            return None
        return {int(p) for p in found[-1].replace(" ", "").split(",") if p}

    def assignments(self) -> int:
        return len(_ASSIGNED.findall(self.text))

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


def wait_until(condition: Any, timeout: float, what: str, logs: list[WorkerProcess]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for worker in logs:
            if worker.process is not None and worker.process.poll() not in (None, -9):
                raise AssertionError(f"a worker exited early:\n{worker.text[-3000:]}")
        if time.monotonic() > deadline:
            tails = "\n---\n".join(w.text[-2000:] for w in logs)
            raise AssertionError(f"timed out waiting for {what}:\n{tails}")
        time.sleep(0.1)


def wait_for_split(workers: list[WorkerProcess], partitions: int, timeout: float = 40.0) -> None:
    """Until the live workers' latest assignments cover every partition, each exactly once."""

    def covered() -> bool:
        sets = [w.assigned() for w in workers]
        if any(s is None for s in sets):
            return False
        seen = [p for s in sets if s is not None for p in s]
        return sorted(seen) == list(range(partitions))

    wait_until(covered, timeout, "the partitions to be shared", workers)


def now_iso(offset: float = 0.0) -> tuple[float, str]:
    ts = time.time() + offset
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return ts, text


def event(eid: str, kind: str, contact: str, **properties: Any) -> Event:
    ts, text = now_iso()
    return Event(eid, kind, contact, ts, text, properties)


async def produce(
    producer: AIOKafkaProducer, topic: str, events: list[Event], partitions: int
) -> None:
    acks = [
        await producer.send(topic, r.value, key=r.key, partition=r.partition)
        for r in pack_events(events, partitions)
    ]
    for ack in acks:
        await ack


async def produce_raw(producer: AIOKafkaProducer, topic: str, value: bytes, partition: int) -> None:
    await (await producer.send(topic, value, partition=partition))


def action_values(records: list[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]
