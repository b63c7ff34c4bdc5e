"""A ruleset's `test` blocks to `plan.TestCase`s (LANGUAGE.md §6).

Given traits and event data are constants (literals and lets, folded here); timestamps become
epoch seconds; `expect <contact> has <condition>` becomes a function over that contact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .. import ast, plan
from .canon import expect_text
from .codegen import FileUnit, Scope
from .fold import NOT_CONSTANT

__all__ = ["CompileError", "compile_test", "parse_timestamp"]


class CompileError(ValueError):
    """Something the checker should have refused reached the compiler; carries the place."""

    def __init__(self, message: str, span: Any) -> None:
        super().__init__(f"{span}: {message}")
        self.span = span


def parse_timestamp(stamp: ast.Timestamp) -> float:
    """`2026-11-20T10:00:00Z` to epoch seconds (an offset-less stamp is UTC)."""
    try:
        dt = datetime.fromisoformat(stamp.text)
    except ValueError:
        raise CompileError(f"`{stamp.text}` is not a valid timestamp", stamp.span) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _data(unit: FileUnit, obj: ast.ObjectExpr | None) -> dict[str, Any]:
    """An object of constants; an entry that is not constant (refused by the checker) is null."""
    if obj is None:
        return {}
    out: dict[str, Any] = {}
    for entry in obj.entries:
        value = unit.folder.value(entry.value)
        out[entry.key.value] = None if value is NOT_CONSTANT else value
    return out


def _origin(span: Any) -> plan.Origin:
    return plan.Origin(span.path, span.line, span.column)


def _pending(b: Any, c: Any, now: float, h: Any) -> Any:
    raise RuntimeError("a test function was called before its file was compiled")


def compile_test(test: ast.Test, unit: FileUnit, built: bool) -> plan.TestCase:
    """One `test` block; `built`: the unit is compiled (else expectations get placeholders)."""
    name = str(test.name.value)
    contacts: dict[str, dict[str, Any]] = {}
    events: list[plan.TestEvent] = []
    expects: list[plan.ExpectAction | plan.ExpectContact] = []
    for index, item in enumerate(test.items):
        match item:
            case ast.Given(contact=contact, traits=traits):
                contacts.setdefault(contact.value, {}).update(_data(unit, traits))
            case ast.TestEvent(at=at, contact=contact, event=event, data=data):
                events.append(
                    plan.TestEvent(
                        parse_timestamp(at),
                        at.text,
                        contact.value,
                        event.value,
                        _data(unit, data),
                        _origin(item.span),
                    )
                )
            case ast.Expect():
                target = item.target.value if item.target is not None else None
                expects.append(
                    plan.ExpectAction(
                        negated=item.negated,
                        at=parse_timestamp(item.at) if item.at is not None else None,
                        contact=item.contact.value if item.contact is not None else None,
                        kind=item.kind.value,
                        target=str(target) if target is not None else None,
                        data=_data(unit, item.data) if item.data is not None else None,
                        text=expect_text(item),
                        origin=_origin(item.span),
                        slot=str(item.slot.value) if item.slot is not None else None,
                    )
                )
            case ast.ExpectContact(at=at, contact=contact, condition=condition):
                key = unit.add(condition, Scope({}), f"test {name!r} expect{index}")
                expects.append(
                    plan.ExpectContact(
                        at=parse_timestamp(at) if at is not None else None,
                        contact=contact.value,
                        condition=unit.fn(key) if built else _pending,
                        text=expect_text(item),
                        origin=_origin(item.span),
                    )
                )
    events.sort(key=lambda e: e.at)  # stable: events at the same time keep their order
    return plan.TestCase(name, contacts, tuple(events), tuple(expects), _origin(test.span))
