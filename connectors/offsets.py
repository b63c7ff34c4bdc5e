"""Which offsets of a partition may be committed: those before the oldest action not finished.

Actions are read in order but finish out of order (one is held until it is due, another
is retried). The committed offset of a partition is the next one to read after a restart,
so it must never pass an action that has not finished: it is the oldest unfinished
offset, or one past the last offset read when everything read has finished.

    tracker = OffsetTracker()
    tracker.started("p0", 10); tracker.started("p0", 11)
    tracker.finished("p0", 11)
    tracker.committable()      # {"p0": 10}: offset 10 is still under way
    tracker.finished("p0", 10)
    tracker.committable()      # {"p0": 12}
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["OffsetTracker"]

P = TypeVar("P", bound=Hashable)


@dataclass(slots=True)
class _Partition:
    pending: set[int] = field(default_factory=set)
    read_up_to: int = -1  # the highest offset read
    committed: int | None = None  # the last offset handed out by `committable`


class OffsetTracker(Generic[P]):
    """Per partition, the offsets read and not yet finished."""

    def __init__(self) -> None:
        self._partitions: dict[P, _Partition] = {}

    def started(self, partition: P, offset: int) -> None:
        state = self._partitions.setdefault(partition, _Partition())
        state.pending.add(offset)
        state.read_up_to = max(state.read_up_to, offset)

    def finished(self, partition: P, offset: int) -> None:
        state = self._partitions.get(partition)
        if state is not None:
            state.pending.discard(offset)

    def pending(self, partition: P | None = None) -> int:
        """Offsets read and not finished, of one partition or all."""
        if partition is not None:
            state = self._partitions.get(partition)
            return 0 if state is None else len(state.pending)
        return sum(len(s.pending) for s in self._partitions.values())

    def committable(self, partitions: Iterable[P] | None = None) -> dict[P, int]:
        """The offset to commit for each partition whose position moved since last asked."""
        chosen = self._partitions.keys() if partitions is None else partitions
        out: dict[P, int] = {}
        for partition in list(chosen):
            state = self._partitions.get(partition)
            if state is None or state.read_up_to < 0:
                continue
            position = min(state.pending) if state.pending else state.read_up_to + 1
            if position != state.committed:
                out[partition] = position
        return out

    def committed(self, offsets: dict[P, int]) -> None:
        """Note that `offsets` were committed (so `committable` leaves them out until they move)."""
        for partition, offset in offsets.items():
            state = self._partitions.get(partition)
            if state is not None:
                state.committed = offset

    def forget(self, partitions: Iterable[P]) -> None:
        """Partitions taken away in a rebalance: their next owner reads on from the commit."""
        for partition in partitions:
            self._partitions.pop(partition, None)
