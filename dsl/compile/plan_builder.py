"""Checked syntax to the plan (`plan.RuleSet`): rules, triggers, steps, windows and indexes.

The build walks the ruleset twice. The first walk generates the code of every expression (each
file's functions go into its own `FileUnit`); then each unit is compiled once; the second walk,
identical, builds the plan objects with the compiled functions. Expressions are keyed by node
and role, so both walks agree.

Bindings (which key of `b` an event name reads; see `plan.py`):

| where | `event` and the matched event's own names | the first event's binding |
|---|---|---|
| any `where` of a match (trigger, exit, goal) | the event being matched | - |
| `followed by`: C2, `if`, steps | E2 | E1 (`b[first.binding]`) |
| `not followed by`: C2 | E2 | E1 (`b[first.binding]`) |
| `not followed by`: `if`, steps | E1 | - |
| `count(...)` and window conditions | the counted event | - |
| segments, test expectations | - (null) | - |
"""

from __future__ import annotations

import gc
import hashlib
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from .. import ast, plan
from ..check.walk import outside_counts, subexpressions
from ..plan import Fn
from .canon import expr_text, window_id
from .codegen import FileUnit, Scope
from .fold import Folder
from .keys import match_key
from .tests_compile import CompileError, compile_test
from .time_deps import segment_deps

__all__ = ["CheckedLike", "build_ruleset"]


class CheckedLike(Protocol):
    """What the compiler reads of the checker's result (`check.Checked`)."""

    @property
    def ruleset(self) -> ast.Ruleset: ...

    @property
    def lets(self) -> Mapping[str, ast.Let]: ...

    @property
    def types(self) -> Mapping[int, str]: ...  # id(expr) -> static type, for time comparisons


def origin(span: Any) -> plan.Origin:
    return plan.Origin(span.path, span.line, span.column)


def _pending(b: Mapping[str, Any], c: Mapping[str, Any], now: float, h: Any) -> Any:
    raise RuntimeError("a plan function was called before its file was compiled")


# ---------------------------------------------------------------------------- scopes


def _own(match: ast.EventMatch) -> dict[str, str]:
    """The matched event under all its names: its type, its alias and `event`."""
    return {match.event.value: "event", match.binding: "event", "event": "event"}


def _names_read(expr: ast.Expr) -> set[str]:
    """The names whose fields `expr` reads (path heads), not inside `count(...)`."""
    return {n.parts[0].value for n in outside_counts(expr) if isinstance(n, ast.Path)}


def _with_first(first: ast.EventMatch, second: ast.EventMatch) -> dict[str, str]:
    """E1 by its names (at `b[first.binding]`), then E2 as the event (E2 wins a clash)."""
    return {first.event.value: first.binding, first.binding: first.binding, **_own(second)}


@dataclass(frozen=True, slots=True)
class _Scopes:
    first: dict[str, str]
    second: dict[str, str]
    rule: dict[str, str]


def _scopes(trigger: ast.Trigger) -> _Scopes:
    match trigger:
        case ast.OnEvent(match=m) | ast.Repeated(match=m):
            return _Scopes(_own(m), {}, _own(m))
        case ast.FollowedBy(first=f, second=s):
            both = _with_first(f, s)
            return _Scopes(_own(f), both, both)
        case ast.NotFollowedBy(first=f, second=s):
            return _Scopes(_own(f), _with_first(f, s), _own(f))
    return _Scopes({}, {}, {"event": "event"})


# ---------------------------------------------------------------------------- windows


@dataclass(slots=True)
class _WindowEntry:
    id: str
    event: str
    where: tuple[FileUnit, int] | None
    horizon: float


class _Windows:
    """Distinct (event type, condition) pairs asked for by `count(...)` and `N E within D`."""

    def __init__(self) -> None:
        self.entries: dict[str, _WindowEntry] = {}

    def use(
        self, event: str, where: ast.Expr | None, names: set[str], seconds: float, unit: FileUnit
    ) -> str:
        wid = window_id(event, where, names)
        entry = self.entries.get(wid)
        if entry is None:
            fn = None
            if where is not None:
                scope = Scope(MappingProxyType(dict.fromkeys(names, "event")))
                text = expr_text(where, dict.fromkeys(names, "event"))
                fn = (unit, unit.add(where, scope, f"window {event} where {text}"))
            entry = self.entries[wid] = _WindowEntry(wid, event, fn, float(seconds))
        entry.horizon = max(entry.horizon, float(seconds))
        return wid

    def from_count(self, count: ast.Count, unit: FileUnit) -> str:
        names = {count.event.value, "event"}
        return self.use(count.event.value, count.where, names, count.within.seconds, unit)

    def plan(self) -> dict[str, plan.Window]:
        out: dict[str, plan.Window] = {}
        for wid, e in sorted(self.entries.items()):
            where = e.where[0].fn(e.where[1]) if e.where is not None else None
            out[wid] = plan.Window(wid, e.event, where, e.horizon)
        return out


# ---------------------------------------------------------------------------- the build


@dataclass(slots=True)
class _Parts:
    rules: list[plan.Rule]
    segments: list[plan.Segment]
    policies: dict[str, plan.ChannelPolicy]
    quiet: plan.QuietHours | None
    tests: list[plan.TestCase]


class _Builder:
    def __init__(
        self,
        units: Mapping[str, FileUnit],
        windows: _Windows,
        types: Mapping[int, str],
        lets: Mapping[str, ast.Expr],
        segment_conditions: Mapping[str, ast.Expr],
    ) -> None:
        self.units = units
        self.windows = windows
        self.types = types
        self.built = False
        self._negated: dict[int, ast.Unary] = {}
        # what a segment's condition may read, for `segment_deps`
        self.lets = lets
        self.segment_conditions = segment_conditions

    def fn(
        self, expr: ast.Expr, scope: Mapping[str, str], label: str, *, value: bool = False
    ) -> Fn:
        unit = self.units[expr.span.path] if expr.span.path in self.units else self._any_unit()
        key = unit.add(expr, Scope(MappingProxyType(dict(scope))), label, value=value)
        return unit.fn(key) if self.built else _pending

    def maybe(
        self, expr: ast.Expr | None, scope: Mapping[str, str], label: str, *, value: bool = False
    ) -> Fn | None:
        return None if expr is None else self.fn(expr, scope, label, value=value)

    def _any_unit(self) -> FileUnit:
        return next(iter(self.units.values()))

    # ------------------------------------------------------------------ files

    def run(self, ruleset: ast.Ruleset) -> _Parts:
        parts = _Parts([], [], {}, None, [])
        for file in ruleset.files:
            for decl in file.decls:
                if isinstance(decl, ast.Rule):
                    parts.rules.append(self.rule(decl))
                elif isinstance(decl, ast.Segment):
                    fn = self.fn(decl.condition, {}, f"segment {decl.name.value}")
                    deps = segment_deps(decl.condition, self.lets, self.segment_conditions)
                    reads = deps.fields
                    # `contact.segments contains "a"` reads membership as `contact in a` does
                    nested = (
                        reads is None
                        or "segments" in reads
                        or any(
                            isinstance(node, ast.InSegment)
                            for node in subexpressions(decl.condition)
                        )
                    )
                    parts.segments.append(
                        plan.Segment(
                            decl.name.value,
                            fn,
                            origin(decl.span),
                            deps.timing,
                            nested,
                            deps.each_event,
                            reads,
                        )
                    )
                elif isinstance(decl, ast.ChannelPolicy):
                    channel = decl.channel.value
                    parts.policies[channel] = plan.ChannelPolicy(
                        channel, decl.count, float(decl.per.seconds)
                    )
                elif isinstance(decl, ast.QuietPolicy):
                    parts.quiet = _quiet(decl.start, decl.end)
                elif isinstance(decl, ast.Test):
                    parts.tests.append(compile_test(decl, self.units[file.path], self.built))
        # higher priority first, then by name alphabetically: `alpha` before `Beta` (case
        # aside; code point order breaks what is left of a tie)
        parts.rules.sort(key=lambda r: (-r.priority, r.name.casefold(), r.name))
        return parts

    # ------------------------------------------------------------------ rules

    def rule(self, rule: ast.Rule) -> plan.Rule:
        name = rule.name.value
        scopes = _scopes(rule.trigger)
        trigger = self.trigger(name, rule.trigger, scopes)
        condition = self.maybe(rule.condition, scopes.rule, f"{name}.if")
        steps = tuple(self.step(name, i, s, scopes.rule) for i, s in enumerate(rule.steps))
        exits: list[plan.Match] = []
        limit: plan.Limit | None = None
        quiet: plan.QuietHours | None = None
        priority = 0
        goal: plan.Goal | None = None
        for clause in rule.clauses:
            match clause:
                case ast.ExitOn(match=m):
                    exits.append(self.exit_match(m, scopes.rule, f"{name}.exit{len(exits)}"))
                case ast.Limit(count=n, per=per):
                    limit = plan.Limit(n, float(per.seconds) if per is not None else None)
                case ast.QuietHours(start=start, end=end):
                    quiet = (
                        plan.QuietHours(0, 0)
                        if start is None or end is None
                        else _quiet(start, end)
                    )
                case ast.Priority(value=value):
                    priority = value
                case ast.Goal(match=m, within=within):
                    goal = plan.Goal(self.match(m, _own(m), f"{name}.goal"), float(within.seconds))
        return plan.Rule(
            name=name,
            title=rule.title,
            priority=priority,
            trigger=trigger,
            condition=condition,
            steps=steps,
            exits=tuple(exits),
            limit=limit,
            quiet=quiet,
            goal=goal,
            origin=origin(rule.span),
        )

    def match(self, m: ast.EventMatch, scope: Mapping[str, str], label: str) -> plan.Match:
        where = self.maybe(m.where, scope, label)
        key = None
        if self.built and m.where is not None:
            key = match_key(m.where, scope, self._any_unit().folder, self.types)
        return plan.Match(m.event.value, m.binding, where, key)

    def exit_match(
        self, m: ast.EventMatch, rule_scope: Mapping[str, str], label: str
    ) -> plan.Match:
        """An `exit on`: its own event under its names, and the trigger's events under
        theirs (as a pending run's bindings hold them) when its `where` reads any."""
        own = _own(m)
        trigger_names = {n for n in rule_scope if n != "event"} - own.keys()
        read = _names_read(m.where) & trigger_names if m.where is not None else set()
        if not read:
            return self.match(m, own, label)
        scope = {**{n: n for n in trigger_names}, **own}
        where = self.maybe(m.where, scope, label)
        return plan.Match(m.event.value, m.binding, where, None, per_run=True)

    def trigger(self, name: str, trigger: ast.Trigger, scopes: _Scopes) -> plan.Trigger:
        match trigger:
            case ast.OnEvent(match=m):
                return plan.Trigger("event", first=self.match(m, scopes.first, f"{name}.when"))
            case ast.FollowedBy(first=f, second=s, within=within):
                return plan.Trigger(
                    "followed_by",
                    first=self.match(f, scopes.first, f"{name}.when.first"),
                    second=self.match(s, scopes.second, f"{name}.when.second"),
                    within=float(within.seconds),
                )
            case ast.NotFollowedBy(first=f, second=s, within=within):
                return plan.Trigger(
                    "not_followed_by",
                    first=self.match(f, scopes.first, f"{name}.when.first"),
                    second=self.match(s, scopes.second, f"{name}.when.second"),
                    within=float(within.seconds),
                )
            case ast.Repeated(count=n, match=m, within=within):
                first = self.match(m, scopes.first, f"{name}.when")
                unit = self.units.get(trigger.span.path) or self._any_unit()
                names = {m.event.value, m.binding, "event"}
                wid = self.windows.use(m.event.value, m.where, names, within.seconds, unit)
                return plan.Trigger(
                    "repeated", first=first, within=float(within.seconds), count=n, window=wid
                )
            case ast.Inactive(duration=duration):
                return plan.Trigger("inactive", within=float(duration.seconds))
            case ast.SegmentChange(entered=entered, segment=segment):
                return plan.Trigger("entered" if entered else "left", segment=segment.value)
        raise TypeError(f"unknown trigger {type(trigger).__name__}")  # a compiler bug

    # ------------------------------------------------------------------ steps

    def step(self, rule: str, index: int, step: ast.Step, scope: Mapping[str, str]) -> plan.Step:
        label = f"{rule}.step{index}"
        at = origin(step.span)
        match step:
            case ast.Send(channel=channel, target=target, to=to, data=data):
                return plan.Send(
                    index,
                    channel.value,  # type: ignore[arg-type]  # the checker allows only channels
                    str(target.value),
                    self.maybe(to, scope, f"{label}.to", value=True),
                    self.maybe(data, scope, f"{label}.with", value=True),
                    at,
                )
            case ast.Audience(add=add, audience=audience):
                return plan.AudienceChange(index, add, str(audience.value), at)
            case ast.Show(content=content, slot=slot):
                return plan.Show(index, str(content.value), str(slot.value), at)
            case ast.SetTrait(field=f, value=value):
                return plan.SetTrait(index, f.value, self.fn(value, scope, label, value=True), at)
            case ast.UnsetTrait(field=f):
                return plan.UnsetTrait(index, f.value, at)
            case ast.Score(op=op, amount=amount):
                delta: ast.Expr = amount
                if op == "-=":
                    delta = self._negated.setdefault(
                        id(amount), ast.Unary("-", amount, amount.span)
                    )
                return plan.ScoreChange(index, self.fn(delta, scope, label, value=True), at)
            case ast.Emit(event=event, data=data):
                return plan.Emit(index, event.value, self.maybe(data, scope, label, value=True), at)
            case ast.Wait(duration=duration):
                return plan.Wait(index, float(duration.seconds), at)
            case ast.StopIf(condition=condition):
                return plan.StopIf(index, self.fn(condition, scope, label), at)
        raise TypeError(f"unknown step {type(step).__name__}")  # a compiler bug


def _quiet(start: ast.TimeOfDay, end: ast.TimeOfDay) -> plan.QuietHours:
    return plan.QuietHours(start.hour * 60 + start.minute, end.hour * 60 + end.minute)


# ---------------------------------------------------------------------------- indexes


def _index(rules: tuple[plan.Rule, ...]) -> dict[str, Any]:
    by_event: dict[str, list[plan.Rule]] = {}
    exits: dict[str, list[plan.Rule]] = {}
    goals: dict[str, list[plan.Rule]] = {}
    on_segment: dict[str, list[plan.Rule]] = {}
    inactive: list[plan.Rule] = []

    def add(table: dict[str, list[plan.Rule]], key: str, rule: plan.Rule) -> None:
        bucket = table.setdefault(key, [])
        if not bucket or bucket[-1] is not rule:
            bucket.append(rule)

    for rule in rules:  # already in firing order, so every bucket is too
        t = rule.trigger
        for m in (t.first, t.second):
            if m is not None:
                add(by_event, m.event, rule)
        if t.kind == "inactive":
            inactive.append(rule)
        if t.segment is not None:
            add(on_segment, t.segment, rule)
        for m in rule.exits:
            add(exits, m.event, rule)
        if rule.goal is not None:
            add(goals, rule.goal.match.event, rule)

    def freeze(table: dict[str, list[plan.Rule]]) -> Mapping[str, tuple[plan.Rule, ...]]:
        return MappingProxyType({k: tuple(v) for k, v in table.items()})

    return {
        "by_event": freeze(by_event),
        "exits_by_event": freeze(exits),
        "goals_by_event": freeze(goals),
        "on_segment": freeze(on_segment),
        "inactive": tuple(inactive),
    }


def _fingerprint(ruleset: ast.Ruleset, sources: Mapping[str, str] | None) -> str:
    digest = hashlib.sha256()
    if sources is not None:
        for path in sorted(sources):
            digest.update(path.encode("utf-8") + b"\0" + sources[path].encode("utf-8") + b"\0")
    else:  # no text at hand: the syntax, which leaves out layout and comments
        for file in ruleset.files:
            digest.update(file.path.encode("utf-8") + b"\0" + repr(file.decls).encode("utf-8"))
    return digest.hexdigest()


class _Compiling:
    """While any compilation runs: a higher recursion limit, and the cyclic GC paused.

    The code generator recurses a few frames per level of an expression, more than the parser
    and the checker do, and whatever they accept must compile. Compiling allocates hundreds of
    thousands of short-lived, acyclic syntax nodes (reference counting frees them); left on, the
    cyclic GC would rescan every live object many times over and double the time taken.
    """

    DEPTH = 50_000

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.saved_limit = 0
        self.gc_was_enabled = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self.lock:
            if self.users == 0:
                self.saved_limit = sys.getrecursionlimit()
                sys.setrecursionlimit(max(self.saved_limit, self.DEPTH))
                self.gc_was_enabled = gc.isenabled()
                gc.disable()
            self.users += 1
        try:
            yield
        finally:
            with self.lock:
                self.users -= 1
                if self.users == 0:
                    sys.setrecursionlimit(self.saved_limit)
                    if self.gc_was_enabled:
                        gc.enable()


_compiling = _Compiling()


def build_ruleset(checked: CheckedLike, sources: Mapping[str, str] | None = None) -> plan.RuleSet:
    """The plan of a checked ruleset; `sources` (path -> text) feeds the fingerprint."""
    try:
        with _compiling():
            return _build(checked, sources)
    except RecursionError:
        span = checked.ruleset.files[0].span if checked.ruleset.files else None
        raise CompileError("an expression nests too deeply to compile", span) from None


def _build(checked: CheckedLike, sources: Mapping[str, str] | None) -> plan.RuleSet:
    ruleset = checked.ruleset
    folder = Folder(checked.lets)
    windows = _Windows()
    types = checked.types
    units = {f.path: FileUnit(f.path, folder, windows.from_count, types) for f in ruleset.files}
    if not units:
        units["<empty>"] = FileUnit("<empty>", folder, windows.from_count, types)
    lets = {name: let.value for name, let in checked.lets.items()}
    segment_conditions = {
        decl.name.value: decl.condition
        for file in ruleset.files
        for decl in file.decls
        if isinstance(decl, ast.Segment)
    }
    builder = _Builder(units, windows, types, lets, segment_conditions)
    builder.run(ruleset)  # generates the code of every expression
    for unit in units.values():
        unit.build()
    builder.built = True
    parts = builder.run(ruleset)  # the same walk, now with compiled functions
    rules = tuple(parts.rules)
    window_plans = windows.plan()
    windows_by_event: dict[str, list[plan.Window]] = {}
    for w in window_plans.values():
        windows_by_event.setdefault(w.event, []).append(w)
    return plan.RuleSet(
        rules=rules,
        segments=tuple(parts.segments),
        policies=MappingProxyType(parts.policies),
        quiet_hours=parts.quiet,
        windows=MappingProxyType(window_plans),
        tests=tuple(parts.tests),
        fingerprint=_fingerprint(ruleset, sources),
        windows_by_event=MappingProxyType({k: tuple(v) for k, v in windows_by_event.items()}),
        **_index(rules),
    )
