"""Declarations: names given twice, schemas, policies."""

from __future__ import annotations

from .. import ast
from ..codes import diagnostic
from ..diagnostics import Diagnostic, hint
from ..source import Span
from .context import CONTACT_BUILTINS, POLICY_CHANNELS, SCHEMA_TYPES, Context

# Type names from other languages, and what they are here.
_TYPE_SYNONYMS = {
    "int": "number", "integer": "number", "float": "number", "double": "number",
    "decimal": "number", "numeric": "number", "str": "string", "text": "string",
    "boolean": "bool", "date": "time", "datetime": "time", "timestamp": "time",
    "array": "list", "dict": "object", "map": "object", "json": "object",
}  # fmt: skip


def check_declarations(ruleset: ast.Ruleset, ctx: Context) -> list[Diagnostic]:
    """Duplicate names, schemas, fields and policies; unknown types and policy channels.

    >>> let nordic = ["SE", "NO"]
    >>> let nordic = ["DK"]          # duplicate-name
    >>> event e { n: integer }       # unknown-type
    >>> policy mail limit 3 per 7d   # unknown-channel
    """
    out: list[Diagnostic] = []
    first: dict[tuple[str, str], Span] = {}

    def once(kind: str, name: str, span: Span, code: str, message: str) -> None:
        key = (kind, name)
        if key in first:
            out.append(diagnostic(code, message, span, "", f"first declared at {first[key]}"))
        else:
            first[key] = span

    for decl in ruleset.decls():
        if isinstance(decl, ast.Rule):
            n = decl.name
            once(
                "rule",
                n.value,
                n.span,
                "duplicate-name",
                f"a rule named `{n.value}` already exists",
            )
        elif isinstance(decl, ast.Let):
            n = decl.name
            once(
                "let",
                n.value,
                n.span,
                "duplicate-name",
                f"the constant `{n.value}` is declared twice",
            )
        elif isinstance(decl, ast.Segment):
            n = decl.name
            once(
                "segment",
                n.value,
                n.span,
                "duplicate-name",
                f"the segment `{n.value}` is declared twice",
            )
        elif isinstance(decl, ast.Test):
            name = str(decl.name.value)
            once(
                "test",
                name,
                decl.name.span,
                "duplicate-name",
                f'a test named "{name}" already exists',
            )
        elif isinstance(decl, ast.EventSchema):
            n = decl.name
            once(
                "event",
                n.value,
                n.span,
                "duplicate-schema",
                f"the event `{n.value}` has a schema already",
            )
            out += _fields(decl.fields, f"event {n.value}", contact=False)
        elif isinstance(decl, ast.ContactSchema):
            once("contact", "", decl.span, "duplicate-schema", "the contact has a schema already")
            out += _fields(decl.fields, "contact", contact=True)
        elif isinstance(decl, ast.ChannelPolicy):
            channel = decl.channel
            if channel.value not in POLICY_CHANNELS:
                out.append(
                    diagnostic(
                        "unknown-channel",
                        f"unknown channel `{channel.value}`{hint(channel.value, POLICY_CHANNELS)}",
                        channel.span,
                        "",
                        "policies take email, sms, webhook, audience or show",
                    )
                )
            else:
                once(
                    "policy",
                    channel.value,
                    decl.span,
                    "duplicate-policy",
                    f"the {channel.value} policy is declared twice",
                )
        elif isinstance(decl, ast.QuietPolicy):
            once(
                "quiet",
                "",
                decl.span,
                "duplicate-policy",
                "the quiet hours policy is declared twice",
            )
    return out


def _fields(fields: tuple[ast.Field, ...], owner: str, *, contact: bool) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen: set[str] = set()
    for f in fields:
        name, type_ = f.name.value, f.type.value
        if name in seen:
            out.append(
                diagnostic("duplicate-field", f"{owner} declares `{name}` twice", f.name.span)
            )
        seen.add(name)
        if type_ not in SCHEMA_TYPES:
            meant = _TYPE_SYNONYMS.get(type_.lower())
            suggestion = f" (did you mean `{meant}`?)" if meant else hint(type_, SCHEMA_TYPES)
            out.append(
                diagnostic(
                    "unknown-type",
                    f"unknown type `{type_}`{suggestion}",
                    f.type.span,
                    "",
                    "types are string, number, bool, time, list and object",
                )
            )
        elif contact and name in CONTACT_BUILTINS and CONTACT_BUILTINS[name] != type_:
            kept = CONTACT_BUILTINS[name]
            out.append(
                diagnostic(
                    "reserved-field",
                    f"`{name}` is kept by the engine as a {kept}, not a {type_}",
                    f.type.span,
                )
            )
    return out
