"""Recovery from syntax errors, so that one run reports every error (LANGUAGE.md section 7).

A broken file is cut into its top-level declarations (`pieces`), each parsed alone. Within a
rule's trigger, `if` line, steps and clauses, and a test's lines, a broken statement is set aside
and the declaration parsed on (`recover`), for the errors after it and for the checker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from lark.exceptions import UnexpectedInput

from . import ast
from .diagnostics import Diagnostic, did_you_mean
from .grammar import (
    STATEMENT_STARTS,
    STATEMENT_WORDS,
    GluedKeyword,
    keyword_texts,
    masked,
    parse_text,
)
from .source import Source

__all__ = ["ParsePiece", "pieces", "recover"]

# Parses `source.text[start:end]`: its declarations, or the first syntax error.
ParsePiece = Callable[[Source, int, int], tuple[list[ast.Decl], Diagnostic | None]]


# A line that starts a top-level declaration at column 1: where a broken file is cut into pieces.
_DECL_START = re.compile(
    r"^(?:(?:rule|let|segment|policy|test)\b|event\s+\w+\s*\{|contact\s*\{)", re.MULTILINE
)


_LINE_WORD = re.compile(r"^([A-Za-z_]\w*)", re.MULTILINE)


_DECL_WORDS = frozenset({"rule", "let", "segment", "policy", "test", "event", "contact"})


def pieces(text: str) -> list[tuple[int, int]]:
    """(start, end) of each top-level declaration, cut at lines that start one, or start at
    column 1 with a misspelling of a word that does (`polcy`, `rle`): that is a declaration gone
    wrong, not part of the one before."""
    starts = [m.start() for m in _DECL_START.finditer(text)]
    starts += [
        m.start()
        for m in _LINE_WORD.finditer(text)
        if m.group(1) not in _DECL_WORDS and did_you_mean(m.group(1), _DECL_WORDS) is not None
    ]
    starts.sort()
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    ends = [*starts[1:], len(text)]
    return list(zip(starts, ends, strict=True))


_FIRST_WORD = re.compile(r"[ \t]*([A-Za-z_]\w*)")


_THEN = re.compile(r"\bthen\b")


# A statement alone, in a declaration of its own: does it parse without its context?
_ALONE = {"rule": "rule r__ when e__ then\n{}\nend\n", "test": 'test "t__"\n{}\nend\n'}


_IF_ALONE = "rule r__ when e__\n{}\nthen\nend\n"


_WHEN_ALONE = "rule r__\n{}\nthen\nend\n"


_MAX_RECOVERIES = 16


def _body_start(text: str, start: int, end: int) -> tuple[str, int] | None:
    """(`rule` or `test`, where the lines of its body start) for the declaration in
    `text[start:end]`: a rule's steps and clauses come on the lines after its `then`, a test's
    lines after its first. None for other declarations, or a rule without `then`."""
    kind = _FIRST_WORD.match(text, start)
    if kind is None or kind.group(1) not in _ALONE:
        return None
    head = kind.group(1)
    if head == "rule":
        found = _THEN.search(masked(text[start:end]))
        if found is None:
            return None
        at = start + found.end()
    else:
        at = start
    newline = text.find("\n", at, end)
    return None if newline < 0 else (head, newline + 1)


def _statement_end(text: str, line_start: int, end: int, words: frozenset[str]) -> int:
    """Where the statement on the line at `line_start` ends: before the next line that starts
    with one of `words` (or a misspelling of a statement word), or at `end`."""
    at = text.find("\n", line_start, end)
    while 0 <= at < end:
        following = at + 1
        word = _FIRST_WORD.match(text, following, end)
        if word is not None and (
            word.group(1) in words
            or (  # a misspelt one, not another keyword (`with`, `and` ...) going on a line
                word.group(1) not in keyword_texts().values()
                and did_you_mean(word.group(1), words) is not None
            )
        ):
            return following
        at = text.find("\n", following, end)
    return end


@dataclass(frozen=True, slots=True)
class _Statement:
    """A statement recovery may set aside: `text[start:stop]`, the template it is parsed alone
    in, and what it becomes when set aside (blank, or `when x` for a trigger)."""

    start: int
    stop: int
    alone: str
    replacement: str = ""


def _statement_at(text: str, start: int, end: int, at: int) -> _Statement | None:
    """The statement starting at `at` in the declaration `text[start:end]`, when it is one
    recovery handles: a line of a rule's body or of a test, a rule's `if` or its trigger."""
    first_word = _FIRST_WORD.match(text, at, end)
    word = None if first_word is None else first_word.group(1)
    body = _body_start(text, start, end)
    if body is not None and at >= body[1]:
        return _Statement(at, _statement_end(text, at, end, STATEMENT_WORDS), _ALONE[body[0]])
    head = _FIRST_WORD.match(text, start)
    if head is None or head.group(1) != "rule" or word not in ("if", "when"):
        return None
    stop = _statement_end(text, at, end, STATEMENT_WORDS | {"then", "if"})
    then = _THEN.search(masked(text[at:stop]))
    if then is not None:  # `if a == 1 then` on one line
        stop = at + then.start()
    if word == "if":
        return _Statement(at, stop, _IF_ALONE)
    return _Statement(at, stop, _WHEN_ALONE, "when x")


def _is_fault(text: str, statement: _Statement) -> bool:
    """Whether the statement is broken by itself (it does not parse alone; `end` never is)."""
    body = text[statement.start : statement.stop]
    word = _FIRST_WORD.match(body)
    if word is not None and word.group(1) == "end":
        return False
    return not _parses(statement.alone.format(body))


def recover(
    source: Source, start: int, end: int, first: Diagnostic, parse_piece: ParsePiece
) -> tuple[list[ast.Decl], list[Diagnostic]]:
    """After the first syntax error in a rule's trigger, `if` line or body, or in a test's
    lines: set the broken statement aside and parse on, for the errors after it and (but after a
    broken trigger) the declaration without it, which the checker then checks too.

    The statement is blanked (positions hold), except a broken trigger, which becomes `when x`:
    the rule needs one, and errors found further on are syntax errors only (what the checker
    would say of `x` is not kept). A misspelt keyword with a suggestion as long as itself is
    read as meant instead, so the rest of its line is read too. A statement that parses on its
    own is not the fault (an unclosed bracket before it is): recovery stops there, as it does
    for errors elsewhere (a rule without `then`), so that no error is reported that fixing one
    would not leave."""
    text = source.text
    found: list[Diagnostic] = []
    problem = first
    keep = True
    for _ in range(_MAX_RECOVERIES):
        at = problem.span.start
        if at >= end:
            break
        statement = _statement_at(text, start, end, _statement_start(text, start, at))
        if statement is not None and not text[statement.start : at].strip():
            # The error is the first word of its statement (`end` after `quiet hours 22:00`,
            # `then` after `if (a`): the statement before it may be the one cut short.
            earlier = _statement_start(text, start, max(statement.start - 1, start))
            before = _statement_at(text, start, end, earlier)
            if before is not None and before.start < statement.start and _is_fault(text, before):
                statement = before
        elif statement is not None:
            line = text.rfind("\n", start, at) + 1
            # The error is the first word of a line read as the continuation of the
            # statement above: if that one is whole without it, the line is the fault alone
            # (not after `end`: what follows a declaration is no statement of it).
            above = _FIRST_WORD.match(text, statement.start)
            if (
                statement.start < line
                and not text[line:at].strip()
                and (above is None or above.group(1) != "end")
                and not _is_fault(text, replace(statement, stop=line))
            ):
                statement = replace(statement, start=line)
        if statement is None or not _is_fault(text, statement):
            break
        fixed = _respelt(text, problem)
        if fixed is not None:  # `sned` for `send`: read the line on as meant, for its other errors
            retry, retry_problem = parse_piece(Source(source.path, fixed), start, end)
            if retry_problem is None or retry_problem.span.start > problem.span.end:
                text = fixed
                if retry_problem is None:
                    return (retry if keep else []), found
                problem = retry_problem
                found.append(problem)
                continue
        old = text[statement.start : statement.stop]
        new = statement.replacement
        if len(new) > len(old.rstrip()):
            break
        text = (
            text[: statement.start]
            + new
            + re.sub(r"[^\n]", " ", old[len(new) :])
            + text[statement.stop :]
        )
        keep = keep and not new
        decls, problem_or_none = parse_piece(Source(source.path, text), start, end)
        if problem_or_none is None:
            return (decls if keep else []), found
        problem = problem_or_none
        if problem.span.start < statement.stop:  # not further on: give up on this declaration
            break
        found.append(problem)
    return [], found


_MISSPELT = re.compile(r"unexpected `(\w+)` \(did you mean `(\w+)`\?\)")


def _respelt(text: str, problem: Diagnostic) -> str | None:
    """`text` with the misspelt keyword `problem` names replaced by the one it suggests, when
    the two are as long (`sned`/`send`, `scroe`/`score`: positions hold); else None."""
    found = _MISSPELT.fullmatch(problem.message)
    span = problem.span
    if found is None or len(found.group(1)) != len(found.group(2)):
        return None
    if text[span.start : span.end] != found.group(1):
        return None
    return text[: span.start] + found.group(2) + text[span.end :]


def _statement_start(text: str, start: int, at: int) -> int:
    """The start of the line where the statement holding `at` begins: the line of `at`, or
    an earlier one if that is the statement's continuation (`with { a: 1,` then `b: 2 }`)."""
    line = text.rfind("\n", start, at) + 1 or start
    line = max(line, start)
    while line > start:
        word = _FIRST_WORD.match(text, line)
        if word is not None and (
            word.group(1) in STATEMENT_STARTS
            or (  # a misspelt one (`tehn`) starts a statement too
                word.group(1) not in keyword_texts().values()
                and did_you_mean(word.group(1), STATEMENT_STARTS) is not None
            )
        ):
            return line
        previous = text.rfind("\n", start, line - 1) + 1
        line = max(previous, start)
    return line


def _parses(text: str) -> bool:
    try:
        parse_text(text)
    except (UnexpectedInput, GluedKeyword, RecursionError):
        return False
    return True
