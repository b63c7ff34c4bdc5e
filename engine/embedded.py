"""The engine in this process: an `EventSink` that runs each batch at once, and its timers.

`nudge run` puts it behind the HTTP collector (`build_collector(EmbeddedEngine(...))`), so an
accepted request has been through the rules when it is answered:

    embedded = EmbeddedEngine(Runner(Engine(ruleset), MemoryStore(), WallClock()), on_decision)
    await embedded.accept(events)       # the collector calls this
    await embedded.tick()               # every `timer_interval`: fire the timers now due
    await embedded.swap(Engine(new))    # a reloaded ruleset, from the next batch on

Batches, timers and swaps take turns under one lock, so a contact's events and timers never
interleave and `on_decision` sees decisions in the order they were made (it runs under the
lock: keep it quick, hand slow work to tasks). An event the engine fails on (a bug, not bad
input) is logged, counted and skipped; the rest of its batch runs.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from .decision import Decision
from .engine import Engine
from .events import Event, Rejected
from .runner import Runner

__all__ = ["EmbeddedEngine", "EmbeddedStats", "OnDecision", "OnReject"]

OnDecision = Callable[[Decision, Sequence[Event]], None]
"""Receives each decision with the events that made it (none for timers), in order."""

OnReject = Callable[[Sequence[Rejected]], Awaitable[None]]
"""Sets malformed input aside (the caller's rejects file); awaited before the request is
answered."""

_log = structlog.get_logger("nudge.engine.embedded")


@dataclass(slots=True)
class EmbeddedStats:
    events: int = 0
    rejected: int = 0
    engine_errors: int = 0
    actions: int = 0
    reloads: int = 0


class EmbeddedEngine:
    """Runs the engine over each accepted batch, in this process. An `EventSink`."""

    def __init__(
        self, runner: Runner, on_decision: OnDecision, on_reject: OnReject | None = None
    ) -> None:
        self.runner = runner
        self.on_decision = on_decision
        self.on_reject = on_reject
        self.stats = EmbeddedStats()
        self._lock = asyncio.Lock()

    @property
    def engine(self) -> Engine:
        return self.runner.engine

    # ------------------------------------------------------------------ EventSink

    async def accept(self, events: list[Event]) -> None:
        if not events:
            return
        async with self._lock:
            try:
                decision = await self.runner.process(events)
            except Exception:
                if len(events) == 1:
                    self._engine_error(events[0])
                    return
                # Find the event at fault: run them one at a time (each alone is a batch).
                for event in events:
                    try:
                        decision = await self.runner.process([event])
                    except Exception:
                        self._engine_error(event)
                        continue
                    self._decided(decision, [event])
                return
            self._decided(decision, events)

    async def reject(self, items: list[Rejected]) -> None:
        self.stats.rejected += len(items)
        for item in items:
            _log.warning("embedded.rejected", reason=item.reason, detail=item.detail)
        if self.on_reject is not None and items:
            await self.on_reject(items)

    # ------------------------------------------------------------------ timers, rules

    async def tick(self) -> int:
        """Fire the timers due by now; return how many actions came out."""
        async with self._lock:
            decision = await self.runner.advance(self.runner.clock.now())
            if decision.actions or decision.rule_counts:
                self._decided(decision, ())
            return len(decision.actions)

    async def run_timers(self, interval: float) -> None:
        """Tick every `interval` seconds until cancelled; a failed tick is logged and retried."""
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("embedded.timers_failed", error=repr(exc), retry_in=interval)
            await asyncio.sleep(interval)

    async def swap(self, engine: Engine) -> None:
        """Run `engine` (a new ruleset) from the next batch on."""
        async with self._lock:
            self.runner.engine = engine
            self.stats.reloads += 1

    # ------------------------------------------------------------------ helpers

    def _decided(self, decision: Decision, events: Sequence[Event]) -> None:
        self.stats.events += len(events)
        self.stats.actions += len(decision.actions)
        self.on_decision(decision, events)

    def _engine_error(self, event: Event) -> None:
        self.stats.engine_errors += 1
        _log.error(
            "embedded.engine_error",
            event_id=event.id,
            contact_id=event.contact_id,
            error="".join(traceback.format_exc()).strip(),
        )
