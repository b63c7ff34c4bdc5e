"""The helpers generated code may call: the language's operators, null-safe.

`NAMES` is the one table of what a generated function can see (after sqlglot's executor/env.py):
the code generator refers to helpers only through it, and a compiled file's namespace holds
nothing else but its constants. Every helper is total: for any input it returns a value, never
raises (LANGUAGE.md §3, "null never raises").

Values at run time: None (null), bool, int/float (number, duration in seconds, time in epoch
seconds), str, list, dict. An ISO 8601 string meets time operations as the time it spells.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final, Protocol

from ..regexes import compile_pattern

# A value of the language at run time: None, bool, int, float, str, list or dict.
Value = Any

__all__ = [
    "NAMES",
    "ConstSet",
    "History",
    "add",
    "as_time",
    "contains",
    "count",
    "days_since",
    "div",
    "endswith",
    "eq",
    "event_field",
    "fresh",
    "ge",
    "gt",
    "hours_since",
    "in_const",
    "in_list",
    "in_segment",
    "in_times",
    "is_iso",
    "le",
    "length",
    "lower",
    "lt",
    "matches",
    "mul",
    "ne",
    "neg",
    "not_in",
    "not_in_times",
    "startswith",
    "sub",
    "sum_text",
    "time_from",
    "time_text",
    "to_time",
    "upper",
    "utc_text",
    "walk",
]

NUMBER_TYPES: Final = frozenset({int, float})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_ISO_HEAD = re.compile(r"\d{4}-\d{2}-\d{2}")
ENVELOPE = frozenset({"id", "event", "contact_id", "timestamp"})


class History(Protocol):
    """What `count(...)` asks the engine: matching events of a window in the last `seconds`."""

    def count(self, window_id: str, seconds: float, now: float) -> int: ...


# ---------------------------------------------------------------------------- kinds


def _is_num(v: Value) -> bool:
    t = type(v)
    return t is int or t is float


@lru_cache(maxsize=4096)
def _iso(text: str) -> float | None:
    """Epoch seconds of an ISO 8601 date or date-time (no offset means UTC), else None."""
    if _ISO_HEAD.match(text) is None:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return (dt - _EPOCH).total_seconds()
    except OverflowError:
        return None


def to_time(v: Value) -> float | None:
    """A time (epoch seconds) from a number or an ISO 8601 string; None for anything else."""
    if type(v) is str:
        return _iso(v)
    if _is_num(v):
        return float(v)
    return None


def _same(a: Value, b: Value) -> bool:
    """Same-kind equality, deep: 1 == 1.0, true != 1, "1" != 1; null equals null inside lists.
    An ISO 8601 string and a number (a time) are equal when they spell the same instant."""
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is list or ta is tuple:
            return len(a) == len(b) and all(map(_same, a, b))
        if ta is dict:
            return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
        return bool(a == b)
    a_num = ta is int or ta is float
    b_num = tb is int or tb is float
    if a_num and b_num:
        return bool(a == b)
    if ta is str and b_num:
        return bool(_iso(a) == b)
    if a_num and tb is str:
        return bool(_iso(b) == a)
    if (ta is list or ta is tuple) and (tb is list or tb is tuple):
        return len(a) == len(b) and all(map(_same, a, b))
    return False


def time_text(v: Value) -> Value:
    """A time leaving the engine (action data, a trait): a number of epoch seconds, or ISO
    text with an offset other than `Z`, becomes ISO 8601 text in UTC, `2026-11-20T10:00:00Z`
    (milliseconds or microseconds only when there are any); anything else, a number past the
    years 1-9999 included (a trait of epoch milliseconds, say), is left as it is."""
    t = type(v)
    if t is str:  # ISO text with another offset: the same instant, in UTC
        instant = None if v.endswith("Z") else _iso(v)
        return v if instant is None else time_text(instant)
    if t is not int and t is not float:
        return v
    try:
        return utc_text(_NAIVE_EPOCH + timedelta(microseconds=round(v * 1_000_000)))
    except (OverflowError, ValueError):
        return v


def sum_text(v: Value) -> Value:
    """`time_text` of a result of time arithmetic (`now + 2d`): one past the years 1-9999
    (`now + 420000w`) is no time, and null."""
    text = time_text(v)
    return None if text is v and (type(v) is int or type(v) is float) else text


def utc_text(utc: datetime) -> str:
    """A naive UTC datetime in the normalised text form, `YYYY-MM-DDTHH:MM:SSZ`: a fraction
    only when non-zero, three digits when whole milliseconds (`.500`), otherwise six. The
    engine writes event timestamps and action times with it too (`format_time`)."""
    micro = utc.microsecond
    if micro == 0:
        return utc.isoformat(timespec="seconds") + "Z"
    if micro % 1000 == 0:
        return utc.isoformat(timespec="milliseconds") + "Z"
    return utc.isoformat(timespec="microseconds") + "Z"


def time_from(result: Value, source: Value) -> Value:
    """`source ± duration`, leaving the engine: a time (ISO text) when `source` was ISO text,
    else `result` as it is. (Text plus a number is null unless the text spells a time.)"""
    if type(source) is str and (type(result) is float or type(result) is int):
        return time_text(result)
    return result


def is_iso(text: str) -> bool:
    """Whether a string reads as an ISO 8601 time (and so may equal a number)."""
    return _iso(text) is not None


def as_time(v: Value) -> Value:
    """An ISO 8601 string as the time it spells; anything else unchanged. For comparisons the
    checker knows to be between times (two ISO strings with different offsets, say)."""
    if type(v) is str:
        t = _iso(v)
        return v if t is None else t
    return v


# ---------------------------------------------------------------------------- comparisons


def eq(a: Value, b: Value) -> bool:
    """`a == b`: false when either is null; otherwise same-kind equality."""
    if a is None or b is None:
        return False
    return _same(a, b)


def ne(a: Value, b: Value) -> bool:
    """`a != b`: false when either is null; otherwise not `==`."""
    if a is None or b is None:
        return False
    return not _same(a, b)


def _ordered(a: Value, b: Value) -> tuple[Any, Any] | None:
    """The pair to order, coerced: two numbers, two strings, or a time and an ISO string."""
    ta, tb = type(a), type(b)
    a_num = ta is int or ta is float
    b_num = tb is int or tb is float
    if a_num and b_num:
        return a, b
    if ta is str:
        if tb is str:
            return a, b
        if b_num:
            t = _iso(a)
            return None if t is None else (t, b)
    elif a_num and tb is str:
        t = _iso(b)
        return None if t is None else (a, t)
    return None


def lt(a: Value, b: Value) -> bool:
    pair = _ordered(a, b)
    return pair is not None and pair[0] < pair[1]


def le(a: Value, b: Value) -> bool:
    pair = _ordered(a, b)
    return pair is not None and pair[0] <= pair[1]


def gt(a: Value, b: Value) -> bool:
    pair = _ordered(a, b)
    return pair is not None and pair[0] > pair[1]


def ge(a: Value, b: Value) -> bool:
    pair = _ordered(a, b)
    return pair is not None and pair[0] >= pair[1]


def in_list(a: Value, container: Value) -> bool:
    """`a in L`: membership (==) in a list, substring in a string, else false; null is false."""
    if a is None or container is None:
        return False
    t = type(container)
    if t is list or t is tuple:
        return any(_same(a, x) for x in container)
    if t is str:
        return type(a) is str and a in container
    return False


def not_in(a: Value, container: Value) -> bool:
    """`a not in L`: the negation of `in` for non-null operands; null is false."""
    if a is None or container is None:
        return False
    return not in_list(a, container)


def in_times(a: Value, container: Value) -> bool:
    """`t in L` with `t` a time: membership by instant, ISO text on either side read as the
    time it spells (`==` does the same); in a string, a substring."""
    if a is None or container is None:
        return False
    if type(container) is list or type(container) is tuple:
        t = as_time(a)
        return any(_same(t, as_time(x)) for x in container)
    return in_list(a, container)


def not_in_times(a: Value, container: Value) -> bool:
    """The negation of `in_times` for non-null operands; null is false."""
    if a is None or container is None:
        return False
    return not in_times(a, container)


class ConstSet:
    """A constant list prepared for `in`: hashable items split by kind, so that a look-up honours
    `==` (1 == 1.0, but true != 1; an ISO string equals the time it spells), the rest kept for a
    linear scan."""

    __slots__ = ("items", "numbers", "others", "strings", "times", "truths")

    def __init__(self, items: list[Any] | tuple[Any, ...]) -> None:
        self.items = tuple(items)
        self.strings = frozenset(x for x in items if type(x) is str)
        self.numbers = frozenset(x for x in items if _is_num(x))
        self.truths = frozenset(x for x in items if type(x) is bool)
        self.times = frozenset(t for t in map(_iso, self.strings) if t is not None)
        self.others = tuple(x for x in items if type(x) not in (str, int, float, bool))

    def __contains__(self, a: Value) -> bool:
        t = type(a)
        if t is str:
            if a in self.strings:
                return True
            return bool(self.numbers) and _iso(a) in self.numbers
        if t is int or t is float:
            return a in self.numbers or a in self.times
        if t is bool:
            return a in self.truths
        if a is None:
            return False
        return any(_same(a, x) for x in self.others)

    def __repr__(self) -> str:
        return f"ConstSet({list(self.items)!r})"


def in_const(a: Value, items: ConstSet) -> bool:
    """`a in <constant list>`; null is false."""
    return a is not None and a in items


def contains(a: Value, b: Value) -> bool:
    """`a contains b`: substring of a string, element (==) of a list; null is false."""
    if a is None or b is None:
        return False
    t = type(a)
    if t is str:
        return type(b) is str and b in a
    if t is list or t is tuple:
        return any(_same(b, x) for x in a)
    return False


def startswith(a: Value, b: Value) -> bool:
    return type(a) is str and type(b) is str and a.startswith(b)


def endswith(a: Value, b: Value) -> bool:
    return type(a) is str and type(b) is str and a.endswith(b)


def matches(a: Value, pattern: Value) -> bool:
    """`a matches "re"`: `re.search`, unanchored; a bad or refused pattern (`regexes`), or a
    non-string, is false."""
    if type(a) is not str or type(pattern) is not str:
        return False
    compiled = compile_pattern(pattern)
    return compiled is not None and compiled.search(a) is not None


# ---------------------------------------------------------------------------- arithmetic


_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def number(x: Any) -> Any:
    """A result of arithmetic as the language keeps it: an integer past 64 bits becomes a
    float (JSON and the stores hold 64-bit integers), and an overflow (infinity, NaN) null."""
    if type(x) is int:
        if _INT_MIN <= x <= _INT_MAX:
            return x
        try:
            x = float(x)
        except OverflowError:
            return None
    if type(x) is float and not math.isfinite(x):
        return None
    return x


def add(a: Value, b: Value) -> Any:
    """`a + b`: numbers, two strings joined, time + duration; else null."""
    ta, tb = type(a), type(b)
    a_num = ta is int or ta is float
    b_num = tb is int or tb is float
    try:
        if a_num and b_num:
            return number(a + b)
        if ta is str:
            if tb is str:
                return a + b
            if b_num:
                t = _iso(a)
                return None if t is None else t + b
        elif a_num and tb is str:
            t = _iso(b)
            return None if t is None else a + t
    except OverflowError:
        return None
    return None


def sub(a: Value, b: Value) -> Any:
    """`a - b`: numbers; time - time is a duration, time - duration a time; else null."""
    ta, tb = type(a), type(b)
    try:
        if (ta is int or ta is float) and (tb is int or tb is float):
            return number(a - b)
        if ta is not str and tb is not str:
            return None
        x, y = to_time(a), to_time(b)
        return None if x is None or y is None else x - y
    except OverflowError:
        return None


def mul(a: Value, b: Value) -> Any:
    if _is_num(a) and _is_num(b):
        try:
            return number(a * b)
        except OverflowError:
            return None
    return None


def div(a: Value, b: Value) -> Any:
    """`a / b` for numbers; dividing by zero gives null."""
    if _is_num(a) and _is_num(b) and b != 0:
        try:
            return number(a / b)
        except OverflowError:
            return None
    return None


def neg(a: Value) -> Any:
    """Unary minus of a number; null for anything else."""
    return number(-a) if _is_num(a) else None


# ---------------------------------------------------------------------------- functions


def lower(s: Value) -> str | None:
    return s.lower() if type(s) is str else None


def upper(s: Value) -> str | None:
    return s.upper() if type(s) is str else None


def length(x: Value) -> int | None:
    """`len(x)` of a string, list or object; null otherwise."""
    t = type(x)
    if t is str or t is list or t is dict or t is tuple:
        return len(x)
    return None


def days_since(t: Value, now: float) -> float | None:
    at = to_time(t)
    return None if at is None else (now - at) / 86400.0


def hours_since(t: Value, now: float) -> float | None:
    at = to_time(t)
    return None if at is None else (now - at) / 3600.0


def count(h: History | None, window_id: str, seconds: float, now: float) -> int:
    """`count(E where C within D)`: the window's matching events in [now - D, now]."""
    if h is None:
        return 0
    return h.count(window_id, seconds, now)


def in_segment(c: Mapping[str, Any], segment: str) -> bool:
    """`contact in S`: whether S is among the contact's `segments`."""
    segments: Any = c.get("segments")
    if type(segments) in (list, tuple, set, frozenset):
        return segment in segments
    return False


# ---------------------------------------------------------------------------- paths


def event_field(e: Any, name: str) -> Any:
    """An event's property `name`; when absent, the envelope field of that name."""
    if e is None:
        return None
    props = e.properties
    if props and name in props:
        return props[name]
    if name == "id":
        return e.id
    if name == "event":
        return e.type
    if name == "contact_id":
        return e.contact_id
    if name == "timestamp":
        return e.timestamp
    return None


def walk(value: Any, *keys: str) -> Any:
    """Into nested objects; anything but an object on the way gives null."""
    for key in keys:
        if type(value) is not dict:
            return None
        value = value.get(key)
    return value


def fresh(value: Any) -> Any:
    """A private copy of a constant list or object, so no caller can change the constant."""
    return copy.deepcopy(value)


# ---------------------------------------------------------------------------- the table

# The only names generated code can see (plus its file's constants). Keys are the identifiers the
# code generator emits; `type` is the one builtin, for inline kind checks.
NAMES: Final[Mapping[str, Any]] = {
    "type": type,
    "NUM": NUMBER_TYPES,
    "STR": str,
    "DICT": dict,
    "BOOL": bool,
    "eq": eq,
    "ne": ne,
    "as_time": as_time,
    "time_text": time_text,
    "sum_text": sum_text,
    "time_from": time_from,
    "lt": lt,
    "le": le,
    "gt": gt,
    "ge": ge,
    "in_list": in_list,
    "not_in": not_in,
    "in_times": in_times,
    "not_in_times": not_in_times,
    "in_const": in_const,
    "contains": contains,
    "startswith": startswith,
    "endswith": endswith,
    "matches": matches,
    "add": add,
    "sub": sub,
    "mul": mul,
    "div": div,
    "neg": neg,
    "lower": lower,
    "upper": upper,
    "length": length,
    "days_since": days_since,
    "hours_since": hours_since,
    "count": count,
    "in_segment": in_segment,
    "event_field": event_field,
    "walk": walk,
    "fresh": fresh,
}

# The language's operators and functions to helpers: used by the constant folder and the code
# generator alike, so both agree on every operator's meaning.
COMPARE: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "==": eq,
    "!=": ne,
    "<": lt,
    "<=": le,
    ">": gt,
    ">=": ge,
    "in": in_list,
    "not in": not_in,
    "contains": contains,
    "startswith": startswith,
    "endswith": endswith,
    "matches": matches,
}
COMPARE_NAMES: Final[Mapping[str, str]] = {
    "==": "eq",
    "!=": "ne",
    "<": "lt",
    "<=": "le",
    ">": "gt",
    ">=": "ge",
    "in": "in_list",
    "not in": "not_in",
    "contains": "contains",
    "startswith": "startswith",
    "endswith": "endswith",
    "matches": "matches",
}
ARITHMETIC: Final[Mapping[str, Callable[[Any, Any], Any]]] = {
    "+": add,
    "-": sub,
    "*": mul,
    "/": div,
}
ARITHMETIC_NAMES: Final[Mapping[str, str]] = {"+": "add", "-": "sub", "*": "mul", "/": "div"}
# Functions that need only their argument (days_since/hours_since also take `now`).
PURE_FUNCTIONS: Final[Mapping[str, Callable[[Any], Any]]] = {
    "lower": lower,
    "upper": upper,
    "len": length,
}
PURE_FUNCTION_NAMES: Final[Mapping[str, str]] = {
    "lower": "lower",
    "upper": "upper",
    "len": "length",
}
TIME_FUNCTIONS: Final[Mapping[str, str]] = {
    "days_since": "days_since",
    "hours_since": "hours_since",
}
