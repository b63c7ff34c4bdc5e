"""Index keys of event matches: a test on one event property that a `where` requires.

`match_key(where, scope, folder, types)` finds, among the terms of the condition's top-level
`and` (or the condition itself), a comparison `E.f OP constant` on the matched event, and
returns it as a `plan.MatchKey`, or None. Equality is preferred (it picks fewer rules).

Only comparisons whose generated code is a plain test of the property's value qualify (see
`codegen._Gen.compare_const`), so the engine can pick rules by value and agree exactly with
what `where` would say about that term:

- `E.f == "text"` where the text does not read as a time: true only for that same string;
- `E.f == N`, `E.f < N`, `E.f <= N`, `E.f > N`, `E.f >= N` with N a number (not a bool):
  true for numbers compared as numbers, and possibly for ISO 8601 strings (read as times);
- `E.f` a single property of the matched event (`b["event"]`), not an envelope name (those
  fall back to the envelope when the property is absent), and no comparison the checker
  knows to be between times (compared as instants).

>>> from nudge.dsl.parse import parse_expression
>>> from nudge.dsl.compile.fold import Folder
>>> expr, _ = parse_expression('order.value > 10 * 5 and contact.vip')
>>> match_key(expr, {"order": "event", "event": "event"}, Folder({}), {})
MatchKey(field='value', op='>', value=50)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .. import ast
from ..plan import MatchKey
from . import runtime
from .fold import NOT_CONSTANT, Folder

__all__ = ["match_key"]

_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}


def match_key(
    where: ast.Expr | None,
    scope: Mapping[str, str],
    folder: Folder,
    types: Mapping[int, str],
) -> MatchKey | None:
    """The key of a match's `where` whose names resolve through `scope` (name -> key of `b`)."""
    if where is None:
        return None
    shadowed = frozenset(n for n in scope if n in folder.lets)
    best: MatchKey | None = None
    for term in _terms(where, folder, shadowed):
        key = _key(term, scope, folder, shadowed, types)
        if key is not None and (best is None or (key.op == "==" and best.op != "==")):
            best = key
    return best


def _terms(expr: ast.Expr, folder: Folder, shadowed: frozenset[str]) -> Iterator[ast.Expr]:
    """The terms of a top-level `and` chain (each must be true for the whole to be)."""
    if isinstance(expr, ast.Logical) and expr.op == "and":
        if folder.value(expr, shadowed) is NOT_CONSTANT:
            yield from _terms(expr.left, folder, shadowed)
            yield from _terms(expr.right, folder, shadowed)
        return
    yield expr


def _key(
    term: ast.Expr,
    scope: Mapping[str, str],
    folder: Folder,
    shadowed: frozenset[str],
    types: Mapping[int, str],
) -> MatchKey | None:
    if not isinstance(term, ast.Compare) or term.op not in _MIRROR:
        return None
    if types and (types.get(id(term.left)) == "time" or types.get(id(term.right)) == "time"):
        return None  # compared as instants
    left = folder.value(term.left, shadowed)
    right = folder.value(term.right, shadowed)
    op = term.op
    other: ast.Expr
    if left is not NOT_CONSTANT and _simple(left):
        op, other, value = _MIRROR[op], term.right, left  # `k < x` is `x > k`
    elif right is not NOT_CONSTANT and _simple(right):
        other, value = term.left, right
    else:
        return None
    field = _event_property(other, scope)
    if field is None:
        return None
    if _is_number(value):
        return MatchKey(field, op, value)
    if op == "==" and type(value) is str and not runtime.is_iso(value):
        return MatchKey(field, op, value)
    return None


def _event_property(expr: ast.Expr, scope: Mapping[str, str]) -> str | None:
    """`f` when `expr` is `E.f` with E naming the matched event (`b["event"]`); event names
    hide lets of the same name, as in the generated code."""
    if not isinstance(expr, ast.Path) or len(expr.parts) != 2:
        return None
    head, field = expr.parts[0].value, expr.parts[1].value
    if head == "contact" and "contact" not in scope:
        return None
    if scope.get(head) != "event" or field in runtime.ENVELOPE:
        return None
    return field


def _simple(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
