"""Diagnostics: what the parser and the checker say about a ruleset.

A diagnostic has a stable code (see `codes.py`), a severity, a one-line message, the span of the
fault, an optional label shown under the caret, and notes. Passes collect them; nothing raises
for a user's mistake.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from .source import Span


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    span: Span
    label: str = ""
    notes: tuple[str, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


def error(code: str, message: str, span: Span, label: str = "", *notes: str) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, span, label, tuple(notes))


def warning(code: str, message: str, span: Span, label: str = "", *notes: str) -> Diagnostic:
    return Diagnostic(code, Severity.WARNING, message, span, label, tuple(notes))


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelt word, if one is close enough."""
    pool = sorted(set(candidates))
    matches = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in pool}
        if word.lower() in lowered:
            return lowered[word.lower()]
        return None
    return matches[0]


def hint(word: str, candidates: Iterable[str], listed: int = 8) -> str:
    """` (did you mean `x`?)`; else, when there are a few candidates (up to `listed`), what
    was expected: ` (expected `a`, `b` or `c`)`; else the empty string."""
    pool = sorted(set(candidates))
    best = did_you_mean(word, pool)
    if best:
        return f" (did you mean `{best}`?)"
    if 0 < len(pool) <= listed:
        return f" (expected {or_list([f'`{w}`' for w in pool])})"
    return ""


def or_list(items: Sequence[str]) -> str:
    """`a`, `a or b`, `a, b or c`..."""
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} or {items[-1]}"


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sorted by location and de-duplicated; every one is kept (`nudge check` reports every
    error of a ruleset in one run, LANGUAGE.md section 7)."""
    seen: set[tuple[str, int, str]] = set()
    unique: list[Diagnostic] = []
    for d in diagnostics:
        key = (d.span.path, d.span.start, d.message)
        if key not in seen:
            seen.add(key)
            unique.append(d)
    return sorted(unique, key=lambda d: (d.span.sort_key(), d.code))
