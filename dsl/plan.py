"""The compiled plan: what the engine runs. Plain data plus generated functions.

`compile_ruleset(checked) -> RuleSet` (in `compile/`) builds it once per ruleset; the engine only
reads it. Nothing here does I/O or knows about stores.

Generated functions (`Fn`) all take the same four arguments, positionally:

    fn(b, c, now, h) -> value

- `b`: bindings, `dict[str, event]`: `"event"` (the event that fired) plus every alias and event
  type name in scope. An event is any object with the attributes `id`, `type`, `contact_id`,
  `ts` (epoch seconds), `timestamp` (ISO string) and `properties` (dict) — the engine's `Event`.
  The compiler resolves every name at compile time, so generated code reads only these keys
  (a missing key reads as null; extra keys are ignored):
  - `b["event"]`: the event being matched, in any `Match.where` (trigger, exit, goal) and in
    `Window.where`; in a rule's `condition` and steps, the event that fired: E2 for
    `followed_by`, E1 for `not_followed_by`, the matching E for `event`/`repeated`, whatever the
    engine has (or nothing) for `inactive`/`entered`/`left`.
  - `b[trigger.first.binding]`: E1, in `second.where` of `followed_by` and `not_followed_by`, and
    in the `condition` and steps of `followed_by`.
  - nothing for `Segment.condition` and `ExpectContact.condition` (`b = {}`).
- `c`: the contact, `dict[str, Any]`: its traits plus `score`, `stage`, `first_seen`,
  `last_seen`, `segments` (list of segment names).
- `now`: epoch seconds (float): the engine's clock.
- `h`: the contact's history, an object with `count(window_id: str, seconds: float, now: float)
  -> int`: how many events matched that window in the last `seconds`.

Conditions return any value; the engine treats only `True` as true (null and everything else
are false: LANGUAGE.md §3). Functions never raise for data: a missing field is `None`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Fn = Callable[[Mapping[str, Any], Mapping[str, Any], float, Any], Any]

TriggerKind = Literal[
    "event", "followed_by", "not_followed_by", "repeated", "inactive", "entered", "left"
]
Channel = Literal["email", "sms", "webhook", "best"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a plan item was written: for traces, test reports and logs."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class MatchKey:
    """A test on one property of the matched event that a `where` requires (the whole
    condition, or a term of its top-level `and`): `where` cannot be true unless
    `E.field OP value` is. `op` is `==`, `<`, `<=`, `>` or `>=`; `value` is a number, or (for
    `==` only) a string that does not read as a time. `field` is never an envelope name.
    The engine uses keys to look rules up by value in big rulesets; it still runs `where`."""

    field: str
    op: str
    value: str | int | float


@dataclass(frozen=True, slots=True)
class Match:
    """`E [as a] [where C]`: `binding` is the alias, else the event type. `per_run`: an
    `exit on` whose `where` reads the trigger's events, judged for each pending run of the rule
    with that run's bindings (the events under their own names, `event` the exit's)."""

    event: str
    binding: str
    where: Fn | None
    key: MatchKey | None = None
    per_run: bool = False


@dataclass(frozen=True, slots=True)
class Window:
    """A sliding window of one contact's matching events, kept by the engine for `count(...)`
    and `N E within D`. Windows with the same event and condition share one id (stable across
    reloads: it is derived from the event type and the condition's text)."""

    id: str
    event: str
    where: Fn | None  # evaluated with b = {"event": e, <event type>: e}
    horizon: float  # the longest duration any user of the window asks for, in seconds


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: TriggerKind
    first: Match | None = None  # event, followed_by, not_followed_by, repeated
    second: Match | None = None  # followed_by (fires on it), not_followed_by (cancels)
    within: float | None = None  # seconds: followed_by, not_followed_by, repeated, inactive
    count: int | None = None  # repeated
    window: str | None = None  # repeated: the Window id
    segment: str | None = None  # entered, left


# ------------------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True)
class Send:
    index: int  # position among the rule's steps: part of the action id
    channel: Channel
    target: str  # template (email, sms, best) or endpoint name (webhook)
    to: Fn | None  # None: the channel's default (contact.email / contact.phone)
    data: Fn | None  # returns a dict
    origin: Origin


@dataclass(frozen=True, slots=True)
class AudienceChange:
    index: int
    add: bool
    audience: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class Show:
    index: int
    content: str
    slot: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class SetTrait:
    index: int
    field: str
    value: Fn
    origin: Origin


@dataclass(frozen=True, slots=True)
class UnsetTrait:
    index: int
    field: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class ScoreChange:
    index: int
    delta: Fn  # already negated for `score -= N`
    origin: Origin


@dataclass(frozen=True, slots=True)
class Emit:
    index: int
    event: str
    data: Fn | None  # returns a dict
    origin: Origin


@dataclass(frozen=True, slots=True)
class Wait:
    index: int
    seconds: float
    origin: Origin


@dataclass(frozen=True, slots=True)
class StopIf:
    index: int
    condition: Fn
    origin: Origin


Step = Send | AudienceChange | Show | SetTrait | UnsetTrait | ScoreChange | Emit | Wait | StopIf


# ------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Minutes after local midnight; `start > end` wraps past midnight (21:00-08:00)."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    per: float | None  # seconds; None means `once` (ever)


@dataclass(frozen=True, slots=True)
class Goal:
    match: Match
    within: float


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    title: str | None
    priority: int
    trigger: Trigger
    condition: Fn | None
    steps: tuple[Step, ...]
    exits: tuple[Match, ...]
    limit: Limit | None
    # The rule's own quiet hours; None: use the ruleset's policy; `no quiet hours` gives
    # QuietHours(0, 0), an empty period.
    quiet: QuietHours | None
    goal: Goal | None
    origin: Origin


@dataclass(frozen=True, slots=True)
class SegmentTiming:
    """What makes a segment's condition change as time passes (`compile/time_deps.py`): it may
    turn at `T + offset` for a time `T` in one of the contact's `traits`, and when an event
    leaves one of the `windows` (`(window id, seconds)`)."""

    traits: tuple[str, ...]
    offsets: tuple[float, ...]
    windows: tuple[tuple[str, float], ...]
    # a day and/or an hour when `days_since`/`hours_since` is used: numbers in the traits
    # count as offsets in those units too
    scales: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    condition: Fn  # evaluated with b = {} and the contact
    origin: Origin
    timing: SegmentTiming | None = None  # None: only events change it
    reads_segments: bool = False  # uses `contact in <segment>`
    # reads the clock or the activity times: evaluated at every event, not only on changes
    each_event: bool = False
    # the contact's fields it reads, through constants and other segments (None: any);
    # the windows it counts are in `timing.windows`
    reads: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    channel: str
    count: int
    per: float


# ------------------------------------------------------------------------- tests


@dataclass(frozen=True, slots=True)
class TestEvent:
    at: float  # epoch seconds
    timestamp: str  # as written
    contact: str
    event: str
    data: dict[str, Any]  # properties, or traits for `identify`
    origin: Origin


@dataclass(frozen=True, slots=True)
class ExpectAction:
    negated: bool
    at: float | None
    contact: str | None
    kind: str  # email, sms, webhook, audience_add, audience_remove, show
    target: str | None
    data: dict[str, Any] | None  # a subset the action's data must contain
    text: str  # the expectation as written, for reports
    origin: Origin
    slot: str | None = None  # a `show`'s slot


@dataclass(frozen=True, slots=True)
class ExpectContact:
    at: float | None  # None: at the end of the test
    contact: str
    condition: Fn  # evaluated with b = {} and that contact
    text: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class TestCase:
    name: str
    contacts: dict[str, dict[str, Any]]  # given traits by contact id
    events: tuple[TestEvent, ...]  # in time order
    expects: tuple[ExpectAction | ExpectContact, ...]
    origin: Origin


# ------------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]  # firing order: priority (higher first), then name
    segments: tuple[Segment, ...]
    policies: Mapping[str, ChannelPolicy]  # by channel
    quiet_hours: QuietHours | None  # the default for email and sms
    windows: Mapping[str, Window]  # by id
    tests: tuple[TestCase, ...]
    fingerprint: str  # hash of the sources: tells one loaded ruleset from another

    # Indexes, built by the compiler so the engine touches only what an event can affect.
    by_event: Mapping[str, tuple[Rule, ...]] = field(
        default_factory=dict
    )  # first/second/repeated match
    exits_by_event: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    goals_by_event: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    windows_by_event: Mapping[str, tuple[Window, ...]] = field(default_factory=dict)
    inactive: tuple[Rule, ...] = ()
    on_segment: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)  # entered/left

    def rule(self, name: str) -> Rule | None:
        for r in self.rules:
            if r.name == name:
                return r
        return None
