"""Email over SMTP (aiosmtplib): compose a multipart message from templates, send it.

The message is multipart/alternative (text, then HTML). Its `Message-ID` derives from the
action id; `List-Unsubscribe` and `List-Unsubscribe-Post` (RFC 8058 one-click) point at the
tracking unsubscribe URL; links in the HTML go through the click endpoint and an open
pixel is appended (the text part keeps its links as they are).

SMTP replies map to errors: 4xx is retryable, 5xx on the recipient or the content is a
bounce, a refused or timed-out connection is retryable, a refused login is permanent.
"""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import aiosmtplib

from nudge.config import SmtpTarget
from nudge.connectors.base import (
    Action,
    BounceError,
    DeliveryError,
    Outcome,
    PermanentError,
    RetryableError,
)
from nudge.connectors.templates import Templates, template_context
from nudge.connectors.tracking import Tracker

__all__ = ["EmailConnector", "SmtpSessions", "compose_email", "message_id_for"]

# Headers are not folded below 998 characters, the line limit of RFC 5322: mail clients
# expect `List-Unsubscribe: <url>` as it is, not split or encoded.
_WIRE = email.policy.SMTP.clone(max_line_length=998)
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def message_id_for(action_id: str, from_addr: str) -> str:
    """`<nudge.<action id>@<sender's domain>>`; the id is hashed when it has unsafe characters."""
    domain = parseaddr(from_addr)[1].rpartition("@")[2] or "nudge.invalid"
    local = (
        action_id
        if _SAFE_ID.fullmatch(action_id)
        else hashlib.sha256(action_id.encode()).hexdigest()[:32]
    )
    return f"<nudge.{local}@{domain}>"


def _recipient(action: Action) -> str:
    to = action.get("to")
    if not isinstance(to, str) or not to.strip():
        raise PermanentError("no email address to send to (the contact has no `email`)")
    address = to.strip()
    try:
        Address(addr_spec=address)
    except (ValueError, IndexError) as exc:
        raise PermanentError(f"`{address}` is not an email address", detail=str(exc)) from None
    if "@" not in address:
        raise PermanentError(f"`{address}` is not an email address")
    return address


def compose_email(
    action: Action,
    *,
    templates: Templates,
    tracker: Tracker,
    from_addr: str,
    now: datetime | None = None,
) -> EmailMessage:
    """The message an email action becomes; raises `PermanentError` (e.g. `TemplateError`)."""
    to = _recipient(action)
    name = action.get("template")
    if not isinstance(name, str) or not name:
        raise PermanentError("the email action names no template")
    unsubscribe = tracker.unsubscribe_url(action)
    rendered = templates.render_email(name, template_context(action, unsubscribe))
    message = EmailMessage()
    try:
        message["From"] = from_addr
        message["To"] = to
        message["Subject"] = rendered.subject
    except ValueError as exc:
        raise PermanentError("bad header value", detail=str(exc)) from None
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = message_id_for(str(action.get("id", "")), from_addr)
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["X-Nudge-Action"] = str(action.get("id", ""))
    message["X-Nudge-Rule"] = str(action.get("rule", ""))
    message.set_content(rendered.text)
    message.add_alternative(tracker.rewrite_html(rendered.html, action), subtype="html")
    return message


class SmtpSessions:
    """Open SMTP sessions to one server, reused from message to message.

    At most `size` at once (a sender waits for a free one). A session idle for `idle`
    seconds or more is closed rather than reused (servers drop idle clients, commonly after
    a minute or five), and one that has sent `per_session` messages is closed after the last
    of them (some servers cap messages per connection). A session that failed in any way is
    closed, never reused: a message is never sent again on a session in an unknown state.
    """

    def __init__(
        self,
        target: SmtpTarget,
        *,
        timeout: float,
        size: int = 4,
        idle: float = 30.0,
        per_session: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.target = target
        self.timeout = timeout
        self.idle = idle
        self.per_session = per_session
        self.clock = clock
        self.opened = 0  # sessions opened so far
        self._free = asyncio.Semaphore(size)
        self._idle: list[tuple[aiosmtplib.SMTP, float, int]] = []  # (session, last used, sent)

    async def send(self, message: bytes, sender: str, recipients: list[str]) -> str:
        """Send on a free session; returns the server's reply to the message."""
        async with self._free:
            session, sent = await self._take()
            try:
                _, reply = await session.sendmail(sender, recipients, message)
            except BaseException:
                session.close()  # its state is unknown: never reused
                raise
            sent += 1
            if sent >= self.per_session:
                await _quit(session)
            else:
                self._idle.append((session, self.clock(), sent))
            return reply

    async def aclose(self) -> None:
        """Say goodbye to the idle sessions."""
        idle, self._idle = self._idle, []
        for session, _, _ in idle:
            await _quit(session)

    async def _take(self) -> tuple[aiosmtplib.SMTP, int]:
        now = self.clock()
        while self._idle:
            session, last_used, sent = self._idle.pop()
            if now - last_used < self.idle and session.is_connected:
                return session, sent
            await _quit(session)
        t = self.target
        session = aiosmtplib.SMTP(
            hostname=t.host,
            port=t.port,
            username=t.username,
            password=t.password,
            use_tls=t.use_tls,
            start_tls=t.start_tls,
            timeout=self.timeout,
        )
        await session.connect()
        self.opened += 1
        return session, 0


async def _quit(session: aiosmtplib.SMTP) -> None:
    try:
        await session.quit()
    except (aiosmtplib.SMTPException, OSError):
        session.close()


class EmailConnector:
    """Sends email actions through one SMTP server, over reused sessions (`SmtpSessions`)."""

    def __init__(
        self,
        target: SmtpTarget,
        from_addr: str,
        templates: Templates,
        tracker: Tracker,
        *,
        timeout: float = 30.0,
        connections: int = 4,
    ) -> None:
        self.target = target
        self.from_addr = from_addr
        self.templates = templates
        self.tracker = tracker
        self.timeout = timeout
        self.sessions = SmtpSessions(target, timeout=timeout, size=connections)

    async def deliver(self, action: Action) -> Outcome:
        message = compose_email(
            action, templates=self.templates, tracker=self.tracker, from_addr=self.from_addr
        )
        message_id = str(message["Message-ID"])
        t = self.target
        try:
            reply = await self.sessions.send(
                message.as_bytes(policy=_WIRE),
                parseaddr(self.from_addr)[1],
                [str(message["To"])],
            )
        except aiosmtplib.SMTPException as exc:
            raise _classify(exc, t) from exc
        except OSError as exc:  # refused, unreachable, reset
            raise RetryableError(f"SMTP {t.host}:{t.port} unreachable", detail=str(exc)) from exc
        return Outcome("sent", detail=reply.strip(), provider_id=message_id)

    async def aclose(self) -> None:
        await self.sessions.aclose()


def _classify(exc: aiosmtplib.SMTPException, target: SmtpTarget) -> DeliveryError:
    where = f"SMTP {target.host}:{target.port}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        if any(code >= 500 for code in codes):
            return BounceError("recipient refused", detail=detail)
        return RetryableError("recipient deferred", detail=detail)
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPTimeoutError):
        return RetryableError(f"{where}: {type(exc).__name__}", detail=exc.message)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return RetryableError(f"{where}: disconnected", detail=exc.message)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        detail = f"{exc.code} {exc.message}"
        if 400 <= exc.code < 500:
            return RetryableError(f"{where}: temporary failure", detail=detail)
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return PermanentError(f"{where}: login refused (check smtp_url)", detail=detail)
        if isinstance(exc, aiosmtplib.SMTPSenderRefused | aiosmtplib.SMTPHeloError):
            return PermanentError(f"{where}: sender refused (check smtp_from)", detail=detail)
        return BounceError("message refused", detail=detail)
    return PermanentError(f"{where}: {type(exc).__name__}", detail=exc.message)
