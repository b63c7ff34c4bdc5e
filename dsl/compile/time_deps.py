"""When can a segment's condition change with no event at all, only because time passes?

`days_since(contact.last_order_at) > 30`, `now - contact.trial_ends_at > 0s` or
`count(order_completed within 365d) >= 3` change as the clock moves on. The engine keeps
such segments up to date with one timer per contact, due at the next instant one of them
may change. Those instants are found from what this module collects:

- the contact fields that may hold times (every `contact.<field>` of a condition that uses
  `now`, `days_since` or `hours_since`; fields that hold no time are skipped at run time),
- the offsets from such a time at which a comparison may turn: every duration of the
  condition, every number (and product and quotient of two) times a day (`days_since`) or an
  hour (`hours_since`), and 0, each both after and before the time (`renew_at - now < 7d`
  turns 7 days before it); numbers held by the contact's fields are scaled at run time
  (`days_since(contact.x) > contact.trial_days`),
- the windows of its `count(...)`s, each with its length: an event leaves one `D` after it
  happened.

A superset is harmless (a check that changes nothing costs one evaluation); an instant
missed would leave a contact in a segment it has left, so `contact in <segment>` takes in
that segment's dependencies, and named constants (`let`) are looked through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from .. import ast, plan
from ..check.walk import outside_counts
from .canon import window_id

__all__ = ["SegmentDeps", "segment_deps"]

# Traits the engine moves with every inbound event without counting it as a change.
_ACTIVITY = frozenset({"last_seen", "first_seen"})

_DAY = 86400.0
_HOUR = 3600.0


class SegmentDeps(NamedTuple):
    """What a segment's condition depends on, found in one walk of it."""

    timing: plan.SegmentTiming | None  # what makes it change with time alone
    # evaluated at every event of the contact, not only when its data changed: it reads the
    # clock (the segment timer catches the instants this module can follow, the next event
    # the rest), the activity times every inbound event moves, or the whole contact
    each_event: bool
    # the contact's fields it reads (through constants and `contact in` other segments), or
    # None when it reads the contact as a whole: a change to any other field cannot change it
    fields: frozenset[str] | None


def segment_deps(
    condition: ast.Expr,
    lets: Mapping[str, ast.Expr],
    segments: Mapping[str, ast.Expr],
) -> SegmentDeps:
    """`condition`'s dependencies on time and on the contact's data."""
    found = _Found()
    found.walk(condition, lets, segments, set())
    each_event = found.clocked or found.whole_contact or bool(found.fields & _ACTIVITY)
    fields = None if found.whole_contact else frozenset(found.fields)
    return SegmentDeps(_timing(found), each_event, fields)


def _timing(found: _Found) -> plan.SegmentTiming | None:
    if not found.clocked and not found.windows:
        return None
    offsets = {0.0, *found.durations}
    # `days_since(t) * 2 > 10` turns at 5 days, `days_since(t) / 7 >= 2` at 14: the numbers
    # alone, and each by another (products and quotients), in days or hours
    numbers = set(found.numbers)
    numbers.update(a * b for a in found.numbers for b in found.numbers)
    numbers.update(a / b for a in found.numbers for b in found.numbers if b)
    scales = (_DAY,) * found.days + (_HOUR,) * found.hours
    offsets.update(n * scale for n in numbers for scale in scales)
    offsets.update([-o for o in offsets])  # `contact.renew_at - now < 7d`: 7 days before
    return plan.SegmentTiming(
        traits=tuple(sorted(found.fields)) if found.clocked else (),
        offsets=tuple(sorted(offsets)),
        windows=tuple(sorted(found.windows)),
        scales=scales,
    )


class _Found:
    def __init__(self) -> None:
        self.clocked = False  # uses `now`, `days_since` or `hours_since`
        self.days = False
        self.hours = False
        self.fields: set[str] = set()
        self.whole_contact = False  # `contact` itself, not one of its fields
        self.durations: set[float] = set()
        self.numbers: set[float] = set()
        self.windows: set[tuple[str, float]] = set()

    def walk(
        self,
        expr: ast.Expr,
        lets: Mapping[str, ast.Expr],
        segments: Mapping[str, ast.Expr],
        visiting: set[str],
    ) -> None:
        for node in outside_counts(expr):  # a count's own condition waits for its events
            match node:
                case ast.Now():
                    self.clocked = True
                case ast.Duration():
                    self.durations.add(float(node.seconds))
                case ast.Literal(value=value) if type(value) in (int, float):
                    self.numbers.add(abs(float(value)))  # type: ignore[arg-type]
                case ast.Call(name=function):
                    if function.value == "days_since":
                        self.clocked = self.days = True
                    elif function.value == "hours_since":
                        self.clocked = self.hours = True
                case ast.Count(event=event, where=where, within=within):
                    wid = window_id(event.value, where, (event.value, "event"))
                    self.windows.add((wid, float(within.seconds)))
                case ast.Path(parts=parts):
                    head = parts[0].value
                    if head == "contact" and len(parts) > 1:
                        self.fields.add(parts[1].value)
                    elif head == "contact":
                        self.whole_contact = True
                    elif len(parts) == 1 and head in lets and head not in visiting:
                        self.walk(lets[head], lets, segments, visiting | {head})
                case ast.InSegment(segment=segment):
                    key = "segment " + segment.value
                    other = segments.get(segment.value)
                    if other is not None and key not in visiting:
                        self.walk(other, lets, segments, visiting | {key})
