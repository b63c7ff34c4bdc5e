"""Ad-platform audiences (httpx): add or remove a contact by hashed identifiers only.

Identifiers come from the contact's traits in the action: `email` (trimmed, lower-cased)
and `phone` (E.164 digits: country code and number, no `+`, spaces or punctuation; a
number in national format, starting with a single 0, is skipped since its country is
unknown). Each is SHA-256 hashed; nothing is sent in clear. The request is
`POST <audience_url>/audiences/<name>/add` (or `/remove`) with
`Authorization: Bearer <audience_token>` and the body
`{"members": [{"email_sha256": ..., "phone_sha256": ...}], "action_id": ...}`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from nudge.connectors._http import request
from nudge.connectors.base import Action, Outcome, PermanentError

__all__ = [
    "AudienceConnector",
    "hashed_identifiers",
    "normalize_email",
    "normalize_phone",
    "sha256_hex",
]

_OPERATIONS = {"audience_add": "add", "audience_remove": "remove"}


def normalize_email(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    return email if "@" in email else None


def normalize_phone(value: object) -> str | None:
    """`+46 70-123 45 67` or `0046701234567` to `46701234567`; None when not international."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = value.strip().replace("(0)", "")  # `+46 (0)70 ...`: the trunk 0 is not dialled
    international = text.startswith("+") or text.startswith("00")
    digits = re.sub(r"\D", "", text)
    if text.startswith("00"):
        digits = digits[2:]
    if not international and digits.startswith("0"):
        return None
    return digits if 8 <= len(digits) <= 15 else None


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hashed_identifiers(contact: Mapping[str, Any]) -> dict[str, str]:
    """`email_sha256` and `phone_sha256` for what the contact has."""
    out: dict[str, str] = {}
    email = normalize_email(contact.get("email"))
    if email:
        out["email_sha256"] = sha256_hex(email)
    phone = normalize_phone(contact.get("phone"))
    if phone:
        out["phone_sha256"] = sha256_hex(phone)
    return out


class AudienceConnector:
    def __init__(self, client: httpx.AsyncClient, base_url: str, *, token: str | None = None):
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.token = token

    async def deliver(self, action: Action) -> Outcome:
        operation = _OPERATIONS.get(str(action.get("kind")))
        if operation is None:
            raise PermanentError(f"not an audience action: kind `{action.get('kind')}`")
        name = action.get("name")
        if not isinstance(name, str) or not name:
            raise PermanentError("the audience action names no audience")
        member = hashed_identifiers(action.get("contact") or {})
        if not member:
            raise PermanentError("the contact has no email or international phone number to match")
        body = orjson.dumps({"members": [member], "action_id": action.get("id")})
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = f"{self.base_url}/audiences/{quote(name, safe='')}/{operation}"
        response = await request(
            self.client, "POST", url, what=f"audience `{name}` {operation}",
            content=body, headers=headers,
        )  # fmt: skip
        return Outcome("sent", detail=f"HTTP {response.status_code}")
