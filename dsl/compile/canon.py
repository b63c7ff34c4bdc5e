"""Expressions back to text, in one canonical layout.

Used where the compiler needs a stable name for a condition (window ids: the same condition,
however it was laid out, gives the same id across reloads) and to quote test expectations in
reports. Parentheses appear only where precedence needs them.

>>> from nudge.dsl.parse import parse_expression
>>> expr, _ = parse_expression("(a.x+1)>2 and not(b  in [1,2])")
>>> expr_text(expr)
'a.x + 1 > 2 and not b in [1, 2]'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from .. import ast

__all__ = ["expect_text", "expr_text", "window_id"]

# Binding strength, loosest first (LANGUAGE.md, "Operators").
_OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _UNARY, _PRIMARY = range(8)


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _number(value: int | float) -> str:
    return repr(value)


def _literal(value: str | int | float | bool | None) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _string(value)
    return _number(value)


def _key(name: str) -> str:
    return name if name.isidentifier() and name.isascii() else _string(name)


def _level(expr: ast.Expr) -> int:
    if isinstance(expr, ast.Logical):
        return _OR if expr.op == "or" else _AND
    if isinstance(expr, ast.Unary):
        return _NOT if expr.op == "not" else _UNARY
    if isinstance(expr, ast.Compare | ast.IsNull | ast.InSegment):
        return _COMPARE
    if isinstance(expr, ast.Binary):
        return _SUM if expr.op in "+-" else _PRODUCT
    if (
        isinstance(expr, ast.Literal)
        and isinstance(expr.value, int | float)
        and not isinstance(expr.value, bool)
        and expr.value < 0
    ):
        return _UNARY
    return _PRIMARY


class _Printer:
    def __init__(self, rename: Mapping[str, str]) -> None:
        self.rename = rename

    def wrap(self, expr: ast.Expr, least: int) -> str:
        text = self.text(expr)
        return f"({text})" if _level(expr) < least else text

    def text(self, expr: ast.Expr) -> str:
        match expr:
            case ast.Literal(value=value):
                return _literal(value)
            case ast.Duration(amount=amount, unit=unit):
                return f"{amount}{unit}"
            case ast.Now():
                return "now"
            case ast.ListExpr(items=items):
                return "[" + ", ".join(self.text(i) for i in items) + "]"
            case ast.ObjectExpr():
                return self.obj(expr)
            case ast.Path(parts=parts):
                head = self.rename.get(parts[0].value, parts[0].value)
                return ".".join([head, *(p.value for p in parts[1:])])
            case ast.Unary(op="not", operand=operand):
                return "not " + self.wrap(operand, _NOT)
            case ast.Unary(operand=operand):
                return "-" + self.wrap(operand, _UNARY)
            case ast.Binary(op=op, left=left, right=right):
                level = _SUM if op in "+-" else _PRODUCT
                return f"{self.wrap(left, level)} {op} {self.wrap(right, level + 1)}"
            case ast.Compare(op=op, left=left, right=right):
                return f"{self.wrap(left, _SUM)} {op} {self.wrap(right, _SUM)}"
            case ast.Logical(op=op, left=left, right=right):
                level = _OR if op == "or" else _AND
                return f"{self.wrap(left, level)} {op} {self.wrap(right, level + 1)}"
            case ast.IsNull(operand=operand, negated=negated):
                return f"{self.wrap(operand, _SUM)} is {'not ' if negated else ''}null"
            case ast.Call(name=name, args=args):
                return f"{name.value}(" + ", ".join(self.text(a) for a in args) + ")"
            case ast.Count(event=event, where=where, within=within):
                inner = event.value
                if where is not None:
                    inner += " where " + self.text(where)
                return f"count({inner} within {within.amount}{within.unit})"
            case ast.InSegment(segment=segment, negated=negated):
                return f"contact {'not in' if negated else 'in'} {segment.value}"
        raise TypeError(f"not an expression: {expr!r}")  # pragma: no cover - a compiler bug

    def obj(self, expr: ast.ObjectExpr) -> str:
        if not expr.entries:
            return "{}"
        body = ", ".join(f"{_key(e.key.value)}: {self.text(e.value)}" for e in expr.entries)
        return "{ " + body + " }"


def expr_text(expr: ast.Expr, rename: Mapping[str, str] | None = None) -> str:
    """`expr` in canonical layout; `rename` replaces the heads of paths (e.g. an alias by `event`)."""
    return _Printer(rename or {}).text(expr)


def expect_text(expect: ast.Expect | ast.ExpectContact) -> str:
    """A test expectation as text, for reports."""
    printer = _Printer({})
    words = ["expect"]
    if isinstance(expect, ast.Expect) and expect.negated:
        words.append("no")
    if expect.at is not None:
        words += ["at", expect.at.text]
    if expect.contact is not None:
        ref = expect.contact.value
        words.append(ref if ref.isidentifier() else _string(ref))
    if isinstance(expect, ast.ExpectContact):
        words += ["has", printer.text(expect.condition)]
        return " ".join(words)
    words.append(expect.kind.value)
    if expect.target is not None and isinstance(expect.target.value, str):
        words.append(_string(expect.target.value))
    if expect.slot is not None and isinstance(expect.slot.value, str):
        words += ["in", _string(expect.slot.value)]
    if expect.data is not None:
        words += ["with", printer.obj(expect.data)]
    return " ".join(words)


def window_id(event: str, where: ast.Expr | None, names: Iterable[str]) -> str:
    """`w:<event>:<digest>`: the id of the window of `event` matching `where`, in which `names`
    are the counted event (so `count(E where E.x ...)` and `N E as e where e.x ...` share one).
    Stable across reloads and layouts. `contact` is never one of them: it is the contact."""
    counted = dict.fromkeys(names, "event")
    counted.pop("contact", None)
    text = expr_text(where, counted) if where is not None else ""
    digest = hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:10]
    return f"w:{event}:{digest}"
