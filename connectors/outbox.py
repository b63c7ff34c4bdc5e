"""The outbox: an unconfigured channel writes what it would send to a file instead.

One JSON-lines file per channel (`outbox/email.jsonl`, `outbox/sms.jsonl`, ...), one line
per action: `{"written_at", "channel", "action", "rendered"}` where `rendered` is what the
real connector would have sent (subject and bodies for email, the text for sms) when the
channel has templates. A template that is missing or fails is written as `render_error`
and the delivery fails as it would with the channel configured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from nudge.connectors.base import Action, Outcome, PermanentError, format_timestamp

__all__ = ["OutboxConnector", "Renderer"]

Renderer = Callable[[Action], dict[str, Any]]
"""What an action renders to for the outbox; raises `PermanentError` when it cannot."""


class OutboxConnector:
    def __init__(
        self,
        channel: str,
        directory: Path | str,
        *,
        render: Renderer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.channel = channel
        self.path = Path(directory) / f"{channel}.jsonl"
        self.render = render
        self.clock = clock
        self._lock = asyncio.Lock()

    async def deliver(self, action: Action) -> Outcome:
        record: dict[str, Any] = {
            "written_at": format_timestamp(self.clock()),
            "channel": self.channel,
            "action": dict(action),
        }
        failure: PermanentError | None = None
        if self.render is not None:
            try:
                record["rendered"] = self.render(action)
            except PermanentError as exc:
                record["render_error"] = str(exc)
                failure = exc
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)
        async with self._lock:
            await asyncio.to_thread(self._append, line)
        if failure is not None:
            raise failure
        return Outcome("sent", detail=f"written to {self.path}")

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as handle:
            handle.write(line)
