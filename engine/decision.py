"""What one `handle` or `fire` call decided, and the working context it builds it in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nudge.dsl.plan import Rule

from .actions import Action
from .events import Event, format_time
from .state import ContactState, Timer

__all__ = ["Context", "Decision", "HeldFiring", "TraceRecord", "count_rule"]

TraceRecord = dict[str, Any]
# An `entered`/`left` firing waiting for its turn: (rank, rule, bindings, trigger id).
HeldFiring = tuple[int, Rule, dict[str, Event], str]


@dataclass(slots=True)
class Decision:
    """The outcome of handling one event or firing one timer.

    - `actions`: actions due now, in order (deferred ones come later, from their timers).
    - `trace`: with tracing on, every action (suppressed ones too, with `suppressed`) and
      every change record (trait, score, stage, segment, conversion, exit, merge,
      cascade_limit), in the order they happened.
    - `conversions`: goal conversions (also in `trace`), always kept.
    - `suppressed`: how many actions were suppressed, by reason, always kept.
    - `rule_counts`: per (rule name, outcome), always kept: `fired` (trigger, `if` and limit
      let it through), `suppressed:<reason>` (per suppressed action), `sent` (per action
      emitted, deferred ones when their time comes), `converted` (goal conversions).
    - `timers`: timers armed or moved (the runner indexes them until the state is saved).
    - `dirty`: the state changed; `duplicate`: the event had been seen before.
    """

    actions: list[Action] = field(default_factory=list)
    trace: list[Action | TraceRecord] = field(default_factory=list)
    conversions: list[TraceRecord] = field(default_factory=list)
    suppressed: dict[str, int] = field(default_factory=dict)
    rule_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    timers: list[Timer] = field(default_factory=list)
    dirty: bool = False
    duplicate: bool = False


def count_rule(d: Decision, rule: str, outcome: str, n: int = 1) -> None:
    """Add `n` to the decision's count of `outcome` for `rule` (see `Decision.rule_counts`)."""
    counts = d.rule_counts
    key = (rule, outcome)
    counts[key] = counts.get(key, 0) + n


class Context:
    """One contact's working set while an event (and its cascade) or a timer is handled."""

    __slots__ = (
        "_at",
        "_first_id",
        "_ids",
        "changes",
        "d",
        "depth",
        "held",
        "now",
        "queue",
        "segments_at",
        "state",
        "traits",
    )

    def __init__(self, state: ContactState, now: float, d: Decision) -> None:
        self.state = state
        self.traits = state.traits
        self.now = now
        self.d = d
        self.depth = 0
        self.queue: list[tuple[Event, int]] | None = None  # made by the first emitted event
        self._at: str | None = None
        # Bumped by every change a segment condition could see (the traits and windows they
        # read); segments are re-evaluated only when it moved since `segments_at` (the clock
        # is fixed here).
        self.changes = 0
        self.segments_at = -1
        # While set, `entered`/`left` firings wait here to take their turn among the rules of
        # the event (priority order): (rank, rule, bindings, trigger id).
        self.held: list[HeldFiring] | None = None
        # ids of the events made here (`fresh_id`): the first, then all of them in a set
        self._first_id: str | None = None
        self._ids: set[str] | None = None

    def fresh_id(self, event_id: str) -> str:
        """`event_id` for an event made here, or, when one made here has it already (a
        segment entered, left and entered again in one cascade), `<event_id>#2`, `#3`..."""
        ids = self._ids
        if ids is None:
            first = self._first_id
            if first is None:  # the usual case: one event, no set made
                self._first_id = event_id
                return event_id
            ids = self._ids = {first}
        if event_id in ids:
            n = 2
            while f"{event_id}#{n}" in ids:
                n += 1
            event_id = f"{event_id}#{n}"
        ids.add(event_id)
        return event_id

    def make_record(self, kind: str, rule: str | None, fields: dict[str, Any]) -> TraceRecord:
        """A trace record: kind, rule, contact_id, at, then `fields`."""
        return {
            "kind": kind,
            "rule": rule,
            "contact_id": self.state.contact_id,
            "at": self.at,
            **fields,
        }

    def record(self, kind: str, rule: str | None, fields: dict[str, Any]) -> None:
        """Append a trace record."""
        self.d.trace.append(self.make_record(kind, rule, fields))

    @property
    def at(self) -> str:
        """`now` as ISO 8601 UTC text (computed once)."""
        at = self._at
        if at is None:
            at = self._at = _format_time(self.now)
        return at


_day: list[Any] = [None, ""]  # the last day formatted: [epoch of its midnight, "YYYY-MM-DDT"]
_last: list[Any] = [None, ""]  # the last time formatted: [epoch seconds, text]


def _format_time(ts: float) -> str:
    """`format_time`, fast for whole seconds (the usual case): the date part is remembered,
    and the whole text of the last time asked (events in a row often share their second)."""
    last = _last
    if last[0] == ts:
        text: str = last[1]
        return text
    text = _format_new_time(ts)
    last[0], last[1] = ts, text
    return text


def _format_new_time(ts: float) -> str:
    whole = int(ts)
    if whole != ts:
        return format_time(ts)
    second = whole % 86400
    midnight = whole - second
    memo = _day
    if memo[0] != midnight:
        memo[0] = midnight
        memo[1] = format_time(midnight)[:11]
    return f"{memo[1]}{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
