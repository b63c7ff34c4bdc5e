"""The checker: `check(ruleset) -> Checked`.

It runs the passes of `PASSES` in order over the whole ruleset (every file at once: names declared
in one file are visible in all), collects every diagnostic and sorts them by location (all of them:
`nudge check` reports every error in one run). Results for later stages go in side tables of
`Checked`, never on the nodes.

A pass is a plain function `check_x(ruleset, ctx) -> list[Diagnostic]`. Passes never raise for a
user's mistake; an exception from a pass is a bug in the checker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .. import ast
from ..codes import diagnostic
from ..diagnostics import Diagnostic, sort_diagnostics
from .context import Context
from .declarations import check_declarations
from .names import check_names
from .rules import check_rules
from .scopes import roots
from .tests import check_tests
from .timing import check_timing
from .types import check_types
from .walk import children

__all__ = ["PASSES", "Checked", "check"]

Pass = Callable[[ast.Ruleset, Context], list[Diagnostic]]

PASSES: tuple[Pass, ...] = (
    check_declarations,
    check_names,
    check_types,  # fills ctx.types; after names, so unknown names are reported once
    check_timing,
    check_rules,
    check_tests,  # reads ctx.types: must run after check_types
)


@dataclass(frozen=True, slots=True)
class Checked:
    ruleset: ast.Ruleset
    diagnostics: tuple[Diagnostic, ...]
    lets: Mapping[str, ast.Let]
    segments: Mapping[str, ast.Segment]
    event_schemas: Mapping[str, Mapping[str, str]]  # event type -> field -> type name
    contact_schema: Mapping[str, str] | None
    # id(expression node) -> its static type: string, number, bool, time, duration, list,
    # object, null or any (unknown).
    types: Mapping[int, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def check(ruleset: ast.Ruleset) -> Checked:
    ctx = Context.build(ruleset)
    found: list[Diagnostic] = []
    for run in PASSES:
        try:
            found += run(ruleset, ctx)
        except RecursionError:
            found.append(_too_deep(ruleset, ctx))
    return Checked(
        ruleset,
        tuple(sort_diagnostics(found)),
        MappingProxyType(ctx.lets),
        MappingProxyType(ctx.segments),
        MappingProxyType({k: MappingProxyType(v) for k, v in ctx.event_schemas.items()}),
        MappingProxyType(ctx.contact_schema) if ctx.contact_schema is not None else None,
        MappingProxyType(ctx.types),
    )


def _too_deep(ruleset: ast.Ruleset, ctx: Context) -> Diagnostic:
    """Reported at the deepest expression (a long `or` chain is deep too: each `or` holds the
    ones before it)."""
    deepest: ast.Expr | None = None
    most = -1
    for root in roots(ctx):
        depth = _depth(root.expr)
        if depth > most:
            deepest, most = root.expr, depth
    where = deepest.span if deepest is not None else ruleset.files[0].span
    return diagnostic(
        "too-deep",
        "this expression is too long or nests too deeply to check",
        where,
        "split it: smaller conditions, `let` constants or segments",
    )


def _depth(expr: ast.Expr) -> int:
    most = 0
    stack = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        most = max(most, depth)
        stack.extend((child, depth + 1) for child in children(node))
    return most
