"""The engine's clock: wall time in production, event time in replay and tests."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "WallClock"]


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds."""
        ...

    def observe(self, ts: float) -> float:
        """Note an event's timestamp; return the time to handle it at."""
        ...


class WallClock:
    """Real time. Event timestamps do not move it."""

    def now(self) -> float:
        return time.time()

    def observe(self, ts: float) -> float:
        return time.time()


class ManualClock:
    """Event time: the latest timestamp seen, or set by hand. It never goes back."""

    __slots__ = ("_now",)

    def __init__(self, start: float = float("-inf")) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def observe(self, ts: float) -> float:
        if ts > self._now:  # noqa: PLR1730 - once per event: a call to max() costs more
            self._now = ts
        return self._now

    def advance(self, to: float) -> float:
        """Move to `to` unless already past it; return the time."""
        return self.observe(to)
