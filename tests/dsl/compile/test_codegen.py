"""Generated code: where it says it comes from, what it can reach, and what it folds."""

from __future__ import annotations

import dis
import json
import re
from dataclasses import dataclass, field
from typing import Any

from nudge.dsl import ast
from nudge.dsl.check import check
from nudge.dsl.compile import compile_ruleset
from nudge.dsl.compile.codegen import FileUnit, Scope, compile_expression
from nudge.dsl.compile.fold import Folder
from nudge.dsl.parse import parse, parse_expression
from nudge.dsl.plan import RuleSet
from nudge.dsl.source import Source


@dataclass
class Ev:
    id: str = "e1"
    type: str = "cart_updated"
    contact_id: str = "c1"
    ts: float = 0.0
    timestamp: str = "1970-01-01T00:00:00Z"
    properties: dict[str, Any] = field(default_factory=dict)


def plan_of(text: str, path: str = "rules/shop.rules") -> RuleSet:
    rule_file, syntax = parse(Source(path, text))
    assert not syntax, [d.message for d in syntax]
    return compile_ruleset(check(ast.Ruleset((rule_file,))))


def expr(text: str) -> ast.Expr:
    node, diagnostics = parse_expression(text)
    assert node is not None and not diagnostics
    return node


SHOP = """\
let nordic = ["SE", "NO"]

rule big_cart
    when cart_updated as cart where cart.value > 100
    if contact.country in nordic
       and cart.items contains "gift"
    then
        send email "big" with { value: cart.value }
end
"""


def test_functions_carry_the_rules_file_and_line() -> None:
    plan = plan_of(SHOP)
    rule = plan.rule("big_cart")
    assert rule is not None and rule.trigger.first is not None
    where = rule.trigger.first.where
    condition = rule.condition
    assert where is not None and condition is not None
    assert where.__code__.co_filename == "rules/shop.rules"
    assert where.__code__.co_firstlineno == 4
    assert condition.__code__.co_firstlineno == 5
    # The `contains` test sits on the next line of the condition; its code says so.
    lines = {i.positions.lineno for i in dis.get_instructions(condition) if i.positions}
    assert {5, 6} <= lines
    data = rule.steps[0]
    assert data.origin.line == 8


def test_functions_are_named_after_their_place() -> None:
    rule = plan_of(SHOP).rule("big_cart")
    assert rule is not None and rule.condition is not None
    assert rule.condition.__name__ == "big_cart.if"
    assert rule.condition.__code__.co_name == "big_cart.if"


def test_one_compilation_per_file() -> None:
    text = SHOP + SHOP.replace("big_cart", "other_cart").replace("let nordic", "let other")
    plan = plan_of(text)
    fns = [r.condition for r in plan.rules]
    namespaces = {id(f.__globals__) for f in fns if f is not None}
    assert len(namespaces) == 1


def test_a_file_namespace_holds_no_builtins_and_is_private() -> None:
    fn = compile_expression(expr("contact.a == 1"))
    assert fn.__globals__["__builtins__"] == {}
    other = compile_expression(expr("contact.a == 1"))
    assert fn.__globals__ is not other.__globals__
    assert "__import__" not in fn.__globals__
    assert "open" not in fn.__globals__


def test_user_strings_are_inert_data() -> None:
    nasty = [
        '"); __import__("os").system("echo pwned"); ("',
        "\nimport os\n",
        "'''\"\"\"\\",
        "__import__",
        "{0.__class__}",
    ]
    for value in nasty:
        literal = json.dumps(value)  # the language's string escapes are JSON's
        fn = compile_expression(expr(f"contact.name == {literal} or contact.name"))
        assert fn({}, {"name": value}, 0.0, None) is True
        assert fn({}, {"name": value + "x"}, 0.0, None) is False
        obj = compile_expression(expr(f"{{{literal}: {literal}}}"), value=True)
        assert obj({}, {}, 0.0, None) == {value: value}


def test_names_become_keys_not_identifiers() -> None:
    # `__import__` as an alias and a field is only ever a dictionary key.
    text = """\
rule r
    when page_viewed as __import__ where __import__.__class__ == "x"
    then
end
"""
    plan = plan_of(text)
    rule = plan.rule("r")
    assert rule is not None and rule.trigger.first is not None
    where = rule.trigger.first.where
    assert where is not None
    names = set(where.__code__.co_names)
    assert "__import__" not in names and "__class__" not in names
    assert where({"event": Ev(properties={"__class__": "x"})}, {}, 0.0, None) is True


def test_lets_fold_to_constants() -> None:
    plan = plan_of(SHOP)
    rule = plan.rule("big_cart")
    assert rule is not None and rule.condition is not None
    consts = rule.condition.__code__.co_consts
    assert frozenset({"SE", "NO"}) in consts
    assert "nordic" not in rule.condition.__code__.co_names


def test_literal_subexpressions_fold() -> None:
    fn = compile_expression(expr('contact.age > 2 * 9 and contact.name == upper("x") + "y"'))
    consts = fn.__code__.co_consts
    assert 18 in consts and "Xy" in consts
    assert "mul" not in fn.__code__.co_names and "upper" not in fn.__code__.co_names


def test_regexes_compile_once() -> None:
    fn = compile_expression(expr('contact.email matches "^[a-z]+@"'))
    patterns = [v for v in fn.__globals__.values() if isinstance(v, re.Pattern)]
    assert [p.pattern for p in patterns] == ["^[a-z]+@"]
    assert fn({}, {"email": "ann@x"}, 0.0, None) is True


def test_constant_lists_leave_as_copies() -> None:
    text = 'let tags = ["a"]\nlet __expr__ = { tags: tags }\n'
    rule_file, _ = parse(Source("x.rules", text))
    lets = {d.name.value: d for d in rule_file.decls if isinstance(d, ast.Let)}
    fn = compile_expression(lets["__expr__"].value, lets=lets, value=True)
    first = fn({}, {}, 0.0, None)
    first["tags"].append("mutated")
    assert fn({}, {}, 0.0, None) == {"tags": ["a"]}


def test_only_runtime_names_are_referenced() -> None:
    from nudge.dsl.compile import runtime

    fn = compile_expression(
        expr(
            "lower(contact.a) in [1, true] and now - contact.t > 1d and count(x within 1h) > 1 "
            "and contact in vip and event.id matches contact.p and -contact.n / 2 < 0"
        )
    )
    consts = {k for k in fn.__globals__ if k.startswith("_")} - {"__builtins__"}
    referenced = set(fn.__code__.co_names) - {"get", "properties"}
    assert referenced <= set(runtime.NAMES) | consts


def test_unit_keys_are_stable() -> None:
    unit = FileUnit("x.rules", Folder({}))
    node = expr("contact.a")
    assert unit.add(node, Scope(), "a") == unit.add(node, Scope(), "a")
    assert unit.add(node, Scope(), "b") != unit.add(node, Scope(), "a")


def test_doctests_of_the_compiler_modules() -> None:
    import doctest

    from nudge.dsl.compile import canon, fold

    for module in (canon, fold):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0


def test_public_names() -> None:
    import nudge.dsl.compile as package

    assert package.__all__ == ["CompileError", "compile_ruleset"]
    for name in package.__all__:
        assert hasattr(package, name)


def test_a_traceback_lands_on_the_rules_line() -> None:
    """Handed something that is not a bindings mapping, generated code fails where the marketer
    wrote the expression: the traceback's last frame is the `.rules` file and line."""
    import traceback

    rule = plan_of(SHOP).rule("big_cart")
    assert rule is not None and rule.condition is not None
    try:
        rule.condition(None, {"country": "SE"}, 0.0, None)  # type: ignore[arg-type]
    except AttributeError as exc:
        last = traceback.extract_tb(exc.__traceback__)[-1]
    else:  # pragma: no cover
        raise AssertionError("expected an AttributeError")
    assert (last.filename, last.lineno, last.name) == ("rules/shop.rules", 6, "big_cart.if")
