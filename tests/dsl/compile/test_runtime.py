"""The runtime helpers one by one: the language's operators, null-safe and total."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from nudge.dsl.compile import runtime as rt

T0 = 1_790_812_800.0  # 2026-10-01T00:00:00Z
ISO = "2026-10-01T00:00:00Z"


@dataclass
class Ev:
    id: str = "e1"
    type: str = "cart_updated"
    contact_id: str = "c1"
    ts: float = T0
    timestamp: str = ISO
    properties: dict[str, Any] = field(default_factory=dict)


class Hist:
    def __init__(self, n: int) -> None:
        self.n = n
        self.calls: list[tuple[str, float, float]] = []

    def count(self, window_id: str, seconds: float, now: float) -> int:
        self.calls.append((window_id, seconds, now))
        return self.n


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        (1, 1.0, True),
        (True, 1, False),
        ("1", 1, False),
        (None, None, False),
        ("SE", "SE", True),
        ([1, "a"], [1.0, "a"], True),
        ([True], [1], False),
        ({"a": [1]}, {"a": [1.0]}, True),
        ({"a": 1}, {"b": 1}, False),
        ([None], [None], True),
        (ISO, T0, True),  # an ISO string equals the time it spells
        ("2026-10-01T02:00:00+02:00", T0, True),
        ([ISO], [T0], True),
        ("SE", T0, False),
    ],
)
def test_eq_and_ne(a: Any, b: Any, want: bool) -> None:
    assert rt.eq(a, b) is want
    assert rt.eq(b, a) is want
    null = a is None or b is None
    assert rt.ne(a, b) is (not want and not null)


@pytest.mark.parametrize(
    ("a", "b", "lt"),
    [
        (1, 2, True),
        (2.5, 2, False),
        ("a", "b", True),
        ("B", "a", True),  # by code point
        (ISO, T0 + 1, True),  # an ISO string meets a time
        (T0 - 1, ISO, True),
        ("not a time", T0, None),
        (True, 2, None),
        (None, 1, None),
        ([1], [2], None),
    ],
)
def test_ordering(a: Any, b: Any, lt: bool | None) -> None:
    if lt is None:  # not comparable: every ordering is false
        assert not any(f(a, b) for f in (rt.lt, rt.le, rt.gt, rt.ge))
    else:
        assert rt.lt(a, b) is lt
        assert rt.ge(a, b) is (not lt)


def test_membership() -> None:
    assert rt.in_list("SE", ["SE", "NO"])
    assert rt.in_list(1, [1.0])
    assert not rt.in_list(True, [1])
    assert not rt.in_list(1, [True])
    assert rt.in_list("ell", "hello")
    assert not rt.in_list(1, "1")
    assert not rt.in_list(None, [None])
    assert not rt.in_list("x", None)
    assert not rt.in_list("x", 5)
    assert rt.not_in("DE", ["SE"])
    assert not rt.not_in(None, ["SE"])
    assert not rt.not_in("SE", None)


def test_const_set_honours_same_kind_equality() -> None:
    items = rt.ConstSet(["SE", 1, True, [1, 2], {"a": 1}])
    assert rt.in_const("SE", items)
    assert rt.in_const(1.0, items)
    assert rt.in_const(True, items)
    assert not rt.in_const(False, items)
    assert not rt.in_const(0, items)
    assert rt.in_const([1.0, 2], items)
    assert rt.in_const({"a": 1}, items)
    assert not rt.in_const(None, items)
    times = rt.ConstSet([ISO, T0 + 60])
    assert rt.in_const(T0, times)
    assert rt.in_const("2026-10-01T00:01:00Z", times)
    assert not rt.in_const("2026-10-01T00:02:00Z", times)
    only_true = rt.ConstSet([True])
    assert not rt.in_const(1, only_true)


def test_string_tests() -> None:
    assert rt.contains("summer sale", "sale")
    assert rt.contains(["vip", "new"], "vip")
    assert not rt.contains(["1"], 1)
    assert not rt.contains(None, "a")
    assert not rt.contains({"a": 1}, "a")
    assert rt.startswith("/pricing/x", "/pricing")
    assert not rt.startswith(1, "1")
    assert rt.endswith("a@b.se", ".se")
    assert rt.matches("order-123", r"\d+")
    assert not rt.matches("abc", "(")  # a bad pattern is false, not an error
    assert not rt.matches(123, r"\d")


def test_arithmetic() -> None:
    assert rt.add(1, 2.5) == 3.5
    assert rt.add("a", "b") == "ab"
    assert rt.add("a", 1) is None
    assert rt.add(None, 1) is None
    assert rt.add(True, 1) is None
    assert rt.add(ISO, 3600) == T0 + 3600
    assert rt.add(3600, ISO) == T0 + 3600
    assert rt.sub(ISO, ISO) == 0
    assert rt.sub(T0 + 60, ISO) == 60
    assert rt.sub(ISO, 60) == T0 - 60
    assert rt.sub("a", "b") is None
    assert rt.sub([1], 1) is None
    assert rt.mul(2, 3) == 6
    assert rt.mul("a", 3) is None
    assert rt.div(7, 2) == 3.5
    assert rt.div(1, 0) is None
    assert rt.div(10**400, 3) is None  # too large for a float: null, not an error
    assert rt.mul(10**400, 1.5) is None
    assert rt.neg(2) == -2
    assert rt.neg("2") is None
    assert rt.neg(True) is None


def test_functions() -> None:
    assert rt.lower("ÅSA") == "åsa"
    assert rt.upper("se") == "SE"
    assert rt.lower(1) is None
    assert rt.length("abc") == 3
    assert rt.length([1, 2]) == 2
    assert rt.length({"a": 1}) == 1
    assert rt.length(5) is None
    assert rt.days_since(ISO, T0 + 86400 * 2) == 2.0
    assert rt.hours_since(T0, T0 + 5400) == 1.5
    assert rt.days_since("yesterday", T0) is None
    assert rt.days_since(None, T0) is None


def test_as_time() -> None:
    assert rt.as_time("2026-10-01T02:00:00+02:00") == T0
    assert rt.as_time("soon") == "soon"
    assert rt.as_time(5) == 5
    assert rt.is_iso(ISO) and not rt.is_iso("SE")


def test_time_coercion() -> None:
    assert rt.to_time(ISO) == T0
    assert rt.to_time("2026-10-01T02:00:00+02:00") == T0
    assert rt.to_time("2026-10-01") == T0  # a date alone is midnight UTC
    assert rt.to_time("20261001") is None  # only the extended form reads as a time
    assert rt.to_time("2026-13-01T00:00:00Z") is None
    assert rt.to_time(True) is None
    assert rt.to_time(5) == 5.0


def test_count_asks_the_history() -> None:
    h = Hist(3)
    assert rt.count(h, "w:x:1", 3600, T0) == 3
    assert h.calls == [("w:x:1", 3600, T0)]
    assert rt.count(None, "w:x:1", 3600, T0) == 0


def test_segments_and_paths() -> None:
    assert rt.in_segment({"segments": ["vip"]}, "vip")
    assert not rt.in_segment({"segments": "vip"}, "vip")
    assert not rt.in_segment({}, "vip")
    e = Ev(properties={"event": "overridden", "a": {"b": 1}})
    assert rt.event_field(e, "event") == "overridden"  # a property wins over the envelope
    assert rt.event_field(e, "id") == "e1"
    assert rt.event_field(e, "timestamp") == ISO
    assert rt.event_field(e, "contact_id") == "c1"
    assert rt.event_field(None, "id") is None
    assert rt.walk({"a": {"b": 1}}, "a", "b") == 1
    assert rt.walk({"a": 5}, "a", "b") is None


def test_fresh_copies_deeply() -> None:
    value = {"a": [1, 2]}
    copy = rt.fresh(value)
    copy["a"].append(3)
    assert value == {"a": [1, 2]}


def test_names_table_holds_only_runtime_helpers() -> None:
    callables = {k for k, v in rt.NAMES.items() if callable(v) and not isinstance(v, type)}
    for name in callables:
        assert getattr(rt, name) is rt.NAMES[name]
    assert set(rt.COMPARE_NAMES.values()) <= set(rt.NAMES)
    assert set(rt.ARITHMETIC_NAMES.values()) <= set(rt.NAMES)


def test_time_text_writes_numbers_as_iso_text_in_utc() -> None:
    from nudge.dsl.compile.runtime import time_text

    assert time_text(1795168800.0) == "2026-11-20T10:00:00Z"
    assert time_text(1795168800) == "2026-11-20T10:00:00Z"
    assert time_text(1795168800.25) == "2026-11-20T10:00:00.250Z"
    assert time_text(1795168800.000123) == "2026-11-20T10:00:00.000123Z"
    assert time_text("2026-11-20T10:00:00Z") == "2026-11-20T10:00:00Z"
    assert time_text("2026-11-20T11:00:00+01:00") == "2026-11-20T10:00:00Z"  # in UTC
    assert time_text("not a time") == "not a time"
    assert time_text(None) is None
    assert time_text(True) is True
    assert time_text(1e300) == 1e300  # beyond any date: left as it is


def test_time_from_turns_shifted_iso_text_back_into_text() -> None:
    from nudge.dsl.compile.runtime import time_from

    assert time_from(1795172400.0, "2026-11-20T10:00:00Z") == "2026-11-20T11:00:00Z"
    assert time_from(86405, 5) == 86405  # a number plus a duration stays a number
    assert time_from(None, "abc") is None  # text that is no time: null, as arithmetic gives


def test_arithmetic_keeps_to_numbers_json_holds() -> None:
    # past 64 bits an integer becomes a float; infinity (an overflow) is null
    assert rt.add(2**62, 2**62) == float(2**63)
    assert type(rt.add(2**62, 2**62)) is float
    assert rt.add(2**62, 1) == 2**62 + 1
    assert rt.mul(1e308, 10) is None
    assert rt.sub(-1e308, 1e308) is None
    assert rt.neg(-(2**63)) == float(2**63)
    assert rt.mul(10**400, 1) is None  # too big even for a float
