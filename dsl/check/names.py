"""Names: every name in an expression, alias and segment reference must mean something here."""

from __future__ import annotations

from collections.abc import Iterator

from .. import ast
from ..codes import diagnostic
from ..diagnostics import Diagnostic, did_you_mean, hint, or_list
from .context import ENGINE_EVENTS, KEYWORDS, Context
from .scopes import Scope, count_scope, resolve, roots, visible_names
from .walk import children, decl_expressions, subexpressions, trigger_matches

# Literals as other languages write them.
_OTHER_LITERALS = {
    "True": "true", "TRUE": "true", "False": "false", "FALSE": "false",
    "None": "null", "NULL": "null", "Null": "null", "nil": "null", "undefined": "null",
}  # fmt: skip


def check_names(ruleset: ast.Ruleset, ctx: Context) -> list[Diagnostic]:
    """Unknown names, aliases and segments; events used where they are not bound; constants that
    read what changes; aliases that clash.

    >>> rule r
    >>>     when cart_updated as cart where crat.value > 0      # unknown-name
    >>>     then
    >>>         score += 1
    >>> end
    """
    out: list[Diagnostic] = []
    for root in roots(ctx):
        if root.scope.constant:
            out += _constant(root.expr, root.scope, ctx)
            continue
        for expr, scope in _scoped(root.expr, root.scope):
            out += _expression(expr, scope, ctx)
    for decl in ruleset.decls():
        if isinstance(decl, ast.Let | ast.Segment):
            out += _reserved(decl.name, "a constant" if isinstance(decl, ast.Let) else "a segment")
        if isinstance(decl, ast.Rule):
            out += _aliases(decl, ctx)
            for step in decl.steps:
                if isinstance(step, ast.Emit):  # `emit then`: no rule could wait for it
                    out += _reserved(step.event, "an event type")
            trigger = decl.trigger
            if isinstance(trigger, ast.SegmentChange):
                out += _segment_ref(trigger.segment, ctx)
    out += _segment_cycles(ctx)
    for name in _rule_event_names(ruleset):  # `exit on` + `once` on the next line: `exit on once`
        if name.value in _NEVER_EVENT_TYPES:
            out.append(
                diagnostic(
                    "reserved-name",
                    f"`{name.value}` is a keyword and cannot name an event type",
                    name.span,
                    "",
                    "was an event type left out before it (`exit on <event>`, `goal <event>`)?",
                )
            )
    out += _misspelt_events(ruleset, ctx)
    return out


# Keywords that cannot be meant as an event type: taken for one, they are the next line's
# clause read as the name a line above lacked (`exit on`, then `once`). Other keywords may
# name event types (`when test`, `when score`), as LANGUAGE.md allows any such name.
_NEVER_EVENT_TYPES = frozenset(
    {"rule", "when", "then", "end", "if", "once", "where", "as", "within", "followed", "not"}
)


def _misspelt_events(ruleset: ast.Ruleset, ctx: Context) -> list[Diagnostic]:
    """Event types the rules wait for that look like a typo of a declared one, or of one the
    engine and the connectors make (`unsubscribe` for `unsubscribed`: without declarations,
    any other type is as good as any other)."""
    known = {*ctx.event_schemas, *ENGINE_EVENTS}
    out: list[Diagnostic] = []
    for name in _rule_event_names(ruleset):
        if name.value in known:
            continue
        best = did_you_mean(name.value, known)
        if best is not None:
            out.append(
                diagnostic(
                    "undeclared-event",
                    f"event type `{name.value}` is not declared (did you mean `{best}`?)",
                    name.span,
                    "",
                    f"declare `event {name.value} {{ ... }}` if it is meant",
                )
            )
    return out


def _rule_event_names(ruleset: ast.Ruleset) -> Iterator[ast.Name]:
    """The event type names of every rule's trigger, `exit on`, `goal`, and of `count(...)` in
    rules and segments."""
    for decl in ruleset.decls():
        if isinstance(decl, ast.Rule):
            trigger = decl.trigger
            if isinstance(trigger, ast.OnEvent | ast.Repeated):
                yield trigger.match.event
            elif isinstance(trigger, ast.FollowedBy | ast.NotFollowedBy):
                yield trigger.first.event
                yield trigger.second.event
            for clause in decl.clauses:
                if isinstance(clause, ast.ExitOn | ast.Goal):
                    yield clause.match.event
        elif not isinstance(decl, ast.Segment):
            continue
        for root in decl_expressions(decl):
            for node in subexpressions(root):
                if isinstance(node, ast.Count):
                    yield node.event


def _constant(expr: ast.Expr, scope: Scope, ctx: Context) -> list[Diagnostic]:
    """A constant or test data: report the outermost part that is not constant, once."""
    out: list[Diagnostic] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        problem = _not_constant(node, scope)
        if problem is not None:
            out.append(problem)
            continue
        if isinstance(node, ast.Path):
            out += _path(node, scope, ctx)
        stack.extend(children(node))
    return out


def _scoped(expr: ast.Expr, scope: Scope) -> Iterator[tuple[ast.Expr, Scope]]:
    """Every sub-expression with its scope (a `count(...)` condition has its own)."""
    stack: list[tuple[ast.Expr, Scope]] = [(expr, scope)]
    while stack:
        node, here = stack.pop()
        yield node, here
        inner = count_scope(node, here) if isinstance(node, ast.Count) else here
        stack.extend((child, inner) for child in reversed(children(node)))


def _expression(expr: ast.Expr, scope: Scope, ctx: Context) -> list[Diagnostic]:
    if isinstance(expr, ast.Path):
        return _path(expr, scope, ctx)
    if isinstance(expr, ast.InSegment):
        return _segment_ref(expr.segment, ctx)
    return []


_LITERAL_NODES = (ast.Literal, ast.Duration, ast.ListExpr, ast.ObjectExpr)


def _not_constant(expr: ast.Expr, scope: Scope) -> Diagnostic | None:
    if scope.place == "test data":
        if isinstance(expr, _LITERAL_NODES):
            return None
        return diagnostic(
            "not-constant",
            "test data must be a literal value",
            expr.span,
            "",
            "values in tests are literals: strings, numbers, true/false, null, lists, objects",
        )
    what: str | None = None
    # `now` and `days_since`/`hours_since` are allowed: such a `let` is expanded where it is
    # used (`let cutoff = now - 30d`), so it reads the clock of that moment.
    if isinstance(expr, ast.Count):
        what = "`count(...)`"
    elif isinstance(expr, ast.InSegment):
        what = "segment membership"
    elif isinstance(expr, ast.Path) and expr.head in ("contact", "event"):
        what = f"`{expr.head}`"
    if what is None:
        return None
    return diagnostic(
        "not-constant",
        f"a constant cannot use {what}",
        expr.span,
        "",
        "a `let` holds no contact or event data (only literals, constants and `now`); "
        "put conditions on the contact in a segment or in the rule",
    )


def _path(path: ast.Path, scope: Scope, ctx: Context) -> list[Diagnostic]:
    head = path.parts[0]
    found = resolve(scope, head.value, ctx)
    if found.kind == "unknown" and head.value in KEYWORDS and len(path.parts) == 1:
        # `score +=` with its value missing, read on into the next line's `wait`
        return [
            diagnostic(
                "unknown-name",
                f"expected a value, found the keyword `{head.value}`",
                head.span,
                "is something missing before it?",
                _what_names_are(scope),
            )
        ]
    if found.kind == "unknown":
        literal = _OTHER_LITERALS.get(head.value)
        suggestion = (
            f" (did you mean `{literal}`?)"
            if literal is not None and len(path.parts) == 1
            else hint(head.value, visible_names(scope, ctx))
        )
        return [
            diagnostic(
                "unknown-name",
                f"unknown name `{head.value}`{suggestion}",
                head.span,
                "",
                _what_names_are(scope),
            )
        ]
    if found.kind == "hidden":
        return [
            diagnostic(
                "unbound-event",
                f"`{head.value}` is not available here",
                head.span,
                "",
                found.why,
            )
        ]
    if found.kind == "binding" and found.binding is not None and found.binding.ambiguous:
        return [
            diagnostic(
                "ambiguous-name",
                f"`{head.value}` could mean either event of this rule",
                head.span,
                "",
                "give the events aliases (`as first`, `as second`) and use those; after "
                "`not followed by` the second takes none: it is `event`",
            )
        ]
    if found.kind == "let" and found.let is not None and scope.let_limit is not None:
        order = ctx.let_order.get(head.value)
        if order is not None and order >= scope.let_limit:
            message = (
                f"the constant `{head.value}` uses itself"
                if order == scope.let_limit
                else f"the constant `{head.value}` is declared after this one"
            )
            return [
                diagnostic(
                    "let-order",
                    message,
                    head.span,
                    "",
                    f"`{head.value}` is declared at {found.let.name.span}; "
                    "a constant may use only constants declared before it",
                )
            ]
    return []


def _what_names_are(scope: Scope) -> str:
    if scope.constant:
        return "a constant may use literals and constants declared before it"
    parts = ["a `let` constant"]
    if scope.bindings:
        parts.append("an event of this rule (its alias or type name)")
    if scope.event is not None:
        parts.append("`event`")
    if scope.contact:
        parts.append("`contact`")
    return f"a name here is {or_list(parts)}"


def _segment_ref(name: ast.Name, ctx: Context) -> list[Diagnostic]:
    if name.value in ctx.segments:
        return []
    return [
        diagnostic(
            "unknown-segment",
            f"unknown segment `{name.value}`"
            + (hint(name.value, ctx.segments) if ctx.segments else " (no segment is declared)"),
            name.span,
        )
    ]


def _aliases(rule: ast.Rule, ctx: Context) -> list[Diagnostic]:
    """Aliases hiding constants, two events of one rule with one alias, an alias on the event
    that must not come."""
    out: list[Diagnostic] = []
    trigger = rule.trigger
    matches = list(trigger_matches(trigger))
    if isinstance(trigger, ast.NotFollowedBy) and trigger.second.alias is not None:
        alias = trigger.second.alias
        out.append(
            diagnostic(
                "alias-not-allowed",
                "the event after `not followed by` takes no alias",
                alias.span,
                "",
                "it is the event that must not come; inside its `where`, call it "
                + (
                    "`event` (its type is the first event's too)"
                    if trigger.second.event.value == trigger.first.event.value
                    else f"`{trigger.second.event.value}` or `event`"
                ),
            )
        )
    exits = [c.match for c in rule.clauses if isinstance(c, ast.ExitOn | ast.Goal)]
    for match in [*matches, *exits]:
        if match.alias is not None:
            out += _reserved(match.alias, "an alias")
        if match.alias is not None and match.alias.value in ctx.lets:
            alias = match.alias
            out.append(
                diagnostic(
                    "shadowed-name",
                    f"the alias `{alias.value}` hides the constant `{alias.value}`",
                    alias.span,
                    "",
                    f"the constant is declared at {ctx.lets[alias.value].name.span}; "
                    "choose another alias",
                )
            )
        typ = match.event
        if typ.value in ctx.lets:
            out.append(
                diagnostic(
                    "shadowed-name",
                    f"the event type `{typ.value}` hides the constant `{typ.value}` in this rule",
                    typ.span,
                    "",
                    f"the constant is declared at {ctx.lets[typ.value].name.span}; "
                    "rename the constant (the rule reaches the event as `event` or an alias)",
                )
            )
    if len(matches) == 2:
        first, second = matches
        names_first = {first.event.value, first.binding}
        if second.alias is not None and second.alias.value in names_first:
            taken = second.alias.value
            if not (taken == second.event.value == first.event.value):
                out.append(
                    diagnostic(
                        "duplicate-alias",
                        f"`{taken}` already names the first event of this rule",
                        second.alias.span,
                    )
                )
        elif first.alias is not None and first.alias.value == second.event.value:
            out.append(
                diagnostic(
                    "duplicate-alias",
                    f"the alias `{first.alias.value}` is also the type of the second event",
                    first.alias.span,
                )
            )
    return out


def _reserved(name: ast.Name, what: str) -> list[Diagnostic]:
    if name.value not in KEYWORDS:
        return []
    meaning = {
        "event": "`event` always means the event that fired",
        "contact": "`contact` always means the contact",
        "now": "`now` always means the current time",
    }.get(name.value, "keywords keep their meaning everywhere")
    return [
        diagnostic(
            "reserved-name",
            f"`{name.value}` is a keyword and cannot name {what}",
            name.span,
            "",
            meaning,
        )
    ]


def _segment_cycles(ctx: Context) -> list[Diagnostic]:
    """Segments defined through each other (`a` uses `b`, `b` uses `a`)."""
    uses: dict[str, list[ast.InSegment]] = {}
    for name, segment in ctx.segments.items():
        refs: list[ast.InSegment] = []
        stack: list[ast.Expr] = [segment.condition]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.InSegment):
                refs.append(node)
            stack.extend(children(node))
        uses[name] = refs
    out: list[Diagnostic] = []
    reported: set[str] = set()
    for start in ctx.segments:
        path = _cycle_from(start, uses)
        if path is None or start in reported:
            continue
        reported.update(path)
        ref = next(r for r in uses[start] if r.segment.value == path[1 % len(path)])
        chain = " -> ".join([*path, path[0]])
        out.append(
            diagnostic(
                "segment-cycle",
                f"the segment `{start}` depends on itself ({chain})",
                ref.span,
            )
        )
    return out


def _cycle_from(start: str, uses: dict[str, list[ast.InSegment]]) -> list[str] | None:
    """The segments of a cycle through `start`, starting with it; None when there is none."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for ref in uses.get(node, ()):
            target = ref.segment.value
            if target == start:
                return path
            if target in uses and target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None
