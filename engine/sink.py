"""Where validated events go: the `EventSink` Protocol, and an in-memory sink.

The HTTP collector and `nudge produce` hand accepted events and rejected inputs to a sink:
a Kafka producer (`nudge.engine.kafka_io.KafkaSink`) in the streaming deployment, the
in-process engine in embedded mode, or `MemorySink` in tests.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .events import Event, Rejected

__all__ = ["EventSink", "MemorySink"]


@runtime_checkable
class EventSink(Protocol):
    """Takes events in order. `accept` returns once they are durable (or raises)."""

    async def accept(self, events: list[Event]) -> None:
        """Take valid events; their order within one contact is kept."""
        ...

    async def reject(self, items: list[Rejected]) -> None:
        """Set rejected inputs aside (the dead-letter side), each with its reason."""
        ...


class MemorySink:
    """Keeps what it is given, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.rejected: list[Rejected] = []

    async def accept(self, events: list[Event]) -> None:
        self.events.extend(events)

    async def reject(self, items: list[Rejected]) -> None:
        self.rejected.extend(items)
