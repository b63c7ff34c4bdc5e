"""Actions: what the engine decided to do for a contact (LANGUAGE.md section 5b). Plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

__all__ = ["ACTION_KINDS", "Action", "action_id", "derived_id"]

ACTION_KINDS = ("email", "sms", "webhook", "audience_add", "audience_remove", "show")


def action_id(rule: str, contact_id: str, trigger_id: str, step: int) -> str:
    """The deterministic id of the action a rule's step gives a contact for a triggering
    event. The contact is part of it: ids of events the engine makes (`score_changed`, ...)
    derive from the event that caused them, and a merge brings one contact's timers to
    another."""
    return "a-" + derived_id(rule, contact_id, trigger_id, str(step))


def derived_id(*parts: str) -> str:
    """The first 20 hex digits of sha256 over the parts joined by the unit separator."""
    return sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:20]


@dataclass(slots=True)
class Action:
    """One action. `at` is when it is due, ISO 8601 in UTC; `suppressed` names why it is not
    delivered (`no_consent`, `no_address`, `limited`, `capped`), or is None."""

    id: str
    rule: str
    contact_id: str
    kind: str
    at: str
    template: str | None = None
    to: Any = None
    name: str | None = None
    content: str | None = None
    slot: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    contact: dict[str, Any] | None = None  # the contact's traits when decided, for templates
    suppressed: str | None = None

    def to_json(self, full: bool = False) -> dict[str, Any]:
        """The section 5b object. `full` adds the contact snapshot (the actions topic)."""
        out: dict[str, Any] = {
            "id": self.id,
            "rule": self.rule,
            "contact_id": self.contact_id,
            "kind": self.kind,
        }
        kind = self.kind
        if kind in {"email", "sms"}:
            out["template"] = self.template
            out["to"] = self.to
        elif kind in {"webhook", "audience_add", "audience_remove"}:
            out["name"] = self.name
        elif kind == "show":
            out["content"] = self.content
            out["slot"] = self.slot
        out["at"] = self.at
        out["data"] = self.data
        if self.suppressed is not None:
            out["suppressed"] = self.suppressed
        if full:
            out["contact"] = self.contact
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Action:
        """The inverse of `to_json` (either form)."""
        return cls(
            id=obj["id"],
            rule=obj["rule"],
            contact_id=obj["contact_id"],
            kind=obj["kind"],
            at=obj["at"],
            template=obj.get("template"),
            to=obj.get("to"),
            name=obj.get("name"),
            content=obj.get("content"),
            slot=obj.get("slot"),
            data=obj.get("data") or {},
            contact=obj.get("contact"),
            suppressed=obj.get("suppressed"),
        )

    @property
    def target(self) -> str | None:
        """The template, endpoint or audience name, or the content: what tests match on."""
        kind = self.kind
        if kind in {"email", "sms"}:
            return self.template
        if kind == "show":
            return self.content
        return self.name
