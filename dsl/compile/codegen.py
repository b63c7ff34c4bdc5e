"""Expressions to Python functions, built as `ast` nodes (never as source text).

Every expression becomes a function `fn(b, c, now, h)` (see `plan.py`). The functions of one
`.rules` file are gathered into one Python module, compiled once with the file's path as its
filename and run into a private namespace holding only the runtime's table of helpers
(`runtime.NAMES`) and the file's constants, so a traceback points at the marketer's line and
generated code can reach nothing else (not even builtins).

User text only ever becomes data: strings are `ast.Constant`s, names become dictionary keys.
Where it is safe the code is inlined (property look-ups, `==` against a constant string, `and`/`or`
of comparisons); everything else calls a runtime helper, which is null-safe.

Name resolution happens here, once: a `Scope` maps each event name a condition may use (an
alias, an event type, `event`) to the key of `b` that holds that event at run time.
"""

from __future__ import annotations

import ast as py
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import ast
from ..plan import Fn
from ..regexes import compile_pattern
from . import runtime
from .canon import window_id
from .fold import NOT_CONSTANT, Folder

__all__ = ["FileUnit", "Scope", "WindowUse", "compile_expression"]

_N = TypeVar("_N", bound=py.AST)

ARGS = ("b", "c", "now", "h")


@dataclass(frozen=True, slots=True)
class Scope:
    """What the names of one condition mean: event name as written -> the key of `b`."""

    events: Mapping[str, str] = field(default_factory=dict)


# Called when an expression uses `count(E where C within D)`: returns the window's id.
WindowUse = Callable[[ast.Count, "FileUnit"], str]


def _no_windows(count: ast.Count, unit: FileUnit) -> str:
    """A lone expression's window ids (no window is built for it)."""
    return window_id(count.event.value, count.where, (count.event.value, "event"))


class FileUnit:
    """The generated functions of one `.rules` file, compiled together.

    `add(...)` registers an expression and returns a key; after `build()`, `fn(key)` is the
    compiled function.
    """

    def __init__(
        self,
        path: str,
        folder: Folder,
        windows: WindowUse = _no_windows,
        types: Mapping[int, str] | None = None,
    ) -> None:
        self.path = path
        self.folder = folder
        self.types: Mapping[int, str] = types or {}
        self.windows = windows
        self.namespace: dict[str, Any] = {"__builtins__": {}, **runtime.NAMES}
        self._defs: list[py.stmt] = []
        self._labels: list[str] = []
        self._keys: dict[tuple[int, str], int] = {}
        self._consts: dict[tuple[str, Any], str] = {}
        self._keep: list[ast.Expr] = []
        self._fns: list[Fn] | None = None

    # ------------------------------------------------------------------ registering

    def add(self, expr: ast.Expr, scope: Scope, label: str, *, value: bool = False) -> int:
        """Generate the function for `expr` in `scope`; `value`: its result leaves the engine
        (action data, traits), so constant lists and objects are copied on each call."""
        key = (id(expr), label)
        if key in self._keys:
            return self._keys[key]
        index = len(self._defs)
        self._keys[key] = index
        self._keep.append(expr)
        self._defs.append(py.Pass())  # the slot; generating may add nested functions (count)
        self._labels.append(label)
        gen = _Gen(self, scope)
        body = gen.value(expr) if value else gen.expr(expr)
        function = _function(f"_f{index}", body, expr.span)
        _fill(function)
        self._defs[index] = function
        return index

    def const(self, value: Any, prefix: str = "_k") -> py.expr:
        """A name in the namespace bound to `value` (a constant Python cannot inline)."""
        key = (prefix, _const_key(value))
        name = self._consts.get(key)
        if name is None:
            name = f"{prefix}{len(self._consts)}"
            self._consts[key] = name
            self.namespace[name] = value
        return py.Name(name, py.Load())

    # ------------------------------------------------------------------ compiling

    def build(self) -> None:
        """Compile every registered function in one module, named after the `.rules` file."""
        module = py.Module(body=self._defs, type_ignores=[])
        code = compile(module, self.path, "exec", dont_inherit=True, optimize=2)
        self._defs.clear()  # the syntax is no longer needed: let it go now, not at the next GC
        exec(code, self.namespace)
        fns: list[Fn] = []
        for index, label in enumerate(self._labels):
            fn = self.namespace.pop(f"_f{index}")
            fn.__code__ = fn.__code__.replace(co_name=label, co_qualname=label)
            fn.__name__ = fn.__qualname__ = label
            fns.append(fn)
        self._fns = fns

    def fn(self, key: int) -> Fn:
        if self._fns is None:
            raise RuntimeError("FileUnit.fn before build()")  # a compiler bug
        return self._fns[key]

    def __len__(self) -> int:
        return len(self._labels)


def _const_key(value: Any) -> Any:
    """A hashable key telling constants apart by kind too (1, 1.0 and true are different)."""
    if isinstance(value, list | tuple):
        return ("list", tuple(_const_key(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, _const_key(v)) for k, v in value.items()))
    if isinstance(value, runtime.ConstSet):
        return ("set", _const_key(value.items))
    if isinstance(value, re.Pattern):
        return ("re", value.pattern)
    return (type(value).__name__, value)


def _function(name: str, body: py.expr, span: Any) -> py.FunctionDef:
    args = py.arguments(
        posonlyargs=[],
        args=[py.arg(a) for a in ARGS],
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[],
    )
    ret = _at(py.Return(body), span)
    fn = py.FunctionDef(name=name, args=args, body=[ret], decorator_list=[], returns=None)
    return _at(fn, span)


def _at(node: _N, span: Any) -> _N:
    """Put a source position on a generated node (columns count characters, from 0)."""
    line, column = span.line, max(span.column - 1, 0)
    end_line = max(span.end_line, line)
    end_column = span.end_column - 1
    if end_line == line:
        end_column = max(end_column, column)
    node.__dict__.update(
        lineno=line, col_offset=column, end_lineno=end_line, end_col_offset=end_column
    )
    return node


# Which fields of the node kinds the generator makes can hold nodes that need a position.
_CHILDREN: dict[type[py.AST], tuple[str, ...]] = {
    py.Name: (),
    py.Constant: (),
    py.Attribute: ("value",),
    py.Call: ("func", "args", "keywords"),
    py.Compare: ("left", "comparators"),
    py.BoolOp: ("values",),
    py.IfExp: ("test", "body", "orelse"),
    py.NamedExpr: ("target", "value"),
    py.BinOp: ("left", "right"),
    py.UnaryOp: ("operand",),
    py.List: ("elts",),
    py.Dict: ("keys", "values"),
    py.Return: ("value",),
    py.FunctionDef: ("args", "body"),
    py.arguments: ("args",),
    py.arg: (),
}


def _fill(root: py.AST) -> None:
    """Give every node without a position its parent's, as `ast.fix_missing_locations` does,
    in one tight pass (a node made for a sub-expression carries that sub-expression's line)."""
    stack: list[tuple[py.AST, tuple[int, int, int, int]]] = [(root, (1, 0, 1, 0))]
    children = _CHILDREN
    while stack:
        node, at = stack.pop()
        fields = node.__dict__
        if "lineno" in fields:
            at = (
                fields["lineno"],
                fields["col_offset"],
                fields["end_lineno"],
                fields["end_col_offset"],
            )
        else:
            (
                fields["lineno"],
                fields["col_offset"],
                fields["end_lineno"],
                fields["end_col_offset"],
            ) = at
        for name in children[type(node)]:
            value = fields[name]
            if type(value) is list:
                stack.extend((item, at) for item in value if item is not None)
            elif value is not None:
                stack.append((value, at))


# ---------------------------------------------------------------------------- small builders


def _name(ident: str) -> py.Name:
    return py.Name(ident, py.Load())


def _const(value: Any) -> py.Constant:
    return py.Constant(value)


def _call(helper: str, *args: py.expr) -> py.Call:
    if helper not in runtime.NAMES:
        raise KeyError(f"not a runtime helper: {helper}")  # a compiler bug
    return py.Call(_name(helper), list(args), [])


def _is(left: py.expr, right: py.expr) -> py.Compare:
    return py.Compare(left, [py.Is()], [right])


def _is_not(left: py.expr, right: py.expr) -> py.Compare:
    return py.Compare(left, [py.IsNot()], [right])


def _and(*values: py.expr) -> py.expr:
    return py.BoolOp(py.And(), list(values))


def _type_is(value: py.expr, type_name: str) -> py.Compare:
    return _is(py.Call(_name("type"), [value], []), _name(type_name))


def _type_in_num(value: py.expr) -> py.Compare:
    return py.Compare(py.Call(_name("type"), [value], []), [py.In()], [_name("NUM")])


_PY_COMPARE: dict[str, type[py.cmpop]] = {
    "==": py.Eq,
    "!=": py.NotEq,
    "<": py.Lt,
    "<=": py.LtE,
    ">": py.Gt,
    ">=": py.GtE,
}
_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_SIMPLE = (type(None), bool, int, float, str)


# Types whose value is never ISO text: `x ± duration` of these is not a time in disguise.
_NOT_TEXT = frozenset({"time", "number", "duration", "bool", "list", "object"})
_NUMERIC = frozenset({"number", "duration"})


def _is_simple(value: Any) -> bool:
    return isinstance(value, _SIMPLE)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Nodes whose generated code always yields a bool.
_BOOLEAN = (ast.Compare, ast.Logical, ast.IsNull, ast.InSegment)


class _Gen:
    """Generates one function's body."""

    def __init__(self, unit: FileUnit, scope: Scope) -> None:
        self.unit = unit
        self.scope = scope
        self.folder = unit.folder
        self.shadowed = frozenset(n for n in scope.events if n in unit.folder.lets)
        self._temps = 0
        self._let_stack: list[str] = []

    def temp(self) -> tuple[py.Name, py.Name]:
        """A fresh local: (store, load)."""
        ident = f"_t{self._temps}"
        self._temps += 1
        return py.Name(ident, py.Store()), py.Name(ident, py.Load())

    def bind(self, value: py.expr) -> tuple[py.expr, py.Name]:
        """(`(_t := value)`, `_t`): evaluate once, use again."""
        store, load = self.temp()
        return py.NamedExpr(store, value), load

    # ------------------------------------------------------------------ constants

    def fold(self, expr: ast.Expr) -> Any:
        if self._let_stack:  # inside a let used as a macro: no event names there
            return self.folder.value(expr)
        return self.folder.value(expr, self.shadowed)

    def constant(self, value: Any, *, fresh: bool = False) -> py.expr:
        """A folded value as code; `fresh`: a list or object is copied on each evaluation."""
        if _is_simple(value):
            return _const(value)
        ref = self.unit.const(value)
        return _call("fresh", ref) if fresh else ref

    # ------------------------------------------------------------------ entry points

    def value(self, expr: ast.Expr) -> py.expr:
        """An expression whose result leaves the engine: constants are copied, and times
        (`now`, `event.timestamp + 1d`) become ISO 8601 text."""
        is_time = self.unit.types.get(id(expr)) == "time"
        # time arithmetic past the year 9999 leaves as null; any other time as it is
        to_text = "sum_text" if isinstance(expr, ast.Binary) else "time_text"
        folded = self.fold(expr)
        if folded is not NOT_CONSTANT:
            if is_time:
                folded = runtime.NAMES[to_text](folded)
            return _at(self.constant(folded, fresh=True), expr.span)
        if isinstance(expr, ast.ListExpr):
            return _at(py.List([self.value(i) for i in expr.items], py.Load()), expr.span)
        if isinstance(expr, ast.ObjectExpr):
            return self.obj(expr, self.value)
        if isinstance(expr, ast.Path) and len(expr.parts) == 1 and expr.parts[0].value == "contact":
            # the contact itself changes as later steps and events run: leave with a copy
            return _at(_call("fresh", self.expr(expr)), expr.span)
        if is_time:
            return _at(_call(to_text, self.expr(expr)), expr.span)
        if isinstance(expr, ast.Binary) and expr.op in ("+", "-"):
            shifted = self.shifted_time(expr)
            if shifted is not None:
                return shifted
        return self.expr(expr)

    def shifted_time(self, expr: ast.Binary) -> py.expr | None:
        """`x ± duration` (or a number) with `x` of no known type (an undeclared field): a time
        when `x` turns out to be ISO text, so its result leaves as ISO text too (`time_from`)."""
        types = self.unit.types
        left, right = types.get(id(expr.left)), types.get(id(expr.right))
        if right in _NUMERIC and left not in _NOT_TEXT:
            source, other, source_first = expr.left, expr.right, True
        elif expr.op == "+" and left in _NUMERIC and right not in _NOT_TEXT:
            source, other, source_first = expr.right, expr.left, False
        else:
            return None
        bound, value = self.bind(self.expr(source))
        operand = self.expr(other)
        args = (bound, operand) if source_first else (operand, bound)
        shifted = _call(runtime.ARITHMETIC_NAMES[expr.op], *args)
        return _at(_call("time_from", shifted, value), expr.span)

    def expr(self, expr: ast.Expr) -> py.expr:
        folded = self.fold(expr)
        if folded is not NOT_CONSTANT:
            return _at(self.constant(folded), expr.span)
        return _at(self._expr(expr), expr.span)

    def truth(self, expr: ast.Expr) -> py.expr:
        """`expr` as a bool where only `true` counts (and/or/not/if)."""
        code = self.expr(expr)
        if isinstance(expr, _BOOLEAN) or (isinstance(expr, ast.Unary) and expr.op == "not"):
            return code
        return _at(_is(code, _const(True)), expr.span)

    # ------------------------------------------------------------------ nodes

    def _expr(self, expr: ast.Expr) -> py.expr:
        match expr:
            case ast.Now():
                return _name("now")
            case ast.ListExpr(items=items):
                return py.List([self.value(i) for i in items], py.Load())
            case ast.ObjectExpr():
                return self.obj(expr, self.value)
            case ast.Path():
                return self.path(expr)
            case ast.Unary(op="not", operand=operand):
                return py.UnaryOp(py.Not(), self.truth(operand))
            case ast.Unary(operand=operand):
                return _call("neg", self.expr(operand))
            case ast.Binary(op=op, left=left, right=right):
                return _call(runtime.ARITHMETIC_NAMES[op], self.expr(left), self.expr(right))
            case ast.Compare():
                return self.compare(expr)
            case ast.Logical():
                return self.logical(expr)
            case ast.IsNull(operand=operand, negated=negated):
                return (_is_not if negated else _is)(self.expr(operand), _const(None))
            case ast.Call():
                return self.call(expr)
            case ast.Count():
                window = self.unit.windows(expr, self.unit)
                # runtime.count, inline: (h.count(window, D, now) if h is not None else 0)
                counted = py.Call(
                    py.Attribute(_name("h"), "count", py.Load()),
                    [_const(window), _const(expr.within.seconds), _name("now")],
                    [],
                )
                return py.IfExp(_is_not(_name("h"), _const(None)), counted, _const(0))
            case ast.InSegment(segment=segment, negated=negated):
                test = _call("in_segment", _name("c"), _const(segment.value))
                return py.UnaryOp(py.Not(), test) if negated else test
        raise TypeError(f"cannot compile {type(expr).__name__}")  # a compiler bug

    def obj(self, expr: ast.ObjectExpr, item: Callable[[ast.Expr], py.expr]) -> py.expr:
        keys: list[py.expr | None] = []
        values: list[py.expr] = []
        for entry in expr.entries:
            keys.append(_const(entry.key.value))
            values.append(item(entry.value))
        return _at(py.Dict(keys, values), expr.span)

    # ------------------------------------------------------------------ paths

    def path(self, expr: ast.Path) -> py.expr:
        head, rest = expr.parts[0].value, [p.value for p in expr.parts[1:]]
        if head == "contact":  # always the contact, even on an event type named `contact`
            if not rest:
                return _name("c")
            base: py.expr = py.Call(
                py.Attribute(_name("c"), "get", py.Load()), [_const(rest[0])], []
            )
            return self.walk(base, rest[1:])
        key = None if self._let_stack else self.scope.events.get(head)
        if key is not None:
            return self.event_path(key, rest)
        if head in self.folder.lets:
            return self.let_path(head, rest, expr)
        return _const(None)  # unknown name: reported by the checker; null at run time

    def event_path(self, key: str, rest: list[str]) -> py.expr:
        """`b[key]`'s properties (bare name) or property `rest[0]`, walked into `rest[1:]`."""
        lookup = py.Call(py.Attribute(_name("b"), "get", py.Load()), [_const(key)], [])
        if rest and rest[0] in runtime.ENVELOPE:
            return self.walk(_call("event_field", lookup, _const(rest[0])), rest[1:])
        bound, event = self.bind(lookup)
        props = py.Attribute(event, "properties", py.Load())
        if rest:
            got: py.expr = py.Call(py.Attribute(props, "get", py.Load()), [_const(rest[0])], [])
        else:
            got = props
        # (_t.properties.get("f") if (_t := b.get(key)) is not None else None)
        access = py.IfExp(_is_not(bound, _const(None)), got, _const(None))
        return self.walk(access, rest[1:])

    def walk(self, base: py.expr, keys: list[str]) -> py.expr:
        """Into nested objects: (_t.get("k") if type(_t := base) is dict else None)."""
        for key in keys:
            bound, value = self.bind(base)
            got = py.Call(py.Attribute(value, "get", py.Load()), [_const(key)], [])
            base = py.IfExp(_type_is(bound, "DICT"), got, _const(None))
        return base

    def let_path(self, name: str, rest: list[str], expr: ast.Path) -> py.expr:
        """A let that folds is a constant (handled by `expr`); one that uses run-time values
        (`let cutoff = now - 30d`) is expanded where it is used, seeing no event names."""
        if name in self._let_stack:
            return _const(None)  # a cycle: reported by the checker
        decl = self.folder.lets[name]
        self._let_stack.append(name)
        try:
            code = self.expr(decl.value)
        finally:
            self._let_stack.pop()
        return self.walk(code, rest)

    # ------------------------------------------------------------------ operators

    def logical(self, expr: ast.Logical) -> py.expr:
        """Flattened `and`/`or` chains; operands that are not bools count only when `true`."""
        op = expr.op
        parts: list[ast.Expr] = []

        def flatten(e: ast.Expr) -> None:
            if isinstance(e, ast.Logical) and e.op == op and self.fold(e) is NOT_CONSTANT:
                flatten(e.left)
                flatten(e.right)
            else:
                parts.append(e)

        flatten(expr)
        values = []
        for part in parts:
            folded = self.fold(part)
            if folded is not NOT_CONSTANT:
                if (folded is True) == (op == "or"):
                    return _const(op == "or")  # unreachable after short-circuit folding
                continue  # `true and x` is x; `false or x` is x
            values.append(self.truth(part))
        if not values:
            return _const(op == "and")
        if len(values) == 1:
            return values[0]
        return py.BoolOp(py.And() if op == "and" else py.Or(), values)

    def call(self, expr: ast.Call) -> py.expr:
        name = expr.name.value
        if len(expr.args) != 1:
            return _const(None)  # wrong arity: reported by the checker
        arg = self.expr(expr.args[0])
        if name in runtime.PURE_FUNCTION_NAMES:
            return _call(runtime.PURE_FUNCTION_NAMES[name], arg)
        if name in runtime.TIME_FUNCTIONS:
            return _call(runtime.TIME_FUNCTIONS[name], arg, _name("now"))
        return _const(None)  # unknown function: reported by the checker

    def compare(self, expr: ast.Compare) -> py.expr:
        op = expr.op
        if op in _MIRROR and self.unit.types and self.timed(expr):
            return self.time_compare(expr)
        if op in ("in", "not in") and self.unit.types.get(id(expr.left)) == "time":
            helper = "in_times" if op == "in" else "not_in_times"
            return _call(helper, self.expr(expr.left), self.expr(expr.right))
        left = self.fold(expr.left)
        right = self.fold(expr.right)
        if left is not NOT_CONSTANT and op in _MIRROR and _is_simple(left):
            # `0 < x` is `x > 0`: the constant goes right, where the fast paths look for it.
            return self.compare_const(_MIRROR[op], expr.right, left)
        if right is not NOT_CONSTANT:
            if op in _MIRROR and _is_simple(right):
                return self.compare_const(op, expr.left, right)
            if op in ("in", "not in"):
                return self.membership(op, expr.left, right)
            if op == "matches" and isinstance(right, str):
                return self.regex(expr.left, right)
            if op in ("contains", "startswith", "endswith") and isinstance(right, str):
                return self.string_test(op, expr.left, right)
        a, b = self.expr(expr.left), self.expr(expr.right)
        if op in ("<", "<=", ">", ">="):
            # (_a < _b if (type(_a := A) in NUM) & (type(_b := B) in NUM) else lt(_a, _b))
            bound_a, va = self.bind(a)
            bound_b, vb = self.bind(b)
            test = py.BinOp(_type_in_num(bound_a), py.BitAnd(), _type_in_num(bound_b))
            fast = py.Compare(va, [_PY_COMPARE[op]()], [vb])
            return py.IfExp(test, fast, _call(runtime.COMPARE_NAMES[op], va, vb))
        return _call(runtime.COMPARE_NAMES[op], a, b)

    def timed(self, expr: ast.Compare) -> bool:
        """Whether the checker knows a side of this comparison to be a time."""
        types = self.unit.types
        return types.get(id(expr.left)) == "time" or types.get(id(expr.right)) == "time"

    def time_compare(self, expr: ast.Compare) -> py.expr:
        """A comparison with a time: ISO strings on either side are read as the instants they
        spell, so `"...T11:00:00+01:00" == "...T10:00:00Z"` holds."""
        sides: list[py.expr] = []
        for side in (expr.left, expr.right):
            folded = self.fold(side)
            if folded is not NOT_CONSTANT:
                sides.append(self.constant(runtime.as_time(folded)))
            elif isinstance(side, ast.Now):
                sides.append(self.expr(side))
            else:
                sides.append(_call("as_time", self.expr(side)))
        return _call(runtime.COMPARE_NAMES[expr.op], *sides)

    def compare_const(self, op: str, other: ast.Expr, k: Any) -> py.expr:
        """`x OP k` with `k` a constant null, bool, number or string."""
        if k is None:
            return _const(False)  # any comparison with null is false
        x = self.expr(other)
        helper = runtime.COMPARE_NAMES[op]
        if op == "==" and isinstance(k, bool):
            return _is(x, _const(k))  # true == 1 is false: identity, not ==
        if op in ("==", "!=") and isinstance(k, str) and not runtime.is_iso(k):
            # A string that is not a time equals strings only: Python's == is exact.
            if op == "==":
                return py.Compare(x, [py.Eq()], [_const(k)])
            bound, value = self.bind(x)
            return _and(_is_not(bound, _const(None)), py.Compare(value, [py.NotEq()], [_const(k)]))
        if op in ("==", "!=") and not _is_number(k):
            return _call(helper, x, _const(k))
        # Inline when the value has the constant's kind; else the helper (coercion, null, bool).
        bound, value = self.bind(x)
        fast = py.Compare(value, [_PY_COMPARE[op]()], [_const(k)])
        if _is_number(k) and op != "!=":
            # Besides numbers, only an ISO string (a time) can compare with a number, so the
            # helper is called for strings only (null, the usual other case, is false):
            # (_t OP k if (_k := type(_t := X)) in NUM else _k is STR and helper(_t, k))
            bound_kind, kind = self.bind(py.Call(_name("type"), [bound], []))
            slow = _and(_is(kind, _name("STR")), _call(helper, value, _const(k)))
            return py.IfExp(py.Compare(bound_kind, [py.In()], [_name("NUM")]), fast, slow)
        if _is_number(k):  # `!=`: every other kind but null differs
            # (_t != k if type(_t := X) in NUM else ne(_t, k))
            return py.IfExp(_type_in_num(bound), fast, _call(helper, value, _const(k)))
        if isinstance(k, str):
            # (_t OP k if type(_t := X) is STR else helper(_t, k))
            return py.IfExp(_type_is(bound, "STR"), fast, _call(helper, value, _const(k)))
        return _call(helper, bound, _const(k))

    def membership(self, op: str, other: ast.Expr, container: Any) -> py.expr:
        """`x in <constant>` / `x not in <constant>`."""
        if container is None:
            return _const(False)
        x = self.expr(other)
        if isinstance(container, str):
            bound, value = self.bind(x)
            substring = py.Compare(value, [py.In()], [_const(container)])
            if op == "in":  # type(_t := X) is STR and _t in "..."
                return _and(_type_is(bound, "STR"), substring)
            # non-null and not a substring
            inside = _and(_type_is(value, "STR"), substring)
            return _and(_is_not(bound, _const(None)), py.UnaryOp(py.Not(), inside))
        if not isinstance(container, list):
            return _call(runtime.COMPARE_NAMES[op], x, self.constant(container))
        if op == "in":
            return self.member_test(x, container)
        bound, value = self.bind(x)
        test = self.member_test(value, container)
        return _and(_is_not(bound, _const(None)), py.UnaryOp(py.Not(), test))

    def member_test(self, x: py.expr, items: list[Any]) -> py.expr:
        """`x in items`, null false. A frozenset look-up where it is exact under `==`."""
        if not items:
            return _const(False)
        if all(type(i) is str and not runtime.is_iso(i) for i in items):
            # Only strings equal these: type(_t := X) is STR and _t in {...}
            bound, value = self.bind(x)
            members = py.Compare(value, [py.In()], [_const(frozenset(items))])
            return _and(_type_is(bound, "STR"), members)
        every = self.unit.const(runtime.ConstSet(items), "_s")
        if all(_is_number(i) for i in items):
            # (_t in {...} if type(_t := X) in NUM else in_const(_t, K)): ISO strings, bools, null
            bound, value = self.bind(x)
            members = py.Compare(value, [py.In()], [_const(frozenset(items))])
            return py.IfExp(_type_in_num(bound), members, _call("in_const", value, every))
        return _call("in_const", x, every)

    def regex(self, other: ast.Expr, pattern: str) -> py.expr:
        compiled = compile_pattern(pattern)
        if compiled is None:
            return _const(False)  # not a valid regex: reported by the checker
        bound, value = self.bind(self.expr(other))
        search = py.Call(
            py.Attribute(self.unit.const(compiled, "_r"), "search", py.Load()), [value], []
        )
        return _and(_type_is(bound, "STR"), _is_not(search, _const(None)))

    def string_test(self, op: str, other: ast.Expr, text: str) -> py.expr:
        bound, value = self.bind(self.expr(other))
        if op == "contains":
            # A string holds a substring; a list is searched by the helper.
            fast: py.expr = py.Compare(_const(text), [py.In()], [value])
            return py.IfExp(_type_is(bound, "STR"), fast, _call("contains", value, _const(text)))
        method = py.Attribute(value, op, py.Load())
        return _and(_type_is(bound, "STR"), py.Call(method, [_const(text)], []))


# ---------------------------------------------------------------------------- one expression


def compile_expression(
    expr: ast.Expr,
    *,
    events: Mapping[str, str] | None = None,
    lets: Mapping[str, ast.Let] | None = None,
    path: str = "<expression>",
    value: bool = False,
) -> Fn:
    """Compile a lone expression (tools, tests, benchmarks): `events` maps names to keys of `b`."""
    unit = FileUnit(path, Folder(lets or {}))
    key = unit.add(expr, Scope(dict(events or {"event": "event"})), "expression", value=value)
    unit.build()
    return unit.fn(key)
