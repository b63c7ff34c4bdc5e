"""`matches` patterns that can take exponential time are refused; common safe ones are not."""

from __future__ import annotations

import re
import time
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudge.dsl.regexes import compile_pattern, exponential

SAFE = [
    r"^(/[a-z0-9-]+)*/?$",  # paths: each round starts with a `/` the name cannot hold
    r"^(/[^/]+)+$",
    r"^([a-z0-9-]+\.)+[a-z]{2,}$",  # domains
    r"^(\w+\.)*\w+@example\.com$",
    r"^[a-z]+(-[a-z]+)*$",  # slugs
    r"^(\d+,)*\d+$",
    r"(?:\.\w+)+",
    r"(ab?)+",
    r"(,\s?)+",
    r"(\w++\s?)*",  # possessive
    r"(?>a+)+",  # atomic
    r"^(\d{1,3}\.){3}\d{1,3}$",  # a bounded repeat
    r"(?i)^(/[A-Z]+)+$",
    r"^([a-zA-Z0-9_\.\-])+\@(([a-zA-Z0-9\-])+\.)+com$",
    r"(foo|bar)+",  # alternatives that start differently
    r"(\.(com|org))+",
    r"(\w|-)+",
    r"^(/(a|ab))*$",  # alternatives alike, but each round starts with a `/`
    r"^(?:mon|tue|wed|thu|fri|sat|sun)+$",  # `sat` and `sun` start alike, then part
]

EXPONENTIAL = [
    r"^(a+)+$",
    r"(\w+\s?)*",
    r"(\w+\s?){1,100}$",  # bounded, but far
    r"(?>(a+)+b)",  # inside an atomic group it still backtracks
    r"(?:(a+)+b)++",
    r"([a-zA-Z0-9]{2,4})+$",
    r"(a+b?)+",
    r"(.*a)+",
    r"(?i)(a+A)+",  # the same letter, case aside
    r"^(a|aa)+$",  # alternatives that start alike
    r"^(.|\s)*x$",
]


@pytest.mark.parametrize("pattern", SAFE)
def test_common_patterns_whose_rounds_are_kept_apart_are_taken(pattern: str) -> None:
    assert exponential(pattern) is None
    assert compile_pattern(pattern) is not None


@pytest.mark.parametrize("pattern", EXPONENTIAL)
def test_patterns_that_can_backtrack_for_ever_are_refused(pattern: str) -> None:
    assert exponential(pattern) is not None
    assert compile_pattern(pattern) is None


def test_the_refused_pattern_of_the_example_is_slow_and_its_fix_is_not() -> None:
    text = "a" * 22 + "!"
    start = time.perf_counter()
    re.search(r"^(a+)+$", text)
    slow = time.perf_counter() - start
    start = time.perf_counter()
    re.search(r"^(a++)+$", text)
    fast = time.perf_counter() - start
    assert exponential(r"^(a++)+$") is None
    assert slow > 20 * fast  # what the refusal is for (not a timing target)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab.+*?()[]{}|^$\\dws,1-9^:>?=!")), max_size=24))
def test_any_pattern_that_compiles_is_judged_without_error(pattern: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # `[[`: "possible nested set", for Python's future
        try:
            re.compile(pattern)
        except (re.error, RecursionError, OverflowError):
            return
    exponential(pattern)  # an answer, never an exception
