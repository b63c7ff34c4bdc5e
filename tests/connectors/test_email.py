"""Email through a real SMTP server on loopback: the message as received, and SMTP failures."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from nudge.config import parse_smtp_url
from nudge.connectors.base import BounceError, PermanentError, RetryableError
from nudge.connectors.email import EmailConnector, SmtpSessions
from nudge.connectors.templates import TemplateError, Templates
from nudge.connectors.tracking import Tracker, verify_token

SECRET = "tracking-secret-for-tests"
BASE = "https://t.shop.example"
FROM = "Shop <hello@shop.example>"
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def connector(url: str, *, timeout: float = 5.0, templates: Path = TEMPLATES) -> EmailConnector:
    return EmailConnector(
        parse_smtp_url(url, "off"),
        FROM,
        Templates(templates),
        Tracker(SECRET, BASE),
        timeout=timeout,
    )


def part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body((subtype,))
    assert body is not None
    content: str = body.get_content()  # type: ignore[attr-defined]
    return content


async def test_the_received_message(
    mail_server: Any, make_action: Callable[..., dict[str, Any]]
) -> None:
    action = make_action("email", contact={"first_name": "Ann <3", "email": "ann@example.se"})
    outcome = await connector(mail_server.url()).deliver(action)
    assert outcome.status == "sent"
    [message] = mail_server.messages
    assert mail_server.handler.envelopes == [("hello@shop.example", ["ann@example.se"])]

    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == "Ann <3, you left something in your cart"
    assert message["To"] == "ann@example.se"
    assert message["From"] == FROM
    assert message["Message-ID"] == f"<nudge.{action['id']}@shop.example>"
    assert outcome.provider_id == message["Message-ID"]

    unsubscribe = re.fullmatch(r"<(.+)>", str(message["List-Unsubscribe"]))
    assert unsubscribe is not None
    assert unsubscribe.group(1).startswith(BASE + "/t/u/")
    claims = verify_token(SECRET, unsubscribe.group(1).rsplit("/", 1)[1], "unsubscribe")
    assert (claims.action_id, claims.contact_id) == (action["id"], action["contact_id"])
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    html = part(message, "html")
    assert "Ann &lt;3" in html
    hrefs = re.findall(r'href="([^"]+)"', html)
    clicks = [h for h in hrefs if "/t/c/" in h]
    assert clicks, html
    targets = {verify_token(SECRET, h.rsplit("/", 1)[1], "click").url for h in clicks}
    assert targets == {"https://shop.example/cart?id=k1"}
    assert not [h for h in hrefs if h.startswith("https://shop.example")]  # all tracked
    assert unsubscribe.group(1) in hrefs  # the footer link, untouched
    pixel = re.search(r'<img src="(https://t\.shop\.example/t/o/[^"]+)"', html)
    assert pixel is not None
    assert verify_token(SECRET, pixel.group(1).rsplit("/", 1)[1], "open").action_id == action["id"]

    text = part(message, "plain")
    assert "Ann <3" in text
    assert "https://shop.example/cart?id=k1" in text


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_login_from_the_smtp_url(
    auth_mail_server: Any, make_action: Callable[..., dict[str, Any]]
) -> None:
    good = auth_mail_server.url("shop", "s3cret%3Apass")
    assert (await connector(good).deliver(make_action("email"))).status == "sent"
    assert len(auth_mail_server.messages) == 1
    with pytest.raises(PermanentError) as refused:
        await connector(auth_mail_server.url("shop", "wrong")).deliver(make_action("email"))
    assert not isinstance(refused.value, BounceError)
    assert "login refused" in str(refused.value)


async def test_4xx_is_retryable(
    mail_server: Any, make_action: Callable[..., dict[str, Any]]
) -> None:
    mail_server.reply_next("data", "451 4.3.0 Try again later")
    with pytest.raises(RetryableError, match="451"):
        await connector(mail_server.url()).deliver(make_action("email"))
    mail_server.reply_next("rcpt", "450 4.2.1 Mailbox busy")
    with pytest.raises(RetryableError, match="450"):
        await connector(mail_server.url()).deliver(make_action("email"))
    assert mail_server.messages == []


async def test_5xx_is_a_bounce(
    mail_server: Any, make_action: Callable[..., dict[str, Any]]
) -> None:
    mail_server.reply_next("rcpt", "550 5.1.1 No such user")
    with pytest.raises(BounceError, match=r"550 5\.1\.1 No such user"):
        await connector(mail_server.url()).deliver(make_action("email"))
    mail_server.reply_next("data", "554 5.7.1 Rejected as spam")
    with pytest.raises(BounceError, match="554"):
        await connector(mail_server.url()).deliver(make_action("email"))


async def test_refused_connection_is_retryable(
    closed_port: int, make_action: Callable[..., dict[str, Any]]
) -> None:
    with pytest.raises(RetryableError):
        await connector(f"smtp://127.0.0.1:{closed_port}").deliver(make_action("email"))


async def test_a_server_that_never_answers_times_out(
    silent_server: int, make_action: Callable[..., dict[str, Any]]
) -> None:
    with pytest.raises(RetryableError, match="Timeout"):
        await connector(f"smtp://127.0.0.1:{silent_server}", timeout=0.3).deliver(
            make_action("email")
        )


async def test_nothing_to_send_is_permanent(
    mail_server: Any, make_action: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    email = connector(mail_server.url())
    with pytest.raises(PermanentError, match="no email address"):
        await email.deliver(make_action("email", to=None))
    with pytest.raises(PermanentError, match="not an email address"):
        await email.deliver(make_action("email", to="ann@example.se\r\nBcc: x@evil.example"))
    with pytest.raises(TemplateError, match="missing template"):
        await connector(mail_server.url(), templates=tmp_path).deliver(make_action("email"))
    assert mail_server.attempts == 0


# ---------------------------------------------------------------------- sessions


async def test_messages_share_one_session(
    mail_server: Any, make_action: Callable[..., dict[str, Any]]
) -> None:
    email = connector(mail_server.url())
    for _ in range(5):
        assert (await email.deliver(make_action("email"))).status == "sent"
    assert len(mail_server.messages) == 5
    assert mail_server.sessions == 1
    await email.aclose()


async def test_concurrent_messages_use_at_most_the_configured_sessions(
    mail_server: Any, make_action: Callable[..., dict[str, Any]]
) -> None:
    email = EmailConnector(
        parse_smtp_url(mail_server.url(), "off"),
        FROM,
        Templates(TEMPLATES),
        Tracker(SECRET, BASE),
        connections=2,
    )
    outcomes = await asyncio.gather(*(email.deliver(make_action("email")) for _ in range(12)))
    assert [o.status for o in outcomes] == ["sent"] * 12
    assert len(mail_server.messages) == 12
    assert 1 <= mail_server.sessions <= 2
    await email.aclose()


async def test_a_failed_session_is_not_reused(
    mail_server: Any, make_action: Callable[..., dict[str, Any]]
) -> None:
    email = connector(mail_server.url())
    await email.deliver(make_action("email"))
    mail_server.reply_next("data", "451 4.3.0 try again later")
    with pytest.raises(RetryableError):
        await email.deliver(make_action("email"))
    assert (await email.deliver(make_action("email"))).status == "sent"
    assert mail_server.sessions == 2
    assert len(mail_server.messages) == 2
    await email.aclose()


async def test_idle_and_used_up_sessions_are_replaced(
    mail_server: Any, make_action: Callable[..., dict[str, Any]]
) -> None:
    now = [0.0]
    sessions = SmtpSessions(
        parse_smtp_url(mail_server.url(), "off"),
        timeout=5.0,
        idle=30.0,
        per_session=3,
        clock=lambda: now[0],
    )
    email = connector(mail_server.url())
    email.sessions = sessions
    for _ in range(3):  # the third message uses the session up
        await email.deliver(make_action("email"))
    await email.deliver(make_action("email"))
    assert mail_server.sessions == 2
    now[0] += 31.0  # idle too long
    await email.deliver(make_action("email"))
    assert mail_server.sessions == 3
    assert len(mail_server.messages) == 5
    await email.aclose()
