"""The regular expressions of `matches`: compiled once, and refused when they can backtrack
for ever.

Python's `re` backtracks: a pattern that repeats a group which itself repeats something of
varying length (`(a+)+`, `(\\w+\\s?)*`) can take exponential time on a string that almost
matches, and an event's property is such a string whenever someone sends one. One event
would then stall its partition (and, read again after a restart, stall it again). Such
patterns are refused, by the checker when the pattern is written in the rules and by the
runtime when it comes from data; the fix is to make the inner repetition possessive (`a++`)
or the group atomic (`(?>...)`), which Python supports since 3.11.
"""

from __future__ import annotations

import re
from functools import lru_cache
from re import _parser  # the standard library's own parser of patterns
from typing import Any

__all__ = ["compile_pattern", "exponential", "invalid", "pattern_error"]

_REPEATS = (_parser.MAX_REPEAT, _parser.MIN_REPEAT)
_UNBOUNDED = _parser.MAXREPEAT


def pattern_error(pattern: str) -> str | None:
    """Why `pattern` cannot be used by `matches`, or None when it can."""
    return invalid(pattern) or exponential(pattern)


def invalid(pattern: str) -> str | None:
    """Why `pattern` does not compile, or None."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"invalid regular expression: {exc.msg}"
    except (RecursionError, OverflowError):
        return "invalid regular expression: too large"
    return None


def exponential(pattern: str) -> str | None:
    """Why a pattern that compiles can take exponential time, or None."""
    nested = _nested_repeat(list(_parser.parse(pattern)))
    if nested is None:
        return None
    return (
        f"this regular expression can take exponential time: `{nested}` repeats inside a "
        "repeated group; make the inner repetition possessive (`+` -> `++`, `*` -> `*+`) "
        "or the group atomic (`(?>...)`)"
    )


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """The compiled pattern, once; None when `pattern_error` refuses it."""
    if pattern_error(pattern) is not None:
        return None
    return re.compile(pattern)


def _nested_repeat(items: list[Any]) -> str | None:
    """The first repetition of varying length inside an unbounded one (`+` in `(a+)+`), as
    written roughly; None when there is none. Possessive repeats and atomic groups never
    backtrack into themselves and end the search below them."""
    stack: list[tuple[list[Any], bool]] = [(items, False)]
    while stack:
        seq, repeated = stack.pop()
        for op, arg in seq:
            if op in _REPEATS:
                low, high, sub = arg
                if repeated and low != high:
                    return _written(low, high)
                stack.append((list(sub), repeated or high == _UNBOUNDED))
            elif op is _parser.SUBPATTERN:
                stack.append((list(arg[3]), repeated))
            elif op is _parser.BRANCH:
                stack.extend((list(branch), repeated) for branch in arg[1])
            elif op in (_parser.ASSERT, _parser.ASSERT_NOT):
                stack.append((list(arg[1]), repeated))
            elif op is _parser.GROUPREF_EXISTS:
                stack.extend((list(branch), repeated) for branch in arg[1:] if branch)
    return None


def _written(low: int, high: int) -> str:
    if (low, high) == (0, _UNBOUNDED):
        return "*"
    if (low, high) == (1, _UNBOUNDED):
        return "+"
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low},{'' if high == _UNBOUNDED else high}}}"
