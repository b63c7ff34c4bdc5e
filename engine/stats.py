"""Per-rule figures: how often each rule fired, what held it back, what it sent, what came of it.

| figure | counted from |
|---|---|
| `fired` | `Decision.rule_counts`: trigger, `if` and `limit` let the rule through |
| `suppressed` | `Decision.rule_counts`, by reason (`no_consent`, `no_address`, `limited`, `capped`) |
| `sent` | `Decision.rule_counts`: actions the engine emitted (a deferred one when it falls due) |
| `delivered` | outcome events `email_sent`, `sms_sent`, `webhook_delivered`, `audience_added`, `audience_removed`, `content_shown` |
| `bounced` | `email_bounced` |
| `failed` | `email_failed`, `sms_failed`, `webhook_failed`, `audience_failed`, `show_failed` |
| `opened` | `email_opened`: emails opened (the event id is one per email, however often) |
| `clicked` | `email_clicked`: one per email and link |
| `unsubscribed` | `unsubscribed` from an email's link |
| `converted` | `Decision.rule_counts`: goal conversions |

Events are attributed to the rule in their `properties.rule` (the connectors and the tracking
links put it there), and each event id is counted once, however often it is processed.
The conversion rate is `converted / fired`: goal events per firing (last-touch attribution:
a contact reaching the goal twice within the window counts twice).

    stats = RuleStats()
    stats.add_decision(decision)            # after a batch or a timer tick
    stats.add_events(events)                # the batch's events
    await store.add(stats.take())           # MemoryStatsStore, or RedisStatsStore
    print(format_table(await store.read()))

In Redis (`RedisStatsStore`) each rule is one hash, `<prefix>:stats:{<rule>}` (field
`fired`, `sent`, `suppressed:no_consent`, ...), and the set `<prefix>:stats:rules` lists the
rules; every command touches one key, so it works on Redis Cluster too. Counted event ids
are remembered as `<prefix>:{<contact_id>}:counted:<event id>` for `dedupe_ttl`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import structlog

from .decision import Decision
from .events import Event

__all__ = [
    "EVENT_FIGURES",
    "FIGURES",
    "CountedEvent",
    "Increments",
    "MemoryStatsStore",
    "RedisStatsStore",
    "RuleFigures",
    "RuleStats",
    "StatsRecorder",
    "StatsStore",
    "StatsWriteError",
    "figures_of",
    "format_json",
    "format_table",
]

FIGURES = (
    "fired",
    "sent",
    "delivered",
    "bounced",
    "failed",
    "opened",
    "clicked",
    "unsubscribed",
    "converted",
)

EVENT_FIGURES: Mapping[str, str] = {
    "email_sent": "delivered",
    "sms_sent": "delivered",
    "webhook_delivered": "delivered",
    "audience_added": "delivered",
    "audience_removed": "delivered",
    "content_shown": "delivered",
    "email_bounced": "bounced",
    "email_failed": "failed",
    "sms_failed": "failed",
    "webhook_failed": "failed",
    "audience_failed": "failed",
    "show_failed": "failed",
    "email_opened": "opened",
    "email_clicked": "clicked",
    "unsubscribed": "unsubscribed",
}

_SUPPRESSED = "suppressed:"
_MAX_HELD_EVENTS = 100_000

_log = structlog.get_logger("nudge.engine.stats")


class CountedEvent(NamedTuple):
    """An event that adds one to `figure` of `rule`, once per `event_id`."""

    contact_id: str
    event_id: str
    rule: str
    figure: str


@dataclass(slots=True)
class Increments:
    """What to add: counts per rule and field, and events to count once each."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    events: list[CountedEvent] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.counts or self.events)

    def merge(self, other: Increments) -> None:
        for rule, fields in other.counts.items():
            mine = self.counts.setdefault(rule, {})
            for name, n in fields.items():
                mine[name] = mine.get(name, 0) + n
        self.events.extend(other.events)


class RuleStats:
    """Collects increments from decisions and events until `take()`; no I/O."""

    def __init__(self) -> None:
        self._pending = Increments()

    def add_decision(self, decision: Decision) -> None:
        counts = self._pending.counts
        for (rule, outcome), n in decision.rule_counts.items():
            fields = counts.get(rule)
            if fields is None:
                fields = counts[rule] = {}
            fields[outcome] = fields.get(outcome, 0) + n

    def add_events(self, events: Iterable[Event]) -> None:
        held = self._pending.events
        for event in events:
            figure = EVENT_FIGURES.get(event.type)
            if figure is None:
                continue
            rule = event.properties.get("rule")
            if isinstance(rule, str) and rule:
                held.append(CountedEvent(event.contact_id, event.id, rule, figure))
        if len(held) > _MAX_HELD_EVENTS:  # the store has been away for long: keep the newest
            _log.warning("stats.events_dropped", count=len(held) - _MAX_HELD_EVENTS)
            del held[: len(held) - _MAX_HELD_EVENTS]

    def take(self) -> Increments:
        """The increments collected so far; the collector starts empty again."""
        taken, self._pending = self._pending, Increments()
        return taken

    def put_back(self, increments: Increments) -> None:
        """Increments a store failed to take: they go out with the next ones."""
        increments.merge(self._pending)
        self._pending = increments


# ------------------------------------------------------------------------------ figures


@dataclass(slots=True)
class RuleFigures:
    rule: str
    fired: int = 0
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    failed: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0
    converted: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)

    @property
    def suppressed_total(self) -> int:
        return sum(self.suppressed.values())

    @property
    def conversion_rate(self) -> float | None:
        """`converted / fired`, or None before the first firing."""
        return self.converted / self.fired if self.fired else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule}
        out.update({name: getattr(self, name) for name in FIGURES})
        out["suppressed"] = dict(sorted(self.suppressed.items()))
        out["conversion_rate"] = self.conversion_rate
        return out


def figures_of(counts: Mapping[str, Mapping[str, int]]) -> list[RuleFigures]:
    """Figures per rule, by rule name, from stored counts (rule -> field -> n)."""
    out: list[RuleFigures] = []
    for rule in sorted(counts):
        figures = RuleFigures(rule)
        for name, n in counts[rule].items():
            if name.startswith(_SUPPRESSED):
                reason = name[len(_SUPPRESSED) :]
                figures.suppressed[reason] = figures.suppressed.get(reason, 0) + n
            elif name in FIGURES:
                setattr(figures, name, getattr(figures, name) + n)
        out.append(figures)
    return out


_COLUMNS = (
    "rule",
    "fired",
    "suppressed",
    "sent",
    "delivered",
    "bounced",
    "opened",
    "clicked",
    "converted",
    "conversion",
)


def format_table(figures: Sequence[RuleFigures], goals: Collection[str] | None = None) -> str:
    """A plain-text table, one line per rule; suppressions with their reasons.

    `goals`, the rules that have a goal, when known: the others show no conversion rate.
    """
    if not figures:
        return "no figures yet\n"
    rows = [list(_COLUMNS)]
    for f in figures:
        suppressed = str(f.suppressed_total)
        if f.suppressed:
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(f.suppressed.items()))
            suppressed += f" ({reasons})"
        rate = f.conversion_rate if goals is None or f.rule in goals else None
        rows.append(
            [
                f.rule,
                str(f.fired),
                suppressed,
                str(f.sent),
                str(f.delivered),
                str(f.bounced),
                str(f.opened),
                str(f.clicked),
                str(f.converted),
                "-" if rate is None else f"{rate:.1%}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(widths[i]) if i in (0, 2) else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def format_json(figures: Sequence[RuleFigures]) -> list[dict[str, Any]]:
    return [f.to_json() for f in figures]


# ------------------------------------------------------------------------------ stores


class StatsStore(Protocol):
    async def add(self, increments: Increments) -> None:
        """Add the counts, and each event once (by id) however often it is given."""
        ...

    async def read(self) -> dict[str, dict[str, int]]:
        """rule -> field -> count."""
        ...

    async def close(self) -> None: ...


class MemoryStatsStore:
    """Figures in this process (embedded mode without Redis, replay)."""

    def __init__(self, *, remember: int = 1_000_000) -> None:
        self.counts: dict[str, dict[str, int]] = {}
        self.remember = remember
        self._seen: dict[str, None] = {}  # counted event ids, oldest first

    async def add(self, increments: Increments) -> None:
        self.add_now(increments)

    def add_now(self, increments: Increments) -> None:
        """`add`, for callers that are not coroutines (it does no I/O)."""
        counts = self.counts
        for rule, fields in increments.counts.items():
            mine = counts.setdefault(rule, {})
            for name, n in fields.items():
                mine[name] = mine.get(name, 0) + n
        seen = self._seen
        for event in increments.events:
            if event.event_id in seen:
                continue
            seen[event.event_id] = None
            mine = counts.setdefault(event.rule, {})
            mine[event.figure] = mine.get(event.figure, 0) + 1
        while len(seen) > self.remember:
            del seen[next(iter(seen))]

    async def read(self) -> dict[str, dict[str, int]]:
        return {rule: dict(fields) for rule, fields in self.counts.items()}

    async def close(self) -> None:
        return None


class StatsWriteError(RuntimeError):
    """A store took part of the increments; `remaining` is what it did not."""

    def __init__(self, remaining: Increments) -> None:
        super().__init__("the figures were only partly written")
        self.remaining = remaining


class RedisStatsStore:
    """Figures in Redis, shared by every worker: one hash per rule (see the module docstring)."""

    def __init__(
        self, redis: Any, *, prefix: str = "nudge", dedupe_ttl: float = 7 * 86_400.0
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.dedupe_ttl = max(1, round(dedupe_ttl))
        self.rules_key = f"{prefix}:stats:rules"

    def rule_key(self, rule: str) -> str:
        return f"{self.prefix}:stats:{{{rule}}}"

    def counted_key(self, contact_id: str, event_id: str) -> str:
        return f"{self.prefix}:{{{contact_id}}}:counted:{event_id}"

    async def add(self, increments: Increments) -> None:
        counts: dict[str, dict[str, int]] = {
            rule: dict(fields) for rule, fields in increments.counts.items()
        }
        events = list({e.event_id: e for e in increments.events}.values())
        if events:
            async with self.redis.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.set(
                        self.counted_key(event.contact_id, event.event_id),
                        b"1",
                        nx=True,
                        ex=self.dedupe_ttl,
                    )
                firsts = await pipe.execute()
            for event, first in zip(events, firsts, strict=True):
                if first:
                    fields = counts.setdefault(event.rule, {})
                    fields[event.figure] = fields.get(event.figure, 0) + 1
        if not counts:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.sadd(self.rules_key, *counts)
                for rule, fields in counts.items():
                    for name, n in fields.items():
                        pipe.hincrby(self.rule_key(rule), name, n)
                await pipe.execute()
        except Exception as exc:
            # The events are marked counted now: what is left to add is plain counts.
            raise StatsWriteError(Increments(counts)) from exc

    async def read(self) -> dict[str, dict[str, int]]:
        rules = sorted(_text(r) for r in await self.redis.smembers(self.rules_key))
        if not rules:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for rule in rules:
                pipe.hgetall(self.rule_key(rule))
            hashes = await pipe.execute()
        return {
            rule: {_text(k): int(v) for k, v in fields.items()}
            for rule, fields in zip(rules, hashes, strict=True)
        }

    async def close(self) -> None:
        await self.redis.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# ------------------------------------------------------------------------------ recorder


class StatsRecorder:
    """Collects figures as decisions are made and writes them to a store every `interval`.

    `record` does no I/O (call it where decisions are handled); a background task flushes.
    A failed flush is logged and its increments go out with the next one.
    """

    def __init__(self, store: StatsStore, *, interval: float = 1.0) -> None:
        self.store = store
        self.interval = interval
        self.stats = RuleStats()
        self._task: asyncio.Task[None] | None = None

    def record(self, decision: Decision, events: Sequence[Event] = ()) -> None:
        if decision.rule_counts:
            self.stats.add_decision(decision)
        if events:
            self.stats.add_events(events)

    async def flush(self) -> None:
        increments = self.stats.take()
        if not increments:
            return
        try:
            await self.store.add(increments)
        except StatsWriteError as exc:
            self.stats.put_back(exc.remaining)
            _log.warning("stats.flush_failed", error=repr(exc.__cause__))
        except Exception as exc:
            self.stats.put_back(increments)
            _log.warning("stats.flush_failed", error=repr(exc))

    def start(self) -> None:
        """Flush every `interval` in the background, on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="nudge-stats")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def close(self) -> None:
        """Stop flushing in the background, write what is left, close the store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        await self.store.close()
