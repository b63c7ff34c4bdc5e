"""Which names an expression can see, by where it stands.

`roots(ctx)` yields every top-level expression of the ruleset with its `Scope` and `role`;
`resolve(scope, name, ctx)` says what a path's head means there. The visibility rules are those of
LANGUAGE.md §3 and the language reference: in `followed by`, `event` is the second event and both
are bound; in `not followed by`, `event` is the first and the second is visible only inside its own
`where`; inside `count(E ...)` only `E` (also as `event`), the contact and constants are visible; a
segment and a test's `expect ... has` see the contact and constants; a `let` and test data are
constants. The `where` of an `exit on` sees its own event and the trigger's events (its own
names win a clash); a `goal`'s sees only its own event.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from .. import ast
from .context import Context
from .walk import step_expressions

Role = Literal["condition", "value", "data"]


@dataclass(frozen=True, slots=True)
class Binding:
    """An event reachable by a name: its type (None when unknown) and the match that bound it."""

    event_type: str | None
    match: ast.EventMatch | None = None
    ambiguous: bool = False


@dataclass(frozen=True, slots=True)
class Scope:
    place: str  # where the expression stands, for messages: "a segment", "this rule", ...
    bindings: Mapping[str, Binding] = field(default_factory=dict)
    event: Binding | None = None  # what `event` means; None: not available here
    contact: bool = True
    constant: bool = False  # a `let` or test data: literals and earlier constants only
    hidden: Mapping[str, str] = field(default_factory=dict)  # event name -> why it is not visible
    let_limit: int | None = None  # a `let`'s own position: only constants before it


@dataclass(frozen=True, slots=True)
class Root:
    expr: ast.Expr
    scope: Scope
    role: Role
    decl: ast.Decl


@dataclass(frozen=True, slots=True)
class Resolved:
    kind: Literal["binding", "event", "contact", "let", "hidden", "unknown"]
    binding: Binding | None = None
    let: ast.Let | None = None
    why: str = ""  # for "hidden": why the name cannot be used here


def resolve(scope: Scope, name: str, ctx: Context) -> Resolved:
    """What the head of a path means in a scope. `contact` is always the contact, even in a
    rule on an event type named `contact` (that event is `event`, or its alias)."""
    if name == "contact":
        if scope.contact:
            return Resolved("contact")
        return Resolved("hidden", why=f"{scope.place} cannot read `contact`")
    if name in scope.bindings:
        return Resolved("binding", binding=scope.bindings[name])
    if name == "event":
        if scope.event is not None:
            return Resolved("event", binding=scope.event)
        return Resolved("hidden", why=f"there is no `event` in {scope.place}")
    if name in scope.hidden:
        return Resolved("hidden", why=scope.hidden[name])
    if name in ctx.lets:
        return Resolved("let", let=ctx.lets[name])
    if name in ctx.event_types:
        ask = f"to ask about earlier events, use `count({name} [where ...] within <duration>)`"
        if scope.bindings or scope.event is not None:
            return Resolved("hidden", why=f"{scope.place} does not trigger on `{name}`; {ask}")
        return Resolved("hidden", why=f"{scope.place} sees no event; {ask}")
    return Resolved("unknown")


def visible_names(scope: Scope, ctx: Context) -> list[str]:
    """Names a misspelt head could have meant."""
    names = [*scope.bindings, *ctx.lets]
    if scope.event is not None:
        names.append("event")
    if scope.contact:
        names.append("contact")
    return names


def count_scope(count: ast.Count, outer: Scope) -> Scope:
    """Inside `count(E where C within D)`: E (also as `event`), the contact and constants."""
    event = count.event.value
    binding = Binding(event)
    why = (
        f"inside `count({event} ...)` only the counted event `{event}`, "
        "the contact and constants are visible"
    )
    hidden = {name: why for name in outer.bindings if name != event}
    return Scope(
        f"`count({event} ...)`",
        {event: binding},
        binding,
        contact=True,
        constant=False,
        hidden=hidden,
    )


# ------------------------------------------------------------------------------- rules


def _bind(match: ast.EventMatch, *, alias: bool = True) -> dict[str, Binding]:
    binding = Binding(match.event.value, match)
    names = {match.event.value: binding}
    if alias and match.alias is not None:
        names[match.alias.value] = binding
    return names


def _merge(*parts: Mapping[str, Binding]) -> dict[str, Binding]:
    """Bindings of several matches; a name bound to two different matches is ambiguous."""
    out: dict[str, Binding] = {}
    for part in parts:
        for name, binding in part.items():
            if name in out and out[name].match is not binding.match:
                out[name] = Binding(None, None, ambiguous=True)
            else:
                out[name] = binding
    return out


@dataclass(frozen=True, slots=True)
class RuleScopes:
    wheres: tuple[tuple[ast.EventMatch, Scope], ...]  # the trigger's `where` conditions
    body: Scope  # `if` and steps
    clauses: tuple[tuple[ast.EventMatch, Scope], ...]  # `exit on` and `goal` conditions


def rule_scopes(rule: ast.Rule) -> RuleScopes:
    here = f"rule `{rule.name.value}`"
    trigger = rule.trigger
    wheres: list[tuple[ast.EventMatch, Scope]] = []
    if isinstance(trigger, ast.OnEvent | ast.Repeated):
        names = _bind(trigger.match)
        event = names[trigger.match.event.value]
        body = Scope(here, names, event)
        wheres.append((trigger.match, Scope(here, names, event)))
    elif isinstance(trigger, ast.FollowedBy | ast.NotFollowedBy):
        first = _bind(trigger.first)
        second = _bind(trigger.second)
        first_event = first[trigger.first.event.value]
        second_event = second[trigger.second.event.value]
        early = {
            n: "the first event's `where` is checked before the second event exists"
            for n in second
            if n not in first
        }
        wheres.append((trigger.first, Scope(here, first, first_event, hidden=early)))
        wheres.append((trigger.second, Scope(here, _merge(first, second), second_event)))
        if isinstance(trigger, ast.FollowedBy):
            body = Scope(here, _merge(first, second), second_event)
        else:
            gone = {
                n: f"`{n}` is the event that did not come: only its own `where` can use it"
                for n in second
                if n not in first
            }
            body = Scope(here, first, first_event, hidden=gone)
    else:  # inactive for / entered / left: `event` is some event of unknown type
        body = Scope(here, {}, Binding(None))
    clauses: list[tuple[ast.EventMatch, Scope]] = []
    for clause in rule.clauses:
        if isinstance(clause, ast.ExitOn):
            # the run's events too: an exit judges each pending run with its own bindings
            own = _bind(clause.match)
            names = {**body.bindings, **own}
            hidden = {n: why for n, why in body.hidden.items() if n not in own}
            event = own[clause.match.event.value]
            clauses.append(
                (clause.match, Scope("an `exit on` condition", names, event, hidden=hidden))
            )
        elif isinstance(clause, ast.Goal):
            own = _bind(clause.match)
            why = "the `where` of a `goal` sees only its own event, the contact and constants"
            hidden = {n: why for n in (*body.bindings, *body.hidden) if n not in own}
            event = own[clause.match.event.value]
            clauses.append((clause.match, Scope("a `goal` condition", own, event, hidden=hidden)))
    return RuleScopes(tuple(wheres), body, tuple(clauses))


# ------------------------------------------------------------------------------- roots

_TEST_DATA = Scope("test data", contact=False, constant=True)


def roots(ctx: Context) -> Iterator[Root]:
    """Every top-level expression of the ruleset, with its scope and role."""
    for decl in ctx.ruleset.decls():
        if isinstance(decl, ast.Let):
            scope = Scope(
                "a constant",
                contact=False,
                constant=True,
                let_limit=ctx.let_order.get(decl.name.value)
                if ctx.lets.get(decl.name.value) is decl
                else None,
            )
            yield Root(decl.value, scope, "value", decl)
        elif isinstance(decl, ast.Segment):
            yield Root(decl.condition, Scope("a segment"), "condition", decl)
        elif isinstance(decl, ast.Rule):
            yield from _rule_roots(decl)
        elif isinstance(decl, ast.Test):
            for item in decl.items:
                if isinstance(item, ast.Given) and item.traits is not None:
                    yield Root(item.traits, _TEST_DATA, "data", decl)
                elif isinstance(item, ast.TestEvent | ast.Expect) and item.data is not None:
                    yield Root(item.data, _TEST_DATA, "data", decl)
                elif isinstance(item, ast.ExpectContact):
                    yield Root(item.condition, Scope("a test's `has`"), "condition", decl)


def _rule_roots(rule: ast.Rule) -> Iterator[Root]:
    scopes = rule_scopes(rule)
    for match, scope in (*scopes.wheres, *scopes.clauses):
        if match.where is not None:
            yield Root(match.where, scope, "condition", rule)
    if rule.condition is not None:
        yield Root(rule.condition, scopes.body, "condition", rule)
    for step in rule.steps:
        for expr in step_expressions(step):
            role: Role = "condition" if isinstance(step, ast.StopIf) else "value"
            yield Root(expr, scopes.body, role, rule)
