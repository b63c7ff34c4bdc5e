"""Random expressions compile, never raise on random data, and agree with a plain interpreter.

The interpreter below walks the syntax tree and calls the runtime helpers directly, so it is the
language's meaning with no inlining and no folding. The generated code takes shortcuts (inline
fast paths, constant folding, frozenset look-ups); these properties say the shortcuts change
nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nudge.dsl import ast
from nudge.dsl.compile import runtime as rt
from nudge.dsl.compile.codegen import compile_expression
from nudge.dsl.source import Span

SPAN = Span("gen.rules", 0, 1, 1, 1, 1, 2)
NOW = 1_795_168_800.0
EVENTS = {"event": "event", "cart": "event", "cart_updated": "event"}


def _name(value: str) -> ast.Name:
    return ast.Name(value, SPAN)


def _lit(value: Any) -> ast.Literal:
    return ast.Literal(value, SPAN)


LETS_SOURCE: dict[str, ast.Expr] = {
    "nordic": ast.ListExpr((_lit("SE"), _lit("NO")), SPAN),
    "mixed": ast.ListExpr((_lit(1), _lit("a"), _lit(True), ast.ListExpr((_lit(1),), SPAN)), SPAN),
    "cfg": ast.ObjectExpr(
        (
            ast.Entry(_name("a"), _lit(1), SPAN),
            ast.Entry(
                _name("b"), ast.ObjectExpr((ast.Entry(_name("c"), _lit("x"), SPAN),), SPAN), SPAN
            ),
        ),
        SPAN,
    ),
    "n": _lit(5),
    "cutoff": ast.Binary("-", ast.Now(SPAN), ast.Duration(1, "d", SPAN), SPAN),
}
LETS = {k: ast.Let(_name(k), v, SPAN) for k, v in LETS_SOURCE.items()}


@dataclass
class Ev:
    properties: dict[str, Any] = field(default_factory=dict)
    id: str = "e1"
    type: str = "cart_updated"
    contact_id: str = "c1"
    ts: float = NOW
    timestamp: str = "2026-11-20T10:00:00Z"


class Hist:
    def count(self, window_id: str, seconds: float, now: float) -> int:
        return len(window_id) % 4


# ---------------------------------------------------------------------------- the interpreter


def interpret(
    expr: ast.Expr, b: dict[str, Any], c: dict[str, Any], now: float, *, in_let: bool = False
) -> Any:
    def ev(e: ast.Expr) -> Any:
        return interpret(e, b, c, now, in_let=in_let)

    match expr:
        case ast.Literal(value=value):
            return value
        case ast.Duration():
            return expr.seconds
        case ast.Now():
            return now
        case ast.ListExpr(items=items):
            return [ev(i) for i in items]
        case ast.ObjectExpr(entries=entries):
            return {e.key.value: ev(e.value) for e in entries}
        case ast.Path(parts=parts):
            head, rest = parts[0].value, [p.value for p in parts[1:]]
            if head == "contact":
                if not rest:
                    return c
                return rt.walk(c.get(rest[0]), *rest[1:])
            if head in EVENTS and not in_let:
                event = b.get(EVENTS[head])
                if not rest:
                    return None if event is None else event.properties
                return rt.walk(rt.event_field(event, rest[0]), *rest[1:])
            if head in LETS:
                return rt.walk(interpret(LETS[head].value, {}, c, now, in_let=True), *rest)
            return None
        case ast.Unary(op="not", operand=operand):
            return ev(operand) is not True
        case ast.Unary(operand=operand):
            return rt.neg(ev(operand))
        case ast.Binary(op=op, left=left, right=right):
            return rt.ARITHMETIC[op](ev(left), ev(right))
        case ast.Compare(op=op, left=left, right=right):
            return rt.COMPARE[op](ev(left), ev(right))
        case ast.Logical(op="and", left=left, right=right):
            return ev(left) is True and ev(right) is True
        case ast.Logical(left=left, right=right):
            return ev(left) is True or ev(right) is True
        case ast.IsNull(operand=operand, negated=negated):
            return (ev(operand) is not None) if negated else (ev(operand) is None)
        case ast.Call(name=name, args=args):
            if len(args) != 1:
                return None
            if name.value in rt.PURE_FUNCTIONS:
                return rt.PURE_FUNCTIONS[name.value](ev(args[0]))
            if name.value == "days_since":
                return rt.days_since(ev(args[0]), now)
            if name.value == "hours_since":
                return rt.hours_since(ev(args[0]), now)
            return None
        case ast.Count():
            return None  # compared through the history's answer below
        case ast.InSegment(segment=segment, negated=negated):
            inside = rt.in_segment(c, segment.value)
            return not inside if negated else inside
    raise TypeError(expr)


def same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    return bool(a == b)


def has_count(node: Any) -> bool:
    """Whether `count(...)` occurs in the tree (the interpreter leaves counting out)."""
    if isinstance(node, ast.Count):
        return True
    if isinstance(node, tuple):
        return any(has_count(n) for n in node)
    if is_dataclass(node):
        return any(has_count(getattr(node, f.name)) for f in fields(node) if f.name != "span")
    return False


# ---------------------------------------------------------------------------- strategies

ISO = st.sampled_from(
    ["2026-10-01T00:00:00Z", "2026-11-20T10:00:00+01:00", "2026-11-19", "2026-13-01T00:00:00Z"]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from(["SE", "NO", "", "a", "A", "x", "/pricing", "^a", "("]),
    ISO,
    st.text(max_size=5),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "c", "value", "id"]), inner, max_size=3),
    ),
    max_leaves=6,
)
FIELDS = st.sampled_from(
    ["a", "b", "c", "value", "id", "event", "timestamp", "contact_id", "segments"]
)
LITERALS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(-(10**20), 10**20),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from(["SE", "NO", "", "a", "/pricing", "^a", "(", "2026-10-01T00:00:00Z"]),
)


def _path(head: str, fields: list[str]) -> ast.Path:
    return ast.Path(tuple(_name(p) for p in [head, *fields]), SPAN)


LEAVES = st.one_of(
    LITERALS.map(_lit),
    st.builds(ast.Duration, st.integers(0, 10), st.sampled_from("smhdw"), st.just(SPAN)),
    st.just(ast.Now(SPAN)),
    st.builds(
        _path,
        st.sampled_from(["contact", "event", "cart", "cart_updated", "unknown", *LETS]),
        st.lists(FIELDS, max_size=2),
    ),
    st.builds(
        ast.InSegment, st.sampled_from(["vip", "new"]).map(_name), st.booleans(), st.just(SPAN)
    ),
)


def _branches(inner: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
    return st.one_of(
        st.builds(ast.Unary, st.sampled_from(["not", "-"]), inner, st.just(SPAN)),
        st.builds(ast.Binary, st.sampled_from("+-*/"), inner, inner, st.just(SPAN)),
        st.builds(ast.Compare, st.sampled_from(ast.COMPARE_OPS), inner, inner, st.just(SPAN)),
        st.builds(ast.Logical, st.sampled_from(["and", "or"]), inner, inner, st.just(SPAN)),
        st.builds(ast.IsNull, inner, st.booleans(), st.just(SPAN)),
        st.builds(
            ast.Call,
            st.sampled_from(["lower", "upper", "len", "days_since", "hours_since", "nope"]).map(
                _name
            ),
            st.lists(inner, min_size=0, max_size=2).map(tuple),
            st.just(SPAN),
        ),
        st.builds(ast.ListExpr, st.lists(inner, max_size=3).map(tuple), st.just(SPAN)),
        st.builds(
            ast.ObjectExpr,
            st.lists(st.builds(ast.Entry, FIELDS.map(_name), inner, st.just(SPAN)), max_size=3).map(
                tuple
            ),
            st.just(SPAN),
        ),
        st.builds(
            ast.Count,
            st.sampled_from(["order_completed", "page_viewed"]).map(_name),
            st.one_of(st.none(), inner),
            st.builds(ast.Duration, st.integers(1, 9), st.sampled_from("hd"), st.just(SPAN)),
            st.just(SPAN),
        ),
    )


EXPRS = st.recursive(LEAVES, _branches, max_leaves=12)
CONTACTS = st.dictionaries(FIELDS, VALUES, max_size=4).map(
    lambda d: {**d, "segments": ["vip"]} if d.get("segments") == "vip" else d
)
PROPERTIES = st.dictionaries(FIELDS, VALUES, max_size=4)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRS, CONTACTS, PROPERTIES, st.booleans(), st.booleans())
def test_generated_code_agrees_with_the_interpreter(
    expr: ast.Expr, contact: dict[str, Any], props: dict[str, Any], bound: bool, as_value: bool
) -> None:
    fn = compile_expression(expr, events=EVENTS, lets=LETS, value=as_value)
    b = {"event": Ev(props)} if bound else {}
    got = fn(b, contact, NOW, Hist())
    if not has_count(expr):
        want = interpret(expr, b, contact, NOW)
        assert same(got, want), (got, want)


@settings(max_examples=200, deadline=None)
@given(EXPRS)
def test_conditions_are_total_without_any_input(expr: ast.Expr) -> None:
    fn = compile_expression(expr, events=EVENTS, lets=LETS)
    fn({}, {}, 0.0, None)


CONSTANTS = st.one_of(
    LITERALS.map(_lit),
    st.lists(LITERALS.map(_lit), max_size=4).map(lambda items: ast.ListExpr(tuple(items), SPAN)),
    st.sampled_from([_path(name, []) for name in LETS]),
)


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from(ast.COMPARE_OPS),
    CONSTANTS,
    st.booleans(),
    VALUES,
)
def test_fast_paths_against_constants(op: str, constant: ast.Expr, flip: bool, value: Any) -> None:
    """`x OP k` and `k OP x`: the inline shortcuts for constants, on any value of x."""
    x = _path("contact", ["a"])
    expr = ast.Compare(op, constant, x, SPAN) if flip else ast.Compare(op, x, constant, SPAN)
    fn = compile_expression(expr, events=EVENTS, lets=LETS)
    contact = {"a": value}
    assert same(fn({}, contact, NOW, None), interpret(expr, {}, contact, NOW))


TRICKY = [
    None,
    True,
    False,
    0,
    1,
    0.0,
    1.0,
    -1,
    2,
    2.5,
    10**20,
    "",
    "SE",
    "1",
    "a",
    "se",
    "2026-10-01T00:00:00Z",
    [],
    [1],
    [True],
    ["SE"],
    ["SE", "NO"],
    {"a": 1},
]
TRICKY_CONSTANTS: list[ast.Expr] = [
    *(_lit(v) for v in TRICKY if not isinstance(v, list | dict)),
    *(ast.ListExpr(tuple(_lit(i) for i in v), SPAN) for v in TRICKY if isinstance(v, list)),
    ast.ListExpr((_lit(1), _lit("SE")), SPAN),
    ast.ListExpr((_lit(True), _lit(2.5)), SPAN),
    *(_path(name, []) for name in LETS),
]


def test_fast_paths_on_tricky_values() -> None:
    """Every comparison operator, against every tricky constant on either side, on every tricky
    value: the inline code and the helpers agree."""
    x = _path("contact", ["a"])
    for op in ast.COMPARE_OPS:
        for constant in TRICKY_CONSTANTS:
            for flip in (False, True):
                expr = (
                    ast.Compare(op, constant, x, SPAN)
                    if flip
                    else ast.Compare(op, x, constant, SPAN)
                )
                fn = compile_expression(expr, events=EVENTS, lets=LETS)
                for value in TRICKY:
                    contact = {"a": value}
                    got, want = fn({}, contact, NOW, None), interpret(expr, {}, contact, NOW)
                    assert same(got, want), (op, constant, flip, value, got, want)
