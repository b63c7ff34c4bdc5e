"""Diagnostics as text (for people and editors) and as JSON (for tools).

The text form (LANGUAGE.md §7):

    rules/cart.rules:4:42: error: unknown field `vaule` on event cart_updated (did you mean `value`?) [unknown-field]
        when cart_updated as cart where cart.vaule > 0
                                             ^^^^^

The first line is `path:line:column: severity: message [code]`, so editors and CI can jump to it.
Then the source line, its indentation replaced by four spaces and tabs expanded, and a caret line
under exactly the span (at least one `^`; a span over several lines is underlined to the end of
its first line), followed by the label if there is one; then a `note:` line per note.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping

from .diagnostics import Diagnostic
from .source import Source

__all__ = ["render_json", "render_text", "render_texts"]

INDENT = "    "
TAB_WIDTH = 4


_LONGEST_LINE = 120  # characters of a source line shown; a longer one is cut around its fault


def render_text(diagnostic: Diagnostic, source: Source | None) -> str:
    """One diagnostic as text, without a trailing newline."""
    span = diagnostic.span
    where = f"{span.path}:{span.line}:{span.column}" if source is not None else span.path
    lines = [f"{where}: {diagnostic.severity.value}: {diagnostic.message} [{diagnostic.code}]"]
    snippet = _snippet(diagnostic, source)
    if snippet:
        lines += snippet
    elif diagnostic.label:
        lines.append(f"{INDENT}{diagnostic.label}")
    lines += [f"{INDENT}note: {note}" for note in diagnostic.notes]
    return "\n".join(lines)


def render_texts(diagnostics: Iterable[Diagnostic], sources: Mapping[str, Source]) -> str:
    """Several diagnostics, each block followed by a newline, a blank line between blocks."""
    blocks = [render_text(d, sources.get(d.span.path)) for d in diagnostics]
    return "".join(
        block + "\n" + ("\n" if i < len(blocks) - 1 else "") for i, block in enumerate(blocks)
    )


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    """A JSON list of objects: code, severity, message, path, line, column, end_line,
    end_column, label, notes."""
    return json.dumps(
        [
            {
                "code": d.code,
                "severity": d.severity.value,
                "message": d.message,
                "path": d.span.path,
                "line": d.span.line,
                "column": d.span.column,
                "end_line": d.span.end_line,
                "end_column": d.span.end_column,
                "label": d.label,
                "notes": list(d.notes),
            }
            for d in diagnostics
        ],
        indent=2,
        ensure_ascii=False,
    )


def _width(text: str) -> int:
    """Columns a terminal gives `text` (wide East Asian characters take two)."""
    return sum(
        0
        if unicodedata.combining(ch)
        else 2
        if unicodedata.east_asian_width(ch) in ("W", "F")
        else 1
        for ch in text
    )


def _expand(text: str) -> str:
    return text.expandtabs(TAB_WIDTH)


def _snippet(diagnostic: Diagnostic, source: Source | None) -> list[str]:
    span = diagnostic.span
    if source is None or span.line < 1 or span.line > source.line_count:
        return []
    raw = source.line_text(span.line)
    if not raw.strip():
        return []  # nothing to underline
    # Columns in the raw line, clamped to it (a span may start or end just past its end).
    start = max(0, min(span.column - 1, len(raw)))
    end = span.end_column - 1 if span.end_line == span.line else len(raw)
    end = max(start, min(end, len(raw)))
    before = _expand(raw[:start])
    marked = _expand(before + raw[start:end])[len(before) :]
    shown = _expand(raw)
    indent = len(shown) - len(shown.lstrip())
    body = shown[indent:]
    offset = max(0, _width(before) - _width(shown[:indent]))
    width = max(1, _width(marked))
    if len(body) > _LONGEST_LINE and _width(body) == len(body):  # a window around the fault
        first = max(0, offset - _LONGEST_LINE // 3)
        last = min(len(body), first + _LONGEST_LINE)
        lead = "…" if first else ""
        width = min(width, last - offset)  # the carets end with the window
        body = lead + body[first:last] + ("…" if last < len(body) else "")
        offset = offset - first + len(lead)
    carets = "^" * max(1, width)
    caret_line = " " * offset + carets
    if diagnostic.label:
        caret_line += " " + diagnostic.label
    return [INDENT + body.rstrip(), INDENT + caret_line]
