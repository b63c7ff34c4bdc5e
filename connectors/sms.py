"""SMS through an HTTP gateway (httpx): render `T.sms.txt`, POST it as JSON.

The request is `POST <sms_url>` with `Authorization: Bearer <sms_token>`, an
`Idempotency-Key` of the action id, and the body
`{"to": ..., "from": ..., "body": ..., "reference": <action id>}`. A JSON answer's `id`
(or `message_id`, `sid`) is kept as the provider's message id.
"""

from __future__ import annotations

import httpx
import orjson

from nudge.connectors._http import request
from nudge.connectors.base import Action, Outcome, PermanentError
from nudge.connectors.templates import Templates, template_context

__all__ = ["SmsConnector", "provider_id_of"]


def provider_id_of(response: httpx.Response) -> str | None:
    """The message id in a JSON answer (`id`, `message_id` or `sid`), if any."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    if isinstance(body, dict):
        for key in ("id", "message_id", "sid"):
            if isinstance(body.get(key), str | int):
                return str(body[key])
    return None


class SmsConnector:
    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        templates: Templates,
        *,
        token: str | None = None,
        sender: str | None = None,
    ) -> None:
        self.client = client
        self.url = url
        self.templates = templates
        self.token = token
        self.sender = sender

    async def deliver(self, action: Action) -> Outcome:
        to = action.get("to")
        if not isinstance(to, str) or not to.strip():
            raise PermanentError("no phone number to send to (the contact has no `phone`)")
        name = action.get("template")
        if not isinstance(name, str) or not name:
            raise PermanentError("the sms action names no template")
        body = self.templates.render_sms(name, template_context(action))
        action_id = str(action.get("id", ""))
        headers = {"Content-Type": "application/json", "Idempotency-Key": action_id}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        payload = {"to": to.strip(), "from": self.sender, "body": body, "reference": action_id}
        response = await request(
            self.client, "POST", self.url, what="sms gateway",
            content=orjson.dumps(payload), headers=headers,
        )  # fmt: skip
        return Outcome(
            "sent", detail=f"HTTP {response.status_code}", provider_id=provider_id_of(response)
        )
