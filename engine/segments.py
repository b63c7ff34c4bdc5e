"""Dynamic segments: re-evaluated after each event and timer; membership changes emit
`segment_entered` / `segment_left` and fire `entered S` / `left S` rules.

Segments whose condition changes as time passes (`days_since(...)`, `now - ...`,
`count(... within D)`; see `nudge.dsl.compile.time_deps`) are kept up to date without
events too: after each evaluation the contact gets one timer, `segments`, due at the next
instant such a condition may turn (a time trait plus an offset, or an event leaving a
window), checked at that instant and one second after it (for `>` against `>=`). When it
fires, the segments are evaluated as after an event; the rules' `event` is then a
`time_passed` event of the contact at that instant (id `<contact>/time_passed/<time>`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nudge.dsl.compile.runtime import to_time
from nudge.dsl.plan import Rule, Segment

from .decision import Context
from .events import Event, format_time
from .state import ContactState, Timer
from .steps import emit_event

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["SEGMENT_CHECK", "SegmentClock", "reevaluate", "schedule_check", "time_passed"]

SEGMENT_CHECK = "segments"  # the timer's id and kind
_NO_BINDINGS: dict[str, Any] = {}


class SegmentClock:
    """The union of the time dependencies of a ruleset's segments."""

    __slots__ = ("offsets", "reads_seen", "scales", "traits", "windows")

    def __init__(self, segments: Sequence[Segment]) -> None:
        traits: set[str] = set()
        offsets: set[float] = set()
        windows: set[tuple[str, float]] = set()
        scales: set[float] = set()
        for seg in segments:
            timing = seg.timing
            if timing is None:
                continue
            traits.update(timing.traits)
            offsets.update(timing.offsets)
            windows.update(timing.windows)
            scales.update(timing.scales)
        self.scales = tuple(sorted(scales))
        self.traits = tuple(sorted(traits))
        # `last_seen` moves with every inbound event without counting as a change
        self.reads_seen = bool(traits & {"last_seen", "first_seen"})
        self.offsets = tuple(sorted(offsets))
        self.windows = tuple(sorted(windows))

    @classmethod
    def of(cls, segments: Sequence[Segment]) -> SegmentClock | None:
        """None when no segment changes with time alone."""
        if not any(seg.timing is not None for seg in segments):
            return None
        return cls(segments)

    def next_check(self, state: ContactState, now: float) -> float | None:
        """The earliest instant after `now` at which a segment of the contact may turn."""
        best = math.inf
        traits = state.traits
        offsets = self.offsets
        if self.scales:  # numbers the contact holds, in days or hours (both directions)
            found: list[float] = []
            for field in self.traits:
                value = traits.get(field)
                if type(value) is int or type(value) is float:
                    found += [sign * value * scale for scale in self.scales for sign in (1, -1)]
            if found:
                offsets = tuple(sorted({*offsets, *found}))
        for field in self.traits:
            at = to_time(traits.get(field))  # as the condition reads it: dates too
            if at is None:
                continue
            for offset in offsets:  # ascending: the first one ahead is this trait's earliest
                turn = at + offset
                if turn > now:
                    best = min(best, turn)
                    break
                if turn + 1.0 > now:
                    best = min(best, turn + 1.0)
                    break
        windows = state.windows
        for wid, seconds in self.windows:
            for ts in windows.get(wid, ()):
                leaves = ts + seconds + 1.0  # counted up to `ts + D` inclusive
                if leaves > now:
                    best = min(best, leaves)
                    break  # ascending
        return None if best == math.inf else best


def time_passed(contact_id: str, at: float) -> Event:
    """The cause of a segment change that time alone brought about."""
    timestamp = format_time(at)
    eid = f"{contact_id}/time_passed/{timestamp}"
    return Event(eid, "time_passed", contact_id, at, timestamp, {}, inbound=False)


def reevaluate(engine: Engine, ctx: Context, cause: Event, cause_id: str | None = None) -> None:
    """Bring `contact.segments` up to date; `cause` is the event (or the timer's event) that
    the change is due to, and `entered`/`left` rules see it as `event`. The ids of the
    `segment_entered`/`segment_left` events start with `cause_id` (default: the cause's id;
    a timer gives one of its own, as its event's id was used when the event came)."""
    segments = engine.segments
    if not segments or ctx.segments_at == ctx.changes:
        return
    # `entered`/`left` rules may change what segments read: evaluate again until they
    # change nothing more (a bounded number of times, as cascades are).
    for _ in range(engine.max_cascade):
        _evaluate(engine, ctx, cause, cause.id if cause_id is None else cause_id, segments)
        if ctx.segments_at == ctx.changes:
            break
    ctx.state.segments_mark = engine.segments_mark
    clock = engine.segment_clock
    if clock is not None and (
        ctx.changes or clock.reads_seen or SEGMENT_CHECK not in ctx.state.timers
    ):
        schedule_check(clock, ctx)


def schedule_check(clock: SegmentClock, ctx: Context) -> None:
    """(Re)arm, move or drop the contact's `segments` timer (unchanged data: it stays)."""
    due = clock.next_check(ctx.state, ctx.now)
    timers = ctx.state.timers
    current = timers.get(SEGMENT_CHECK)
    if due is None:
        if current is not None:
            del timers[SEGMENT_CHECK]
        return
    if current is not None and current.due == due:
        return
    timer = Timer(SEGMENT_CHECK, ctx.state.contact_id, "", SEGMENT_CHECK, due, {})
    timers[SEGMENT_CHECK] = timer
    ctx.d.timers.append(timer)


def _changes(
    segments: Sequence[Segment], members: list[str], traits: Any, now: float, state: ContactState
) -> list[tuple[str, bool]] | None:
    """(segment, inside now) of each segment whose membership differs from `members`."""
    changes: list[tuple[str, bool]] | None = None
    for seg in segments:
        inside = seg.condition(_NO_BINDINGS, traits, now, state) is True
        if inside != (seg.name in members):
            if changes is None:
                changes = []
            changes.append((seg.name, inside))
    return changes


def _apply(
    members: list[str], changes: list[tuple[str, bool]], segments: Sequence[Segment]
) -> list[str]:
    """`members` with the changes: kept in their order, new ones in declaration order."""
    entered = {name for name, inside in changes if inside}
    left = {name for name, inside in changes if not inside}
    return [s for s in members if s not in left] + [s.name for s in segments if s.name in entered]


def _evaluate(
    engine: Engine, ctx: Context, cause: Event, cause_id: str, segments: Sequence[Segment]
) -> None:
    ctx.segments_at = ctx.changes
    traits = ctx.traits
    now = ctx.now
    state = ctx.state
    current = traits.get("segments")
    if type(current) is not list:
        current = []
    changes = _changes(segments, current, traits, now, state)
    if changes is None:
        return
    members = _apply(current, changes, segments)
    if engine.nested_segments:
        # `contact in S` reads the membership being decided: settle it, then report what
        # differs from before the event (at most one pass per segment; a cycle stops there).
        for _ in segments:
            traits["segments"] = members
            more = _changes(segments, members, traits, now, state)
            if more is None:
                break
            members = _apply(members, more, segments)
        changes = [
            (s.name, s.name in members)
            for s in segments
            if (s.name in current) != (s.name in members)
        ] or None
        if changes is None:
            traits["segments"] = current
            return
    traits["segments"] = members
    ctx.changes += 1
    ctx.segments_at = ctx.changes
    # (rule, trigger id): an `entered`/`left` rule's actions derive their ids from the id of
    # the `segment_entered`/`segment_left` event, unique even when a cascade enters twice
    firings: list[tuple[Rule, str]] = []
    for name, inside in changes:
        kind = "segment_entered" if inside else "segment_left"
        if engine.trace:
            ctx.record("segment", None, {"segment": name, "entered": inside})
        trigger_id = emit_event(engine, ctx, kind, {"segment": name}, f"{cause_id}/{name}")
        trigger = "entered" if inside else "left"
        for rule in engine.on_segment.get(name, ()):
            if rule.trigger.kind == trigger:
                firings.append((rule, trigger_id))
    if not firings:
        return
    rank = engine.rank
    firings.sort(key=lambda f: rank[f[0].name])  # rules fire in priority order
    b = {"event": cause, cause.type: cause}
    held = ctx.held
    if held is not None:  # the event's own rules are next: take turns with them
        held.extend((rank[rule.name], rule, b, trigger_id) for rule, trigger_id in firings)
        return
    for rule, trigger_id in firings:
        engine.fire_rule(ctx, rule, b, trigger_id)
