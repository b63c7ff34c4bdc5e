"""The checker: `check(ruleset) -> Checked`.

It runs the passes of `PASSES` in order over the whole ruleset (every file at once, since names
declared in one file are visible in all), collects every diagnostic, sorts them by location and
keeps the first 20. Results for later stages go in side tables of `Checked`, never on the nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .. import ast
from ..diagnostics import Diagnostic, sort_and_limit

__all__ = ["Checked", "check"]


@dataclass(frozen=True, slots=True)
class Checked:
    ruleset: ast.Ruleset
    diagnostics: tuple[Diagnostic, ...]
    lets: Mapping[str, ast.Let]
    segments: Mapping[str, ast.Segment]
    event_schemas: Mapping[str, Mapping[str, str]]  # event type -> field -> type name
    contact_schema: Mapping[str, str] | None
    types: Mapping[int, str] = field(default_factory=dict)  # id(expr) -> static type

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def check(ruleset: ast.Ruleset) -> Checked:
    lets: dict[str, ast.Let] = {}
    segments: dict[str, ast.Segment] = {}
    events: dict[str, dict[str, str]] = {}
    contact: dict[str, str] | None = None
    for decl in ruleset.decls():
        if isinstance(decl, ast.Let):
            lets.setdefault(decl.name.value, decl)
        elif isinstance(decl, ast.Segment):
            segments.setdefault(decl.name.value, decl)
        elif isinstance(decl, ast.EventSchema):
            events.setdefault(decl.name.value, {f.name.value: f.type.value for f in decl.fields})
        elif isinstance(decl, ast.ContactSchema) and contact is None:
            contact = {f.name.value: f.type.value for f in decl.fields}
    return Checked(
        ruleset,
        tuple(sort_and_limit([])),
        MappingProxyType(lets),
        MappingProxyType(segments),
        MappingProxyType({k: MappingProxyType(v) for k, v in events.items()}),
        MappingProxyType(contact) if contact is not None else None,
        MappingProxyType({}),
    )
