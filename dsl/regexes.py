"""The regular expressions of `matches`: compiled once, and refused when they can backtrack
for ever.

Python's `re` backtracks: a pattern that repeats a group which itself repeats something of
varying length (`(a+)+`, `(\\w+\\s?)*`) can take exponential time on a string that almost
matches, and an event's property is such a string whenever someone sends one. One event
would then stall its partition (and, read again after a restart, stall it again). Such
patterns are refused, by the checker when the pattern is written in the rules and by the
runtime when it comes from data; the fix is to make the inner repetition possessive (`a++`)
or the group atomic (`(?>...)`), which Python supports since 3.11.

Alternatives that can start alike, repeated (`(a|aa)+`, `(.|\\s)*`), are refused too. A
repeated group is safe when each of its rounds must match a character that its inner
repetitions and alternatives cannot (`(/[a-z]+)*`, `([a-z0-9-]+\\.)+`, `(\\d+,)*`): the rounds
cannot share out the text in more than one way. This is a check for the common causes, not
a proof.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from functools import lru_cache
from re import _parser  # the standard library's own parser of patterns
from typing import Any

__all__ = ["compile_pattern", "exponential", "invalid", "pattern_error"]

_REPEATS = (_parser.MAX_REPEAT, _parser.MIN_REPEAT)
_UNBOUNDED = _parser.MAXREPEAT
_MANY = 10  # a group repeated up to more than this many times counts as repeated at will
# Characters to tell character sets apart by: Latin, and a few of other scripts and kinds.
_SAMPLE = tuple(chr(c) for c in range(0x250)) + tuple("\u2003\u0660\u0439\u4e2d\U0001f600")


def pattern_error(pattern: str) -> str | None:
    """Why `pattern` cannot be used by `matches`, or None when it can."""
    return invalid(pattern) or exponential(pattern)


def invalid(pattern: str) -> str | None:
    """Why `pattern` does not compile, or None."""
    try:
        with warnings.catch_warnings():  # `[[`: a FutureWarning from `re`, not for marketers
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(pattern)
    except re.error as exc:
        return f"invalid regular expression: {exc.msg}"
    except (RecursionError, OverflowError):
        return "invalid regular expression: too large"
    return None


def exponential(pattern: str) -> str | None:
    """Why a pattern that compiles can take exponential time, or None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        parsed = _parser.parse(pattern)
    folded = bool(parsed.state.flags & re.IGNORECASE)
    nested = _nested_repeat(list(parsed), folded)
    if nested is None:
        return None
    if nested == "|":
        return (
            "this regular expression can take exponential time: alternatives that can start "
            "alike (`|`) inside a repeated group with nothing in between that they cannot "
            "match; make the group atomic (`(?>...)`) or the alternatives start differently"
        )
    return (
        f"this regular expression can take exponential time: `{nested}` repeats inside a "
        "repeated group with nothing in between that it cannot match; make the inner "
        "repetition possessive (`+` -> `++`, `*` -> `*+`, `?` -> `?+`, `{m,n}` -> `{m,n}+`) "
        "or the group atomic (`(?>...)`)"
    )


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """The compiled pattern, once; None when `pattern_error` refuses it."""
    if pattern_error(pattern) is not None:
        return None
    return re.compile(pattern)


# ---------------------------------------------------------------------------- the analysis


def _nested_repeat(items: list[Any], folded: bool) -> str | None:
    """What, inside a repeated group whose rounds are not kept apart, can share out the text
    in many ways: a repetition of varying length (`+` in `(a+)+`, as written roughly) or
    alternatives that can start alike (`|` in `(a|aa)+`); None when there is none."""
    for op, arg in _walk(items):
        if op not in _REPEATS:
            continue
        _, high, body = arg
        if high != _UNBOUNDED and high <= _MANY:
            continue
        found: list[tuple[str, Callable[[str], bool]]] = []
        for o, a in _walk(list(body), opaque=True):
            if o in _REPEATS and a[0] != a[1]:
                found.append((_written(a[0], a[1]), _chars(list(a[2]), folded)))
            elif o is _parser.BRANCH and _alike(a[1], folded):
                found.append(("|", _chars([(o, a)], folded)))
        if found and not _kept_apart(list(body), [reach for _, reach in found], folded):
            return found[0][0]
    return None


def _alike(branches: list[Any], folded: bool) -> bool:
    """Whether two of the alternatives can start alike: when both are runs of single
    characters (`sat`, `sun`), whether one can match the start of what the other matches;
    else whether they can start with the same character."""
    runs = [_run(list(branch), folded) for branch in branches]
    firsts = [_first(list(branch), folded) for branch in branches]
    for i in range(len(branches)):
        for j in range(i + 1, len(branches)):
            one, other = runs[i], runs[j]
            if one is not None and other is not None:
                if all(_overlap(x, y) for x, y in zip(one, other, strict=False)):
                    return True
            elif _overlap(firsts[i], firsts[j]):
                return True
    return False


def _run(items: list[Any], folded: bool) -> list[Callable[[str], bool]] | None:
    """The character tests of a sequence of single characters (`sat`, `[a-z]x`); None for
    anything else."""
    tests = [_one_char(op, arg, folded) for op, arg in items]
    return None if any(t is None for t in tests) else [t for t in tests if t is not None]


def _overlap(one: Callable[[str], bool], other: Callable[[str], bool]) -> bool:
    return any(one(ch) and other(ch) for ch in _SAMPLE)


def _first(items: list[Any], folded: bool) -> Callable[[str], bool]:
    """A test that holds for (at least) every character `items` can start with."""
    tests: list[Callable[[str], bool]] = []
    for op, arg in items:
        one = _one_char(op, arg, folded)
        if one is not None:
            tests.append(one)
            return _any_of(tests)
        if op is _parser.AT:  # `^`, `$`, `\\b`: no character
            continue
        if op in (*_REPEATS, _parser.POSSESSIVE_REPEAT):
            tests.append(_first(list(arg[2]), folded))
            if arg[0] >= 1:
                return _any_of(tests)
            continue  # it may match nothing: what follows may start the text too
        if op is _parser.SUBPATTERN:
            tests.append(_first(list(arg[3]), folded))
            return _any_of(tests)
        if op is _parser.BRANCH:
            tests.extend(_first(list(branch), folded) for branch in arg[1])
            return _any_of(tests)
        return _anything  # not followed here
    return _anything  # it may match the empty text


def _any_of(tests: list[Callable[[str], bool]]) -> Callable[[str], bool]:
    return lambda ch: any(test(ch) for test in tests)


def _anything(ch: str) -> bool:
    return True


def _walk(items: list[Any], *, opaque: bool = False) -> Iterator[tuple[Any, Any]]:
    """Every node under `items`. With `opaque`, not into possessive repeats and atomic groups
    (text they matched is never given back to the repeat around them)."""
    stack = list(reversed(items))
    while stack:
        op, arg = stack.pop()
        yield op, arg
        children: list[Any] = []
        if op in _REPEATS:
            children = list(arg[2])
        elif op is _parser.SUBPATTERN:
            children = list(arg[3])
        elif op is _parser.BRANCH:
            children = [item for branch in arg[1] for item in branch]
        elif op in (_parser.ASSERT, _parser.ASSERT_NOT):
            children = list(arg[1])
        elif op is _parser.GROUPREF_EXISTS:
            children = [item for branch in arg[1:] if branch for item in branch]
        elif op is _parser.POSSESSIVE_REPEAT and not opaque:
            children = list(arg[2])
        elif op is _parser.ATOMIC_GROUP and not opaque:
            children = list(arg)
        stack.extend(reversed(children))


def _kept_apart(body: list[Any], reach: list[Callable[[str], bool]], folded: bool) -> bool:
    """Whether one round of `body` must match a character (at its top level) that none of
    the parts that can share out the text (`reach`: the characters each can match) can."""
    while len(body) == 1 and body[0][0] is _parser.SUBPATTERN:  # `(...)+`: the group's items
        body = list(body[0][1][3])
    for op, arg in body:
        test = _required_char(op, arg, folded)
        if test is None:
            continue
        if not any(test(ch) and can(ch) for can in reach for ch in _SAMPLE):
            return True
    return False


def _required_char(op: Any, arg: Any, folded: bool) -> Callable[[str], bool] | None:
    """The character test of an item that must match at least one character, all of one set
    (`/`, `\\s`, `\\w++`); None for others."""
    if op in (*_REPEATS, _parser.POSSESSIVE_REPEAT) and arg[0] >= 1 and len(arg[2]) == 1:
        inner_op, inner_arg = arg[2][0]
        return _one_char(inner_op, inner_arg, folded)
    return _one_char(op, arg, folded)


def _one_char(op: Any, arg: Any, folded: bool) -> Callable[[str], bool] | None:
    """The character test of an item that matches exactly one character; None for others."""
    if op is _parser.SUBPATTERN and len(arg[3]) == 1:
        inner_op, inner_arg = arg[3][0]
        return _one_char(inner_op, inner_arg, folded)
    if op is _parser.LITERAL:
        return _literal(arg, folded)
    if op is _parser.NOT_LITERAL:
        matches = _literal(arg, folded)
        return lambda ch: not matches(ch)
    if op is _parser.IN:
        return _in(arg, folded)
    if op is _parser.ANY:
        return lambda ch: True
    return None


def _chars(items: list[Any], folded: bool) -> Callable[[str], bool]:
    """A test that holds for (at least) every character `items` can match."""
    tests: list[Callable[[str], bool]] = []
    for op, arg in _walk(items):
        if op in (_parser.LITERAL, _parser.NOT_LITERAL, _parser.IN, _parser.ANY):
            test = _one_char(op, arg, folded)
            if test is not None:
                tests.append(test)
        elif op not in (*_REPEATS, _parser.SUBPATTERN, _parser.BRANCH, _parser.AT):
            return _anything  # something not followed here: it may match anything
    return _any_of(tests)


def _literal(code: int, folded: bool) -> Callable[[str], bool]:
    char = chr(code)
    if folded:
        low = char.lower()
        return lambda ch: ch.lower() == low
    return lambda ch: ch == char


def _in(items: list[Any], folded: bool) -> Callable[[str], bool]:
    negated = bool(items) and items[0][0] is _parser.NEGATE
    tests: list[Callable[[str], bool]] = []
    for op, arg in items[1:] if negated else items:
        if op is _parser.LITERAL:
            tests.append(_literal(arg, folded))
        elif op is _parser.RANGE:
            low, high = arg
            tests.append(_range(low, high, folded))
        elif op is _parser.CATEGORY:
            tests.append(_CATEGORIES.get(arg, lambda ch: True))
        else:
            tests.append(lambda ch: True)  # unknown: it may match anything

    def member(ch: str) -> bool:
        return any(test(ch) for test in tests) != negated

    return member


def _range(low: int, high: int, folded: bool) -> Callable[[str], bool]:
    if folded:
        return lambda ch: any(low <= ord(c) <= high for c in (ch, ch.lower(), ch.upper()))
    return lambda ch: low <= ord(ch) <= high


_CATEGORIES: dict[Any, Callable[[str], bool]] = {
    _parser.CATEGORY_DIGIT: str.isdecimal,
    _parser.CATEGORY_NOT_DIGIT: lambda ch: not ch.isdecimal(),
    _parser.CATEGORY_SPACE: str.isspace,
    _parser.CATEGORY_NOT_SPACE: lambda ch: not ch.isspace(),
    _parser.CATEGORY_WORD: lambda ch: ch.isalnum() or ch == "_",
    _parser.CATEGORY_NOT_WORD: lambda ch: not (ch.isalnum() or ch == "_"),
}


def _written(low: int, high: int) -> str:
    if (low, high) == (0, _UNBOUNDED):
        return "*"
    if (low, high) == (1, _UNBOUNDED):
        return "+"
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low},{'' if high == _UNBOUNDED else high}}}"
