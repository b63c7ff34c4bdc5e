"""Count what a redis-py asyncio client writes to Redis, without MONITOR.

Every write to a socket goes through `AbstractConnection.send_packed_command`, once per
command or once per pipeline (all its commands packed together), so each recorded write is
one round trip to one node. The writes are decoded back into command names and arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from redis.asyncio.connection import AbstractConnection


class Wire:
    """The writes seen so far: each a list of commands, each a list of byte arguments."""

    def __init__(self) -> None:
        self.writes: list[list[list[bytes]]] = []

    @property
    def round_trips(self) -> int:
        return len(self.writes)

    def names(self) -> list[list[str]]:
        """The command names of each write, upper-cased."""
        return [[cmd[0].decode().upper() for cmd in write] for write in self.writes]

    def commands(self) -> list[list[bytes]]:
        return [cmd for write in self.writes for cmd in write]

    def clear(self) -> None:
        self.writes.clear()


@contextmanager
def watch_wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[Wire]:
    wire = Wire()
    original = AbstractConnection.send_packed_command

    async def recording(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        chunks = [command.encode()] if isinstance(command, str) else command
        if isinstance(chunks, bytes):
            chunks = [chunks]
        wire.writes.append(parse_commands(b"".join(chunks)))
        await original(self, command, check_health)

    with monkeypatch.context() as patch:
        patch.setattr(AbstractConnection, "send_packed_command", recording)
        yield wire


def parse_commands(data: bytes) -> list[list[bytes]]:
    """RESP arrays of bulk strings (what clients send) into lists of arguments."""
    commands: list[list[bytes]] = []
    pos = 0
    while pos < len(data):
        if data[pos : pos + 1] != b"*":
            raise ValueError(f"not a RESP array at {pos}: {data[pos : pos + 20]!r}")
        end = data.index(b"\r\n", pos)
        count = int(data[pos + 1 : end])
        pos = end + 2
        args: list[bytes] = []
        for _ in range(count):
            end = data.index(b"\r\n", pos)
            size = int(data[pos + 1 : end])
            pos = end + 2
            args.append(data[pos : pos + size])
            pos += size + 2
        commands.append(args)
    return commands


def flatten(names: Iterable[list[str]]) -> list[str]:
    return [name for write in names for name in write]
