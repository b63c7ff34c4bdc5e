"""What every pass may read: the ruleset's declarations by name, and the language's fixed tables.

The context is built once, before the passes run; for a name declared twice the first declaration
wins (the declarations pass reports the second). `types` is the side table the types pass fills.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import ast
from .walk import decl_expressions, subexpressions

# The envelope fields every event has besides its properties (semantics: "if the event has no
# such property, the envelope fields").
ENVELOPE: dict[str, str] = {
    "id": "string",
    "event": "string",
    "contact_id": "string",
    "timestamp": "time",
}

# Fields the engine keeps on every contact.
CONTACT_BUILTINS: dict[str, str] = {
    "score": "number",
    "stage": "string",
    "first_seen": "time",
    "last_seen": "time",
    "segments": "list",
}

# Traits the engine itself reads when a contact declares no such field: addresses, consent
# (LANGUAGE.md section 5) and the time zone of quiet hours.
ENGINE_READ_TRAITS = frozenset(
    {"email", "phone", "timezone", "consent_email", "consent_sms", "consent_ads"}
)

# Events the engine, the connectors and tracking produce (LANGUAGE.md §4), plus `identify`.
ENGINE_EVENTS: frozenset[str] = frozenset(
    {
        "identify",
        "stage_changed",
        "score_changed",
        "segment_entered",
        "segment_left",
        "email_sent",
        "email_delivered",
        "email_bounced",
        "email_opened",
        "email_clicked",
        "sms_sent",
        "sms_clicked",
        "sms_replied",
        "unsubscribed",
    }
)

# The language's keywords (LANGUAGE.md, docs/language.md): never the name of a constant, a
# segment or an alias, even where the parser would take them as one.
KEYWORDS: frozenset[str] = frozenset({
    "rule", "when", "then", "end", "if", "let", "segment", "event", "contact", "policy", "test",
    "given", "at", "expect", "has", "no", "send", "audience", "add", "remove", "show", "in", "set",
    "unset", "score", "emit", "wait", "stop", "exit", "on", "limit", "per", "once", "quiet",
    "hours", "priority", "goal", "within", "followed", "by", "not", "and", "or", "is", "null",
    "true", "false", "now", "count", "as", "where", "inactive", "for", "entered", "left", "to",
    "with",
})  # fmt: skip

SEND_CHANNELS = ("email", "sms", "webhook", "best")
POLICY_CHANNELS = ("email", "sms", "webhook", "audience", "show")
ACTION_KINDS = ("email", "sms", "webhook", "audience_add", "audience_remove", "show")
SCHEMA_TYPES = ast.TYPE_NAMES


@dataclass(slots=True)
class Context:
    ruleset: ast.Ruleset
    lets: dict[str, ast.Let]
    let_order: dict[str, int]  # position of each constant among all declarations
    segments: dict[str, ast.Segment]
    event_schemas: dict[str, dict[str, str]]
    contact_schema: dict[str, str] | None
    event_types: frozenset[str]  # every event type the ruleset names anywhere
    types: dict[int, str] = field(default_factory=dict)

    @classmethod
    def build(cls, ruleset: ast.Ruleset) -> Context:
        lets: dict[str, ast.Let] = {}
        let_order: dict[str, int] = {}
        segments: dict[str, ast.Segment] = {}
        events: dict[str, dict[str, str]] = {}
        contact: dict[str, str] | None = None
        for index, decl in enumerate(ruleset.decls()):
            if isinstance(decl, ast.Let) and decl.name.value not in lets:
                lets[decl.name.value] = decl
                let_order[decl.name.value] = index
            elif isinstance(decl, ast.Segment):
                segments.setdefault(decl.name.value, decl)
            elif isinstance(decl, ast.EventSchema) and decl.name.value not in events:
                events[decl.name.value] = _fields(decl.fields)
            elif isinstance(decl, ast.ContactSchema) and contact is None:
                contact = _fields(decl.fields)
        return cls(
            ruleset,
            lets,
            let_order,
            segments,
            events,
            contact,
            frozenset(_event_types(ruleset)) | ENGINE_EVENTS,
        )

    def event_fields(self, event_type: str | None) -> dict[str, str] | None:
        """The declared fields of an event type plus its envelope; None when undeclared."""
        if event_type is None or event_type not in self.event_schemas:
            return None
        return {**ENVELOPE, **self.event_schemas[event_type]}

    def contact_fields(self) -> dict[str, str] | None:
        """The contact's declared fields plus the engine's; None when there is no schema."""
        if self.contact_schema is None:
            return None
        return {**self.contact_schema, **CONTACT_BUILTINS}


def _fields(fields: tuple[ast.Field, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in fields:
        # a type that does not exist is reported once (`unknown-type`); the field is untyped
        out.setdefault(f.name.value, f.type.value if f.type.value in ast.TYPE_NAMES else "any")
    return out


def _event_types(ruleset: ast.Ruleset) -> set[str]:
    """Every event type named by a schema, trigger, clause, `count`, `emit` or test."""
    found: set[str] = set()
    for decl in ruleset.decls():
        for root in decl_expressions(decl):
            found.update(e.event.value for e in subexpressions(root) if isinstance(e, ast.Count))
        if isinstance(decl, ast.EventSchema):
            found.add(decl.name.value)
        elif isinstance(decl, ast.Rule):
            trigger = decl.trigger
            if isinstance(trigger, ast.OnEvent | ast.Repeated):
                found.add(trigger.match.event.value)
            elif isinstance(trigger, ast.FollowedBy | ast.NotFollowedBy):
                found.update((trigger.first.event.value, trigger.second.event.value))
            for clause in decl.clauses:
                if isinstance(clause, ast.ExitOn | ast.Goal):
                    found.add(clause.match.event.value)
            for step in decl.steps:
                if isinstance(step, ast.Emit):
                    found.add(step.event.value)
        elif isinstance(decl, ast.Test):
            for item in decl.items:
                if isinstance(item, ast.TestEvent):
                    found.add(item.event.value)
    return found
