"""OffsetTracker: commits never pass an action whose delivery has not finished."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nudge.connectors.offsets import OffsetTracker


def test_the_commit_stops_at_the_oldest_unfinished_offset() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.started("p0", offset)
    tracker.finished("p0", 11)
    tracker.finished("p0", 12)
    assert tracker.committable() == {"p0": 10}
    tracker.committed({"p0": 10})
    assert tracker.committable() == {}  # unchanged since the last commit
    tracker.finished("p0", 10)
    assert tracker.committable() == {"p0": 13}
    assert tracker.pending() == 0


def test_partitions_are_separate_and_forgotten_on_revoke() -> None:
    tracker: OffsetTracker[int] = OffsetTracker()
    tracker.started(0, 5)
    tracker.started(1, 7)
    tracker.finished(1, 7)
    assert tracker.committable() == {0: 5, 1: 8}
    assert tracker.committable([1]) == {1: 8}
    tracker.forget([0])
    tracker.finished(0, 5)  # a delivery of a revoked partition ending late: ignored
    assert tracker.committable() == {1: 8}
    assert (tracker.pending(0), tracker.pending(1)) == (0, 0)


@given(st.permutations(list(range(20))), st.integers(min_value=0, max_value=20))
def test_never_past_an_unfinished_offset(order: list[int], done: int) -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    for offset in range(20):
        tracker.started("p", offset)
    finished = order[:done]
    for offset in finished:
        tracker.finished("p", offset)
    position = tracker.committable()["p"]
    assert all(offset in finished for offset in range(position))
    unfinished = set(range(20)) - set(finished)
    assert position == (min(unfinished) if unfinished else 20)
