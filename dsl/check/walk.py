"""Walking expressions without recursion (deeply nested input must not overflow the stack)."""

from __future__ import annotations

from collections.abc import Iterator

from .. import ast


def children(expr: ast.Expr) -> tuple[ast.Expr, ...]:
    """The direct sub-expressions of an expression, left to right."""
    if isinstance(expr, ast.ListExpr):
        return expr.items
    if isinstance(expr, ast.ObjectExpr):
        return tuple(e.value for e in expr.entries)
    if isinstance(expr, ast.Unary):
        return (expr.operand,)
    if isinstance(expr, ast.Binary | ast.Compare | ast.Logical):
        return (expr.left, expr.right)
    if isinstance(expr, ast.IsNull):
        return (expr.operand,)
    if isinstance(expr, ast.Call):
        return expr.args
    if isinstance(expr, ast.Count):
        return (expr.where,) if expr.where is not None else ()
    return ()


def subexpressions(expr: ast.Expr) -> Iterator[ast.Expr]:
    """The expression and everything inside it, parents before children, left to right."""
    stack: list[ast.Expr] = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def outside_counts(expr: ast.Expr) -> Iterator[ast.Expr]:
    """`subexpressions`, but not into a `count(...)`'s own condition, which sees only the
    counted event (the `count` itself is yielded)."""
    stack: list[ast.Expr] = [expr]
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.Count):
            stack.extend(reversed(children(node)))


def step_expressions(step: ast.Step) -> Iterator[ast.Expr]:
    """The expressions a step holds."""
    if isinstance(step, ast.Send):
        if step.to is not None:
            yield step.to
        if step.data is not None:
            yield step.data
    elif isinstance(step, ast.SetTrait):
        yield step.value
    elif isinstance(step, ast.Score):
        yield step.amount
    elif isinstance(step, ast.Emit):
        if step.data is not None:
            yield step.data
    elif isinstance(step, ast.StopIf):
        yield step.condition


def decl_expressions(decl: ast.Decl) -> Iterator[ast.Expr]:
    """Every top-level expression of a declaration (no scopes: see `scopes.roots`)."""
    if isinstance(decl, ast.Let):
        yield decl.value
    elif isinstance(decl, ast.Segment):
        yield decl.condition
    elif isinstance(decl, ast.Rule):
        for match in trigger_matches(decl.trigger):
            if match.where is not None:
                yield match.where
        if decl.condition is not None:
            yield decl.condition
        for step in decl.steps:
            yield from step_expressions(step)
        for clause in decl.clauses:
            if isinstance(clause, ast.ExitOn | ast.Goal) and clause.match.where is not None:
                yield clause.match.where
    elif isinstance(decl, ast.Test):
        for item in decl.items:
            if isinstance(item, ast.Given) and item.traits is not None:
                yield item.traits
            elif isinstance(item, ast.TestEvent | ast.Expect) and item.data is not None:
                yield item.data
            elif isinstance(item, ast.ExpectContact):
                yield item.condition


def trigger_matches(trigger: ast.Trigger) -> tuple[ast.EventMatch, ...]:
    if isinstance(trigger, ast.OnEvent | ast.Repeated):
        return (trigger.match,)
    if isinstance(trigger, ast.FollowedBy | ast.NotFollowedBy):
        return (trigger.first, trigger.second)
    return ()
