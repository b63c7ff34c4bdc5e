"""Types: infer a static type for every expression and report what cannot work at run time.

Types are `string`, `number`, `bool`, `time`, `duration` (a number of seconds), `list`, `object`,
`null` (the literal) and `any` (unknown: an undeclared event, a trait without a schema). Only
known types are ever reported: `any` goes with everything. The inferred type of each expression
goes in the side table `ctx.types` (keyed by `id(expr)`), for the compiler.

Compatibility follows the run-time semantics: durations are numbers; times meet numbers (epoch
seconds) and strings (ISO 8601 text is coerced) in comparisons; string operations also accept
times (the engine keeps them as ISO text).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .. import ast
from ..codes import diagnostic
from ..compile.runtime import is_iso
from ..diagnostics import Diagnostic, hint
from ..regexes import exponential, invalid
from .context import CONTACT_BUILTINS, ENVELOPE, Context
from .scopes import Root, Scope, count_scope, resolve, roots, rule_scopes

UNKNOWN = frozenset({"any", "null"})
NUMERIC = frozenset({"number", "duration"})
STRINGY = frozenset({"string", "time"})

# name -> (accepted argument types, result)
FUNCTIONS: dict[str, tuple[frozenset[str], str]] = {
    "lower": (STRINGY, "string"),
    "upper": (STRINGY, "string"),
    "len": (frozenset({"string", "list", "object"}), "number"),
    "days_since": (STRINGY, "number"),
    "hours_since": (STRINGY, "number"),
}
_ARG_WORDS = {
    "lower": "a string",
    "upper": "a string",
    "len": "a string, a list or an object",
    "days_since": "a time",
    "hours_since": "a time",
}
READ_ONLY = ("segments", "first_seen", "last_seen")
_OP_WORDS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}


def check_types(ruleset: ast.Ruleset, ctx: Context) -> list[Diagnostic]:
    """Infer every expression's type (into `ctx.types`); report mismatches, unknown fields,
    functions and their arguments, non-boolean conditions, comparisons with null, bad regexes,
    and steps that store a value of the wrong type.

    >>> event cart_updated { cart_id: string, value: number }
    >>> rule r
    >>>     when cart_updated as cart where cart.vaule > "0"     # unknown-field
    >>>     then
    >>>         score += cart.cart_id                           # type-mismatch
    >>> end
    """
    return _Types(ctx).run(ruleset)


def article(type_: str) -> str:
    return f"an {type_}" if type_[0] in "aeiou" else f"a {type_}"


def comparable(a: str, b: str) -> bool:
    """Whether `==` between values of these types can ever be true."""
    if a in UNKNOWN or b in UNKNOWN or a == b:
        return True
    pair = {a, b}
    return pair <= NUMERIC or pair in ({"time", "string"}, {"time", "number"})


def orderable(a: str, b: str) -> bool:
    """Whether `<`, `<=`, `>`, `>=` between these types can ever be true."""
    if a in UNKNOWN or b in UNKNOWN:
        return a not in ("bool", "list", "object") and b not in ("bool", "list", "object")
    pair = {a, b}
    if pair <= NUMERIC or pair == {"string"}:
        return True
    return "time" in pair and pair <= {"time", "number", "string"}


def assignable(target: str, value: str) -> bool:
    """Whether a value of type `value` may be stored where the schema says `target`."""
    if target in UNKNOWN or value in UNKNOWN or target == value:
        return True
    if target == "number":
        return value == "duration"
    if target == "time":
        return value in ("string", "number")
    if target == "string":
        return value == "time"
    return False


def arithmetic(op: str, a: str, b: str) -> str | None:
    """The type of `a op b`, or None when the operator does not apply."""
    if op == "+" and "time" in (a, b) and "any" in (a, b):
        return "time"  # a time plus anything that is not null is a time, or null
    if a in UNKNOWN or b in UNKNOWN:
        return "any"
    pair = (a, b)
    if op == "+":
        if a == b == "string":
            return "string"
        if a == b == "duration":
            return "duration"
        if a in NUMERIC and b in NUMERIC:
            return "number"
        if "time" in pair and set(pair) <= {"time", "number", "duration"} and a != b:
            return "time"
        return None
    if op == "-":
        if a == b == "duration":
            return "duration"
        if a in NUMERIC and b in NUMERIC:
            return "number"
        if a == "time" and b in NUMERIC:
            return "time"
        if set(pair) in ({"time"}, {"time", "string"}):
            return "duration"
        return None
    if op == "*":
        if a == b == "number":
            return "number"
        if set(pair) == {"number", "duration"}:
            return "duration"
        return None
    if op == "/":
        if a == "duration" and b == "number":
            return "duration"
        if a in NUMERIC and b in NUMERIC:
            return "number"
        return None
    return "any"


def describe(expr: ast.Expr) -> str | None:
    """A short way to name an expression in a message, when there is one."""
    if isinstance(expr, ast.Path):
        return f"`{expr.dotted}`"
    if isinstance(expr, ast.Literal):
        if isinstance(expr.value, str):
            text = expr.value if len(expr.value) <= 30 else expr.value[:27] + "..."
            return f'`"{text}"`'
        if expr.value is None:
            return "`null`"
        if isinstance(expr.value, bool):
            return "`true`" if expr.value else "`false`"
        return f"`{expr.value}`"
    if isinstance(expr, ast.Duration):
        return f"`{expr.amount}{expr.unit}`"
    if isinstance(expr, ast.Now):
        return "`now`"
    if isinstance(expr, ast.Call):
        return f"`{expr.name.value}(...)`"
    return None


class _Types:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.out: list[Diagnostic] = []
        self.elements: dict[int, str] = {}  # id(list expression) -> its items' common type
        self.let_types: dict[str, str] = {}
        self.let_values: dict[str, ast.Expr] = {}

    # ------------------------------------------------------------------ driver
    def run(self, ruleset: ast.Ruleset) -> list[Diagnostic]:
        let_roots: list[Root] = []
        other_roots: list[Root] = []
        for root in roots(self.ctx):
            (let_roots if isinstance(root.decl, ast.Let) else other_roots).append(root)
        for root in let_roots:  # constants first, in order: later expressions use their types
            assert isinstance(root.decl, ast.Let)
            t = self.infer(root.expr, root.scope)
            name = root.decl.name.value
            if self.ctx.lets.get(name) is root.decl:
                self.let_types[name] = t
                self.let_values[name] = root.expr
        for root in other_roots:
            t = self.infer(root.expr, root.scope)
            if root.role == "condition":
                self.condition(root.expr, t)
        for decl in ruleset.decls():
            if isinstance(decl, ast.Rule):
                self.steps(decl)
        return self.out

    def report(self, code: str, message: str, node: ast.Node, label: str = "", *notes: str) -> None:
        self.out.append(diagnostic(code, message, node.span, label, *notes))

    # ------------------------------------------------------------------ expressions
    def infer(self, expr: ast.Expr, scope: Scope) -> str:
        t = self._infer(expr, scope)
        self.ctx.types[id(expr)] = t
        return t

    def _infer(self, expr: ast.Expr, scope: Scope) -> str:
        if isinstance(expr, ast.Literal):
            v = expr.value
            if v is None:
                return "null"
            if isinstance(v, bool):
                return "bool"
            if isinstance(v, str):
                return "string"
            if isinstance(v, float) and not math.isfinite(v):
                self.report("bad-number", "this number is too large to hold", expr)
            return "number"
        if isinstance(expr, ast.Duration):
            return "duration"
        if isinstance(expr, ast.Now):
            return "time"
        if isinstance(expr, ast.ListExpr):
            items = {self.infer(item, scope) for item in expr.items}
            known = items - {"null"}
            if len(known) == 1:
                self.elements[id(expr)] = known.pop()
            return "list"
        if isinstance(expr, ast.ObjectExpr):
            keys: set[str] = set()
            for entry in expr.entries:
                self.infer(entry.value, scope)
                if entry.key.value in keys:  # the last would win: the first is a slip
                    self.report("duplicate-field", f"`{entry.key.value}` is given twice", entry.key)
                keys.add(entry.key.value)
            return "object"
        if isinstance(expr, ast.Path):
            return self.path(expr, scope)
        if isinstance(expr, ast.Unary):
            t = self.infer(expr.operand, scope)
            if expr.op == "not":
                self.condition(expr.operand, t)
                return "bool"
            if t in UNKNOWN or t in NUMERIC:
                return t
            self.report("type-mismatch", f"cannot negate {article(t)}", expr)
            return "any"
        if isinstance(expr, ast.Binary):
            return self.binary(expr, scope)
        if isinstance(expr, ast.Logical):
            for side in (expr.left, expr.right):
                self.condition(side, self.infer(side, scope))
            return "bool"
        if isinstance(expr, ast.Compare):
            self.compare(expr, scope)
            return "bool"
        if isinstance(expr, ast.IsNull):
            self.infer(expr.operand, scope)
            return "bool"
        if isinstance(expr, ast.InSegment):
            return "bool"
        if isinstance(expr, ast.Count):
            if expr.where is not None:
                inner = count_scope(expr, scope)
                self.condition(expr.where, self.infer(expr.where, inner))
            return "number"
        if isinstance(expr, ast.Call):
            return self.call(expr, scope)
        raise TypeError(f"unexpected expression node {type(expr).__name__}")  # a checker bug

    def condition(self, expr: ast.Expr, t: str) -> None:
        """A condition counts only `true`: a value of another known type is always false."""
        if t in UNKNOWN or t == "bool":
            return
        what = describe(expr)
        subject = f"{what} is {article(t)}" if what else f"this is {article(t)}"
        notes = ["only `true` counts; any other value, even one that is present, is false"]
        if isinstance(expr, ast.Path):
            if t in ("number", "duration"):
                notes.append(f"compare it, e.g. `{expr.dotted} > 0`")
            else:
                notes.append(f"to ask whether it is set, write `{expr.dotted} is not null`")
        self.report(
            "not-boolean", f"a condition must be true or false, but {subject}", expr, "", *notes
        )

    def path(self, path: ast.Path, scope: Scope) -> str:
        head, rest = path.parts[0], path.parts[1:]
        found = resolve(scope, head.value, self.ctx)
        if found.kind == "contact":
            if not rest:
                return "object"
            name = rest[0].value
            fields = self.ctx.contact_fields()
            if name in CONTACT_BUILTINS:
                t = CONTACT_BUILTINS[name]
            elif fields is None:
                return "any"
            elif name in fields:
                t = fields[name]
            else:
                self.report(
                    "unknown-field",
                    f"unknown field `{name}` on contact{hint(name, fields)}",
                    rest[0],
                )
                return "any"
            return self.deeper(path, 2, t)
        if found.kind in ("binding", "event") and found.binding is not None:
            binding = found.binding
            if binding.ambiguous or binding.event_type is None:
                return "any" if rest else "object"
            if not rest:
                return "object"
            fields = self.ctx.event_fields(binding.event_type)
            name = rest[0].value
            if fields is None:
                # undeclared: its properties are untyped, its envelope is known
                return ENVELOPE.get(name, "any") if len(rest) == 1 else "any"
            if name not in fields:
                self.report(
                    "unknown-field",
                    f"unknown field `{name}` on event {binding.event_type}{hint(name, fields)}",
                    rest[0],
                )
                return "any"
            return self.deeper(path, 2, fields[name])
        if found.kind == "let":
            t = self.let_types.get(head.value, "any")
            value = self.let_values.get(head.value)
            if not rest:
                if isinstance(value, ast.ListExpr) and id(value) in self.elements:
                    self.elements[id(path)] = self.elements[id(value)]
                return t
            if isinstance(value, ast.ObjectExpr):
                entries = {e.key.value: e.value for e in value.entries}
                name = rest[0].value
                if name not in entries:
                    self.report(
                        "unknown-field",
                        f"the constant `{head.value}` has no field `{name}`{hint(name, entries)}",
                        rest[0],
                    )
                    return "any"
                return self.deeper(path, 2, self.ctx.types.get(id(entries[name]), "any"))
            return self.deeper(path, 1, t)
        return "any"  # unknown names are the names pass's to report

    def deeper(self, path: ast.Path, index: int, t: str) -> str:
        """The type after walking `path.parts[index:]` into a value of type `t`."""
        if index >= len(path.parts):
            return t
        if t in UNKNOWN or t == "object":
            return "any"
        name = path.parts[index]
        so_far = ".".join(p.value for p in path.parts[:index])
        self.report(
            "unknown-field",
            f"`{so_far}` is {article(t)}, so it has no field `{name.value}`",
            name,
        )
        return "any"

    def binary(self, expr: ast.Binary, scope: Scope) -> str:
        a = self.infer(expr.left, scope)
        b = self.infer(expr.right, scope)
        result = arithmetic(expr.op, a, b)
        if result is not None:
            return result
        left, right = describe(expr.left), describe(expr.right)
        label = ", ".join(
            f"{d} is {article(t)}" for d, t in ((left, a), (right, b)) if d is not None
        )
        notes = []
        if expr.op == "+" and "string" in (a, b):
            notes.append("`+` joins two strings, or adds numbers; it does not mix them")
        if "time" in (a, b) and "string" not in (a, b):
            notes.append("time arithmetic: `time - time` is a duration, `time ± duration` a time")
        self.report(
            "type-mismatch",
            f"cannot {_OP_WORDS.get(expr.op, expr.op)} {article(a)} and {article(b)}",
            expr,
            label,
            *notes,
        )
        return "any"

    def compare(self, expr: ast.Compare, scope: Scope) -> None:
        a = self.infer(expr.left, scope)
        b = self.infer(expr.right, scope)
        op = expr.op
        if "null" in (a, b) and (
            isinstance(expr.left, ast.Literal) or isinstance(expr.right, ast.Literal)
        ):
            better = "is not null" if op == "!=" else "is null"
            if op in ("==", "!="):
                message = f"`{op} null` is never true: write `{better}`"
            else:
                message = f"`{op}` with null is never true"
            self.report("compare-null", message, expr, "", "any comparison with null is false")
            return
        left, right = describe(expr.left), describe(expr.right)

        def label(side: str = "both") -> str:
            shown = {"left": [(left, a)], "right": [(right, b)]}.get(side, [(left, a), (right, b)])
            return ", ".join(
                f"{d} is {article(t)}" for d, t in shown if d is not None and t not in UNKNOWN
            )

        if op in ("==", "!="):
            if not comparable(a, b):
                self.report(
                    "type-mismatch",
                    f"cannot compare {article(a)} with {article(b)}",
                    expr,
                    label(),
                    f"values of different types are never equal, so this is always "
                    f"{'false' if op == '==' else 'true'}",
                )
        elif op in ("<", "<=", ">", ">="):
            if {a, b} == {"time", "number"}:
                self.report(
                    "time-number",
                    "a time compared with a plain number (a time is epoch seconds)",
                    expr,
                    label(),
                    "to compare an age, write `now - <time> > 5d` or `days_since(<time>) > 5`",
                )
            literal, age = (expr.right, expr.left) if a == "duration" else (expr.left, expr.right)
            if (
                "duration" in (a, b)
                # an age (`now - t`) or a duration as written; `(now - t) / 86400` is a number
                and (
                    isinstance(age, ast.Duration | ast.Path)
                    or (isinstance(age, ast.Binary) and age.op == "-")
                )
            ) and (
                isinstance(literal, ast.Literal)
                and type(literal.value) in (int, float)
                and literal.value != 0
            ):
                self.report(
                    "time-number",
                    f"a duration compared with the plain number {literal.value}, which is read "
                    "as seconds",
                    literal,
                    "",
                    f"write the unit: `{literal.value}d`, `{literal.value}h`, ...",
                )
            if not orderable(a, b):
                notes = []
                if {a, b} == {"time", "duration"}:
                    notes.append("to compare an age, write `now - <time> > 30d`")
                known = b if a in UNKNOWN else a if b in UNKNOWN else None
                if a == b or known is not None:
                    message = f"`{op}` cannot order {known or a}s"
                else:
                    message = f"cannot compare {article(a)} with {article(b)}"
                self.report("type-mismatch", message, expr, label(), *notes)
        elif op in ("in", "not in"):
            self.membership(expr, a, b, label)
        elif op == "contains":
            if a == "list":
                element = self.elements.get(id(expr.left))
                if element is not None and not comparable(element, b):
                    self.report(
                        "type-mismatch",
                        f"a list of {element}s never contains {article(b)}",
                        expr,
                        label(),
                    )
            elif a in STRINGY:
                if b not in UNKNOWN and b not in STRINGY:
                    self.report(
                        "type-mismatch",
                        f"`contains` on a string looks for a string, not {article(b)}",
                        expr,
                        label(),
                    )
            elif a not in UNKNOWN:
                self.report(
                    "type-mismatch",
                    f"`contains` needs a list or a string on its left, not {article(a)}",
                    expr.left,
                    label("left"),
                )
        elif op in ("startswith", "endswith", "matches"):
            if a not in UNKNOWN and a not in STRINGY:
                self.report(
                    "type-mismatch",
                    f"`{op}` works on strings, not on {article(a)}",
                    expr.left,
                    label("left"),
                )
            if b not in UNKNOWN and b != "string":
                self.report(
                    "type-mismatch",
                    f"`{op}` takes a string on its right, not {article(b)}",
                    expr.right,
                    label("right"),
                )
            if op == "matches":
                self.pattern(expr.right)

    def pattern(self, expr: ast.Expr) -> None:
        """The pattern of `matches`, when it is written in the rules (or a constant's)."""
        value = expr
        if isinstance(expr, ast.Path) and len(expr.parts) == 1:
            value = self.let_values.get(expr.parts[0].value, expr)
        if not isinstance(value, ast.Literal) or not isinstance(value.value, str):
            return
        problem = invalid(value.value)
        if problem is not None:
            self.report(
                "bad-regex",
                problem,
                expr,
                "",
                "the pattern is a Python regular expression; escape special "
                'characters with a double backslash, e.g. "\\\\."',
            )
            return
        slow = exponential(value.value)
        if slow is not None:
            self.report("bad-regex", slow, expr)

    def membership(self, expr: ast.Compare, a: str, b: str, label: Callable[..., str]) -> None:
        if b == "list":
            element = self.elements.get(id(expr.right))
            if element is not None and not comparable(a, element):
                self.report(
                    "type-mismatch",
                    f"{article(a)} is never in a list of {element}s",
                    expr,
                    label(),
                )
        elif b in STRINGY:
            if a not in UNKNOWN and a not in STRINGY:
                self.report(
                    "type-mismatch",
                    f"`{expr.op}` with a string on its right looks for a substring, "
                    f"not {article(a)}",
                    expr,
                    label(),
                )
        elif b not in UNKNOWN:
            self.report(
                "type-mismatch",
                f"`{expr.op}` needs a list or a string on its right, not {article(b)}",
                expr.right,
                label("right"),
            )

    def call(self, expr: ast.Call, scope: Scope) -> str:
        name = expr.name.value
        args = [self.infer(arg, scope) for arg in expr.args]
        if name == "count":
            self.report(
                "bad-arguments",
                "`count` is written `count(<event> [where <condition>] within <duration>)`",
                expr,
            )
            return "number"
        if name not in FUNCTIONS:
            self.report(
                "unknown-function",
                f"unknown function `{name}`{hint(name, [*FUNCTIONS, 'count'])}",
                expr.name,
                "",
                "the functions are lower, upper, len, days_since, hours_since and count",
            )
            return "any"
        accepted, result = FUNCTIONS[name]
        if len(args) != 1:
            self.report(
                "bad-arguments",
                f"`{name}` takes 1 argument, not {len(args)}",
                expr,
                "",
                f"write `{name}(x)` with x {_ARG_WORDS[name]}",
            )
            return result
        t = args[0]
        if t not in UNKNOWN and t not in accepted:
            what = describe(expr.args[0])
            self.report(
                "type-mismatch",
                f"`{name}` takes {_ARG_WORDS[name]}, not {article(t)}",
                expr.args[0],
                f"{what} is {article(t)}" if what else "",
            )
        return result

    # ------------------------------------------------------------------ steps
    def steps(self, rule: ast.Rule) -> None:
        body = rule_scopes(rule).body
        contact = self.ctx.contact_fields()
        for step in rule.steps:
            if isinstance(step, ast.Score):
                t = self.type_of(step.amount, body)
                if t not in UNKNOWN and t not in NUMERIC:
                    self.report(
                        "type-mismatch",
                        f"`score {step.op}` takes a number, not {article(t)}",
                        step.amount,
                    )
            elif isinstance(step, ast.SetTrait | ast.UnsetTrait):
                self.trait_step(step, contact, body)
            elif isinstance(step, ast.Send) and step.to is not None:
                t = self.type_of(step.to, body)
                if t not in UNKNOWN and t != "string":
                    self.report(
                        "type-mismatch",
                        f"`to` takes an address (a string), not {article(t)}",
                        step.to,
                    )
            elif isinstance(step, ast.Emit) and step.data is not None:
                schema = self.ctx.event_schemas.get(step.event.value)
                if schema is not None:
                    for entry in step.data.entries:
                        key = entry.key.value
                        if key not in schema:
                            self.report(
                                "unknown-field",
                                f"unknown field `{key}` on event {step.event.value}"
                                f"{hint(key, schema)}",
                                entry.key,
                            )
                            continue
                        t = self.type_of(entry.value, body)
                        if not assignable(schema[key], t):
                            self.report(
                                "type-mismatch",
                                f"`{key}` of event {step.event.value} is {article(schema[key])}, "
                                f"not {article(t)}",
                                entry.value,
                            )

    def type_of(self, expr: ast.Expr, scope: Scope) -> str:
        known = self.ctx.types.get(id(expr))
        return known if known is not None else self.infer(expr, scope)

    def trait_step(
        self, step: ast.SetTrait | ast.UnsetTrait, contact: dict[str, str] | None, body: Scope
    ) -> None:
        name = step.field.value
        verb = "set" if isinstance(step, ast.SetTrait) else "unset"
        read_only = name in READ_ONLY or (verb == "unset" and name in CONTACT_BUILTINS)
        if read_only:
            why = {
                "segments": "segment membership follows the segments' conditions",
                "score": "change it with `score += N` or `score -= N`",
            }.get(name, "the engine keeps it")
            self.report("read-only-field", f"cannot {verb} `contact.{name}`", step.field, "", why)
            return
        target = CONTACT_BUILTINS.get(name) or (contact or {}).get(name)
        if target is None:
            if contact is not None:
                self.report(
                    "unknown-field",
                    f"unknown field `{name}` on contact{hint(name, contact)}",
                    step.field,
                    "",
                    "add it to the `contact { ... }` schema to store it",
                )
            return
        if isinstance(step, ast.SetTrait):
            t = self.type_of(step.value, body)
            if not assignable(target, t):
                self.report(
                    "type-mismatch",
                    f"`contact.{name}` is {article(target)}, but this value is {article(t)}",
                    step.value,
                )
            elif (
                target == "time"
                and isinstance(step.value, ast.Literal)
                and isinstance(step.value.value, str)
                and not is_iso(step.value.value)
            ):  # `set contact.last_order_at = "yesterday"`
                self.report(
                    "type-mismatch",
                    f"`contact.{name}` is a time, but this text is not one",
                    step.value,
                    "",
                    'a time is ISO 8601 text with an offset, e.g. "2026-11-20T10:00:00Z", or `now`',
                )
