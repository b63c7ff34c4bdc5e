"""The rule language's syntax tree: frozen, slotted dataclasses, each with a `span`, and no logic.

Node names come from the language (LANGUAGE.md). Spans are left out of equality (`compare=False`),
so two trees parsed from differently laid-out text compare equal when they mean the same.
Checker results never go on these nodes: they live in side tables of `Checked`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .source import Span

# --------------------------------------------------------------------------- basics


class Node:
    """Base of every syntax node."""

    __slots__ = ()
    span: Span


def _span() -> Span:
    return field(compare=False, repr=False)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Name(Node):
    """An identifier as written, with its own span (event types, aliases, fields, segments)."""

    value: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Comment(Node):
    """A `#` comment; `text` excludes the `#` and the line break."""

    text: str
    span: Span = _span()


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Literal(Node):
    """`12`, `4.5`, `"text"`, `true`, `false`, `null`."""

    value: str | int | float | bool | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Duration(Node):
    """`30s`, `15m`, `2h`, `7d`, `2w`: an amount and a unit, as written."""

    amount: int
    unit: str  # one of s m h d w
    span: Span = _span()

    @property
    def seconds(self) -> int:
        return self.amount * UNIT_SECONDS[self.unit]


UNIT_SECONDS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class Now(Node):
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ListExpr(Node):
    items: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Entry(Node):
    """One `key: value` of an object literal."""

    key: Name
    value: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ObjectExpr(Node):
    """`{k: expr, ...}`: keys are identifiers or strings, in the order written."""

    entries: tuple[Entry, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Path(Node):
    """`contact.email`, `cart.value`, `a.b.c`, or a bare name (`nordic`, `event`, `now` is `Now`)."""

    parts: tuple[Name, ...]
    span: Span = _span()

    @property
    def head(self) -> str:
        return self.parts[0].value

    @property
    def dotted(self) -> str:
        return ".".join(p.value for p in self.parts)


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str  # "not" or "-"
    operand: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Binary(Node):
    """Arithmetic: `+ - * /`."""

    op: str
    left: Expr
    right: Expr
    span: Span = _span()


COMPARE_OPS = (
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not in",
    "contains",
    "startswith",
    "endswith",
    "matches",
)


@dataclass(frozen=True, slots=True)
class Compare(Node):
    """`== != < <= > >= in, not in, contains, startswith, endswith, matches`."""

    op: str
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Logical(Node):
    """`and` / `or`."""

    op: str
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class IsNull(Node):
    """`x is null` / `x is not null`."""

    operand: Expr
    negated: bool
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Call(Node):
    """`lower(x)`, `len(x)`, `days_since(t)`, ..."""

    name: Name
    args: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Count(Node):
    """`count(E [where C] within D)`: how many matching E the contact had in the last D."""

    event: Name
    where: Expr | None
    within: Duration
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class InSegment(Node):
    """`contact in vip` / `contact not in vip`."""

    segment: Name
    negated: bool
    span: Span = _span()


Expr = (
    Literal
    | Duration
    | Now
    | ListExpr
    | ObjectExpr
    | Path
    | Unary
    | Binary
    | Compare
    | Logical
    | IsNull
    | Call
    | Count
    | InSegment
)

# --------------------------------------------------------------------------- declarations

TYPE_NAMES = ("string", "number", "bool", "time", "list", "object")


@dataclass(frozen=True, slots=True)
class Field(Node):
    """`name: type` in a schema."""

    name: Name
    type: Name
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class EventSchema(Node):
    """`event cart_updated { cart_id: string, value: number }`."""

    name: Name
    fields: tuple[Field, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ContactSchema(Node):
    """`contact { email: string, ... }`."""

    fields: tuple[Field, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Let(Node):
    """`let nordic = ["SE", "NO"]`: a named constant."""

    name: Name
    value: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Segment(Node):
    """`segment vip = contact.total_spent > 1000`: a dynamic segment of contacts."""

    name: Name
    condition: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ChannelPolicy(Node):
    """`policy email limit 3 per 7d`."""

    channel: Name
    count: int
    per: Duration
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class TimeOfDay(Node):
    """`21:00`."""

    hour: int
    minute: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class QuietPolicy(Node):
    """`policy quiet hours 21:00-08:00`: the default quiet hours for email and sms."""

    start: TimeOfDay
    end: TimeOfDay
    span: Span = _span()


# --------------------------------------------------------------------------- triggers


@dataclass(frozen=True, slots=True)
class EventMatch(Node):
    """`E [as a] [where C]`."""

    event: Name
    alias: Name | None
    where: Expr | None
    span: Span = _span()

    @property
    def binding(self) -> str:
        """The name the matched event is reachable by in conditions."""
        return self.alias.value if self.alias else self.event.value


@dataclass(frozen=True, slots=True)
class OnEvent(Node):
    """`E [as a] [where C]`: fires on each matching E."""

    match: EventMatch
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class FollowedBy(Node):
    """`E1 ... followed by E2 ... within D`: fires on the E2."""

    first: EventMatch
    second: EventMatch
    within: Duration
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class NotFollowedBy(Node):
    """`E1 ... not followed by E2 [where C2] within D`: fires D after E1 when no E2 came."""

    first: EventMatch
    second: EventMatch
    within: Duration
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Repeated(Node):
    """`N E [where C] within D`: fires on the E after which the last D holds exactly N."""

    count: int
    match: EventMatch
    within: Duration
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Inactive(Node):
    """`inactive for D`."""

    duration: Duration
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SegmentChange(Node):
    """`entered S` / `left S`."""

    entered: bool
    segment: Name
    span: Span = _span()


Trigger = OnEvent | FollowedBy | NotFollowedBy | Repeated | Inactive | SegmentChange

# --------------------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True)
class Send(Node):
    """`send email|sms|webhook|best "<template or name>" [to <expr>] [with {...}]`."""

    channel: Name
    target: Literal  # a string literal: the template, or the webhook's name
    to: Expr | None
    data: ObjectExpr | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Audience(Node):
    """`audience add "<name>"` / `audience remove "<name>"`."""

    add: bool
    audience: Literal
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Show(Node):
    """`show "<content>" in "<slot>"`."""

    content: Literal
    slot: Literal
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SetTrait(Node):
    """`set contact.<field> = <expr>`."""

    field: Name
    value: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class UnsetTrait(Node):
    """`unset contact.<field>`."""

    field: Name
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Score(Node):
    """`score += N` / `score -= N`."""

    op: str  # "+=" or "-="
    amount: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Emit(Node):
    """`emit <event> [{k: expr, ...}]`."""

    event: Name
    data: ObjectExpr | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Wait(Node):
    """`wait <duration>`: the following steps run after the delay."""

    duration: Duration
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class StopIf(Node):
    """`stop if <condition>`."""

    condition: Expr
    span: Span = _span()


Step = Send | Audience | Show | SetTrait | UnsetTrait | Score | Emit | Wait | StopIf

# --------------------------------------------------------------------------- rule clauses


@dataclass(frozen=True, slots=True)
class ExitOn(Node):
    """`exit on E [where C]`."""

    match: EventMatch
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Limit(Node):
    """`limit N per D`, or `once` (count 1, per None)."""

    count: int
    per: Duration | None
    span: Span = _span()

    @property
    def once(self) -> bool:
        return self.per is None


@dataclass(frozen=True, slots=True)
class QuietHours(Node):
    """`quiet hours HH:MM-HH:MM`, or `no quiet hours` (start and end None)."""

    start: TimeOfDay | None
    end: TimeOfDay | None
    span: Span = _span()

    @property
    def disabled(self) -> bool:
        return self.start is None


@dataclass(frozen=True, slots=True)
class Priority(Node):
    """`priority N` (higher fires first)."""

    value: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Goal(Node):
    """`goal E [where C] within D`."""

    match: EventMatch
    within: Duration
    span: Span = _span()


Clause = ExitOn | Limit | QuietHours | Priority | Goal


@dataclass(frozen=True, slots=True)
class Rule(Node):
    name: Name
    title: str | None
    trigger: Trigger
    condition: Expr | None
    steps: tuple[Step, ...]
    clauses: tuple[Clause, ...]  # in the order written; the checker flags duplicates
    span: Span = _span()

    def clause(self, kind: type[Clause]) -> Clause | None:
        for c in self.clauses:
            if isinstance(c, kind):
                return c
        return None


# --------------------------------------------------------------------------- tests


@dataclass(frozen=True, slots=True)
class Timestamp(Node):
    """`2026-11-20T10:00:00Z` as written (ISO 8601 with an offset)."""

    text: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Given(Node):
    """`given contact c1 { email: "...", ... }`."""

    contact: Name
    traits: ObjectExpr | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class TestEvent(Node):
    """`at <time> <contact> <event> [{...}]` (for `identify`, the object holds traits)."""

    at: Timestamp
    contact: Name
    event: Name
    data: ObjectExpr | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Expect(Node):
    """`expect [no] [at <time>] [<contact>] <kind> ["<target>"] [in "<slot>"] [with {...}]`.

    `kind` is `email`, `sms`, `webhook`, `audience_add`, `audience_remove` or `show` (the action
    kinds of LANGUAGE.md §5b; `audience add` / `audience remove` in the text are read as
    `audience_add` / `audience_remove`); `target` is the template, name, or content; `slot` the
    slot a `show` fills.
    """

    negated: bool
    at: Timestamp | None
    contact: Name | None
    kind: Name
    target: Literal | None
    data: ObjectExpr | None
    slot: Literal | None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ExpectContact(Node):
    """`expect [at <time>] <contact> <condition>`: a condition on the contact's state, e.g.
    `expect c1 contact.score == 15` (checked at that time, or at the end of the test)."""

    at: Timestamp | None
    contact: Name
    condition: Expr
    span: Span = _span()


TestItem = Given | TestEvent | Expect | ExpectContact


@dataclass(frozen=True, slots=True)
class Test(Node):
    name: Literal
    items: tuple[TestItem, ...]
    span: Span = _span()


# --------------------------------------------------------------------------- files

Decl = EventSchema | ContactSchema | Let | Segment | ChannelPolicy | QuietPolicy | Rule | Test


@dataclass(frozen=True, slots=True)
class RuleFile(Node):
    path: str
    decls: tuple[Decl, ...]
    span: Span = _span()
    comments: tuple[Comment, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Ruleset:
    """Every `.rules` file of a folder, in path order."""

    files: tuple[RuleFile, ...]

    def decls(self) -> tuple[Decl, ...]:
        return tuple(d for f in self.files for d in f.decls)
