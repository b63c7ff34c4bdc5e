"""`fits_channel_cap` against a brute force over every window, on whole-second times."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nudge.engine.delivery_rules import fits_channel_cap


def _within_cap(times: list[int], count: int, per: int) -> bool:
    """No window (x - per, x] holds more than `count` of the times."""
    return all(sum(1 for t in times if x - per < t <= x) <= count for x in times)


def _brute(sent: list[int], count: int, per: int, at: int) -> bool:
    times = [*sent, at]
    lo, hi = min(times) - per, max(times) + per
    # every window (x - per, x] that holds `at` keeps at most `count` actions
    return all(
        sum(1 for t in times if x - per < t <= x) <= count
        for x in range(lo, hi + 1)
        if x - per < at <= x
    )


@given(
    st.lists(st.integers(0, 60), max_size=6),
    st.integers(1, 3),
    st.integers(1, 20),
    st.integers(20, 60),
)
def test_fits_exactly_when_no_window_holding_the_action_overflows(
    times: list[int], count: int, per: int, at: int
) -> None:
    now = 20  # decisions happen now; deferred actions may lie ahead of it
    sent = sorted(t for t in times if t > now - per)  # what earlier decisions left
    if not _within_cap(sent, count, per):
        return  # no sequence of decisions leaves this
    assert fits_channel_cap(list(map(float, sent)), count, per, float(at), now) == _brute(
        sent, count, per, at
    )


def test_an_action_exactly_a_window_after_another_fits() -> None:
    assert fits_channel_cap([10.0], 1, 5.0, 15.0, 15.0)
    assert not fits_channel_cap([10.0], 1, 5.0, 14.0, 14.0)
    # one deferred to 30, decided earlier: 27 and 33 are too close, 36 is not
    assert not fits_channel_cap([30.0], 1, 5.0, 27.0, 20.0)
    assert not fits_channel_cap([30.0], 1, 5.0, 33.0, 20.0)
    assert fits_channel_cap([30.0], 1, 5.0, 36.0, 20.0)
