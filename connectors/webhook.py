"""Webhooks (httpx): the action as JSON, POSTed to a named endpoint and signed.

Headers: `Content-Type: application/json`, `X-Nudge-Timestamp: <unix seconds>`,
`X-Nudge-Signature: sha256=<hex>` and `Idempotency-Key: <action id>`. The signature is
HMAC-SHA256 under the webhook secret of `<timestamp>.<body>`: the timestamp header's
value, a dot, then the exact body bytes. A receiver recomputes it over the raw body (before
any JSON parsing), compares in constant time, and rejects timestamps more than a few
minutes old, so a captured request cannot be replayed later (`verify_signature` does all
three). The same `Idempotency-Key` may arrive twice only if a response was lost.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

import httpx
import orjson

from nudge.connectors._http import request
from nudge.connectors.base import Action, Outcome, PermanentError
from nudge.connectors.sms import provider_id_of

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookConnector", "sign", "verify_signature"]

SIGNATURE_HEADER = "X-Nudge-Signature"
TIMESTAMP_HEADER = "X-Nudge-Timestamp"


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The `X-Nudge-Signature` value for `body` sent at `timestamp`: `sha256=<hex>`."""
    digest = hmac.new(_key(secret), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify_signature(
    secret: str | bytes,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    tolerance: float = 300.0,
    now: float | None = None,
) -> bool:
    """A receiver's check: the signature matches and the timestamp is within `tolerance` s."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature.strip())


class WebhookConnector:
    def __init__(
        self,
        client: httpx.AsyncClient,
        endpoints: Mapping[str, str],
        secret: str | bytes,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.endpoints = dict(endpoints)
        self.secret = secret
        self.clock = clock

    async def deliver(self, action: Action) -> Outcome:
        name = action.get("name")
        url = self.endpoints.get(name) if isinstance(name, str) else None
        if url is None:
            raise PermanentError(
                f"no endpoint configured for webhook `{name}`",
                detail=f"configured: {', '.join(sorted(self.endpoints)) or 'none'} (setting `webhooks`)",
            )
        body = orjson.dumps(dict(action))
        timestamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            "Idempotency-Key": str(action.get("id", "")),
        }
        response = await request(
            self.client, "POST", url, what=f"webhook `{name}`", content=body, headers=headers
        )
        return Outcome(
            "sent", detail=f"HTTP {response.status_code}", provider_id=provider_id_of(response)
        )
