"""Real servers on loopback for the delivery tests, and small helpers as fixtures.

- `mail_server`: an aiosmtpd server whose replies a test can script (a 451 for the next
  DATA, a 550 for the next RCPT), optionally demanding a login.
- `http_server`: an aiohttp server recording requests; a test sets how it answers.
- `silent_server`: accepts connections and never says a word (timeouts).
- `closed_port`: a port nobody listens on (connection refused).
- `redis`: a client on the session's real redis-server (the shared `redis_url` fixture).
- `make_action`, `clock` (a FakeClock), `events` and `dead_letters` (async recorders).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from redis.asyncio import Redis

HOST = "127.0.0.1"
_ids = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _make_action(kind: str = "email", **overrides: Any) -> dict[str, Any]:
    """An action as the engine publishes it, with a fresh id and contact."""
    n = next(_ids)
    action: dict[str, Any] = {
        "id": f"a-{n}-{kind}",
        "rule": "abandoned_cart",
        "contact_id": f"c-{n}",
        "kind": kind,
        "at": "2026-11-20T11:00:00Z",
        "data": {"cart_id": "k1", "value": 120.5},
        "contact": {
            "first_name": "Ann",
            "email": "ann@example.se",
            "phone": "+46 70 123 45 67",
            "consent_email": True,
        },
    }
    if kind == "email":
        action.update(template="cart_reminder", to="ann@example.se")
    elif kind == "sms":
        action.update(template="cart_reminder", to="+46701234567")
    elif kind == "webhook":
        action.update(name="crm")
    elif kind in ("audience_add", "audience_remove"):
        action.update(name="cart_abandoners")
    elif kind == "show":
        action.update(content="vip_banner", slot="hero")
    action.update(overrides)
    return action


@pytest.fixture
def make_action() -> Callable[..., dict[str, Any]]:
    """`make_action(kind="email", **overrides)`: an action with a fresh id and contact."""
    return _make_action


# ---------------------------------------------------------------------------- clock


class FakeClock:
    """Wall and monotonic time that only `sleep` moves; sleeps are recorded."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
        self._origin = self._now
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return (self._now - self._origin).total_seconds()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._now += timedelta(seconds=seconds)
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Recorder:
    """An async callback that keeps what it is given."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    async def __call__(self, item: dict[str, Any]) -> None:
        self.items.append(item)

    def names(self) -> list[str]:
        return [item["event"] for item in self.items]


@pytest.fixture
def events() -> Recorder:
    return Recorder()


@pytest.fixture
def dead_letters() -> Recorder:
    return Recorder()


# ---------------------------------------------------------------------------- SMTP


class _Handler:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.replies: dict[str, list[str]] = {"rcpt": [], "data": []}
        self.attempts = 0
        self.greetings = 0  # EHLO commands: one per SMTP session

    def _scripted(self, stage: str) -> str | None:
        with self.lock:
            queue = self.replies[stage]
            return queue.pop(0) if queue else None

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.greetings += 1
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            self.attempts += 1
        reply = self._scripted("rcpt")
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = self._scripted("data")
        if reply is not None:
            return reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 queued as Q1"


@dataclass
class MailServer:
    host: str
    port: int
    handler: _Handler
    credentials: tuple[str, str] | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def sessions(self) -> int:
        """SMTP sessions opened (EHLO commands seen)."""
        with self.handler.lock:
            return self.handler.greetings

    @property
    def attempts(self) -> int:
        """RCPT commands seen: one per delivery attempt that got that far."""
        with self.handler.lock:
            return self.handler.attempts

    def reply_next(self, stage: str, *replies: str) -> None:
        """Answer the next RCPT (`stage="rcpt"`) or DATA commands with these replies."""
        with self.handler.lock:
            self.handler.replies[stage].extend(replies)

    def url(self, user: str | None = None, password: str | None = None) -> str:
        login = f"{user}:{password}@" if user is not None else ""
        return f"smtp://{login}{self.host}:{self.port}"


def _start_mail_server(credentials: tuple[str, str] | None) -> tuple[Controller, MailServer]:
    handler = _Handler()
    kwargs: dict[str, Any] = {}
    if credentials is not None:

        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and (
                    data.login.decode(),
                    data.password.decode(),
                )
                == credentials
            )
            return AuthResult(success=ok, handled=False)

        kwargs = {"authenticator": authenticate, "auth_require_tls": False, "auth_required": True}
    for _ in range(5):
        port = free_port()
        controller = Controller(handler, hostname=HOST, port=port, **kwargs)
        try:
            controller.start()
        except OSError:
            continue
        return controller, MailServer(HOST, port, handler, credentials)
    raise RuntimeError("no free port for the SMTP server")


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    controller, server = _start_mail_server(None)
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def auth_mail_server() -> Iterator[MailServer]:
    controller, server = _start_mail_server(("shop", "s3cret:pass"))
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def closed_port() -> int:
    return free_port()


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts and then never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, HOST, 0)
    port: int = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


# ---------------------------------------------------------------------------- HTTP


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class HttpServer:
    url: str
    received: list[Received] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)

    def respond(
        self,
        status: int,
        body: str = "",
        *,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next request so (after `delay` seconds); later ones get 200."""

        async def answer(request: web.Request) -> web.StreamResponse:
            if delay:
                await asyncio.sleep(delay)
            return web.Response(status=status, text=body, headers=headers)

        self.answers.append(answer)


@pytest.fixture
async def http_server() -> AsyncIterator[HttpServer]:
    """Records every request; answers from `answers` in order, then 200 `{"id": "m-<n>"}`."""
    server = HttpServer(url="")

    async def handle(request: web.Request) -> web.StreamResponse:
        server.received.append(
            Received(request.method, request.path_qs, dict(request.headers), await request.read())
        )
        if server.answers:
            return await server.answers.pop(0)(request)
        return web.json_response({"id": f"m-{len(server.received)}"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://{HOST}:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------------- Redis


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()
