"""Constant folding: `let` values and literal-only subexpressions, computed once at compile time.

`Folder.value(expr)` is the expression's value when it depends on nothing known only at run time
(no contact, event, `now`, `count` or segment), else `NOT_CONSTANT`. Operators are the runtime's
own helpers, so a folded value is exactly what the generated code would have computed.

>>> from nudge.dsl.parse import parse_expression
>>> expr, _ = parse_expression('len(["a", "b"]) * 2h')
>>> Folder({}).value(expr)
14400
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .. import ast
from . import runtime


class _NotConstant:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_CONSTANT"


NOT_CONSTANT: Final = _NotConstant()


class Folder:
    """Folds expressions against a ruleset's `let` declarations (which may use earlier lets)."""

    def __init__(self, lets: Mapping[str, ast.Let]) -> None:
        self.lets = lets
        self._lets: dict[str, Any] = {}
        self._busy: set[str] = set()
        self._memo: dict[int, Any] = {}
        self._keep: list[ast.Expr] = []  # keeps memoised nodes alive so ids stay unique

    def let(self, name: str) -> Any:
        """The folded value of `let name`, or `NOT_CONSTANT` (a let using run-time values)."""
        if name in self._lets:
            return self._lets[name]
        decl = self.lets.get(name)
        if decl is None or name in self._busy:  # unknown, or a cycle (the checker reports it)
            return NOT_CONSTANT
        self._busy.add(name)
        try:
            value = self.value(decl.value)
        finally:
            self._busy.discard(name)
        self._lets[name] = value
        return value

    def value(self, expr: ast.Expr, shadowed: frozenset[str] = frozenset()) -> Any:
        """The constant value of `expr`, or `NOT_CONSTANT`. Names in `shadowed` are event
        bindings in scope, which hide lets of the same name."""
        key = id(expr)
        if not shadowed and key in self._memo:
            return self._memo[key]
        result = self._fold(expr, shadowed)
        if not shadowed:
            self._memo[key] = result
            self._keep.append(expr)
        return result

    def _fold(self, expr: ast.Expr, shadowed: frozenset[str]) -> Any:
        match expr:
            case ast.Literal(value=value):
                return value
            case ast.Duration():
                return expr.seconds
            case ast.ListExpr(items=items):
                values = [self.value(i, shadowed) for i in items]
                return NOT_CONSTANT if any(v is NOT_CONSTANT for v in values) else values
            case ast.ObjectExpr(entries=entries):
                out: dict[str, Any] = {}
                for entry in entries:
                    v = self.value(entry.value, shadowed)
                    if v is NOT_CONSTANT:
                        return NOT_CONSTANT
                    out[entry.key.value] = v
                return out
            case ast.Path(parts=parts):
                head = parts[0].value
                if head == "contact" or head in shadowed or head not in self.lets:
                    return NOT_CONSTANT
                base = self.let(head)
                if base is NOT_CONSTANT:
                    return NOT_CONSTANT
                return runtime.walk(base, *(p.value for p in parts[1:]))
            case ast.Unary(op=op, operand=operand):
                v = self.value(operand, shadowed)
                if v is NOT_CONSTANT:
                    return NOT_CONSTANT
                return v is not True if op == "not" else runtime.neg(v)
            case ast.Binary(op=op, left=left, right=right):
                a = self.value(left, shadowed)
                b = self.value(right, shadowed)
                if a is NOT_CONSTANT or b is NOT_CONSTANT:
                    return NOT_CONSTANT
                return runtime.ARITHMETIC[op](a, b)
            case ast.Compare(op=op, left=left, right=right):
                a = self.value(left, shadowed)
                b = self.value(right, shadowed)
                if a is NOT_CONSTANT or b is NOT_CONSTANT:
                    return NOT_CONSTANT
                return runtime.COMPARE[op](a, b)
            case ast.Logical(op=op, left=left, right=right):
                a = self.value(left, shadowed)
                b = self.value(right, shadowed)
                # `false and x` is false and `true or x` is true whatever x is.
                if a is not NOT_CONSTANT and (a is True) == (op == "or"):
                    return op == "or"
                if a is NOT_CONSTANT or b is NOT_CONSTANT:
                    return NOT_CONSTANT
                return b is True
            case ast.IsNull(operand=operand, negated=negated):
                v = self.value(operand, shadowed)
                if v is NOT_CONSTANT:
                    return NOT_CONSTANT
                return (v is not None) if negated else (v is None)
            case ast.Call(name=name, args=args):
                fn = runtime.PURE_FUNCTIONS.get(name.value)
                if fn is None or len(args) != 1:
                    return NOT_CONSTANT
                v = self.value(args[0], shadowed)
                return NOT_CONSTANT if v is NOT_CONSTANT else fn(v)
        return NOT_CONSTANT  # Now, Count, InSegment: known only at run time
