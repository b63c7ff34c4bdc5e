"""Syntax errors in words: a Lark error in a declaration becomes a `Diagnostic` that says what
was found, what was expected (`TERMINAL_NAMES`, grouped), and, for known slips, what to write
(`=>`, `is nul`, `24x`, a keyword where a value goes, a line cut short, labels by example after
lark's `examples/advanced/error_reporting_lalr.py`).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import replace

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .ast import TYPE_NAMES
from .diagnostics import Diagnostic, did_you_mean, error, or_list
from .grammar import (
    COMMENT,
    STATEMENT_STARTS,
    STRING_OR_COMMENT,
    GluedKeyword,
    blank_comment,
    is_keyword_operand,
    keyword_texts,
    lark_parser,
    masked,
)
from .source import Source, Span

__all__ = ["PARSE_EXAMPLES", "TERMINAL_NAMES", "glued_error", "syntax_error", "too_deep"]


# Human names for terminals in "expected ..." messages.
TERMINAL_NAMES: dict[str, str] = {
    "NAME": "a name",
    "DIGIT_NAME": "a name",
    "HEAD": "a name",
    "STRING": 'a string in double quotes ("...")',
    "NUMBER": "a number",
    "INT": "a whole number",
    "DURATION": "a duration such as 30s, 15m, 2h, 7d or 2w",
    "TIME_OF_DAY": "a time of day such as 21:00",
    "TIMESTAMP": "a timestamp such as 2026-11-20T10:00:00Z",
    "COMPARE_OP": "a comparison",
    "ADD_OP": "`+` or `-`",
    "MUL_OP": "`*` or `/`",
    "SCORE_OP": "`+=` or `-=`",
    "FOLLOWED_BY": "`followed by`",
    "NOT_FOLLOWED_BY": "`not followed by`",
    "IS_NULL": "`is null`",
    "IS_NOT_NULL": "`is not null`",
    "NO": "`no`",
    "SHOW_KIND": "`show`",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "COMMA": "`,`",
    "COLON": "`:`",
    "DOT": "`.`",
    "EQUAL": "`=`",
    "MINUS": "`-`",
    "$END": "the end of the file",
}


# What a token that stands where it cannot is, in words (for "unexpected ...").
def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "end of file"
    text = str(token)
    if token.type == "STRING":
        return f"string {text}"
    if token.type in ("NUMBER", "INT"):
        return f"number {text}"
    return f"`{text}`"


# Terminal sets that stand for one idea in "expected ..." messages.
_GROUPS: tuple[tuple[frozenset[str], str, frozenset[str]], ...] = (
    # (terminals that must all be expected, the words, terminals the words stand for)
    (
        frozenset({"RULE", "TEST", "LET", "SEGMENT", "EVENT", "CONTACT", "POLICY"}),
        "a declaration (rule, test, let, segment, event, contact or policy)",
        frozenset({"RULE", "TEST", "LET", "SEGMENT", "EVENT", "CONTACT", "POLICY", "$END"}),
    ),
    (
        frozenset({"SEND", "AUDIENCE", "SET", "UNSET", "SCORE", "EMIT", "WAIT", "STOP"}),
        "a step (send, audience, show, set, unset, score, emit, wait or stop if)",
        frozenset({"SEND", "AUDIENCE", "SHOW_KIND", "SET", "UNSET", "SCORE", "EMIT", "WAIT"})
        | {"STOP"},
    ),
    (
        frozenset({"EXIT", "LIMIT", "ONCE", "QUIET", "PRIORITY", "GOAL"}),
        "a clause (exit on, limit, once, quiet hours, no quiet hours, priority or goal)",
        frozenset({"EXIT", "LIMIT", "ONCE", "QUIET", "NO", "PRIORITY", "GOAL"}),
    ),
    (
        frozenset({"GIVEN", "AT", "EXPECT"}),
        "a test line (given, at or expect)",
        frozenset({"GIVEN", "AT", "EXPECT"}),
    ),
    (
        frozenset({"HEAD", "NUMBER", "STRING", "LPAR", "TRUE"}),
        "an expression",
        frozenset(
            {"COUNT", "DURATION", "FALSE", "HEAD", "LBRACE", "LPAR", "LSQB", "MINUS", "NOT"}
            | {"NOW", "NULL", "NUMBER", "STRING", "TRUE"}
        ),
    ),
    (
        frozenset({"COMPARE_OP", "ADD_OP"}),
        "an operator",
        frozenset({"COMPARE_OP", "ADD_OP", "MUL_OP", "AND", "OR", "IS_NULL", "IS_NOT_NULL"}),
    ),
)


def _expected_text(expected: set[str]) -> str:
    terms = set(expected)
    names: list[str] = []
    for required, words, covers in _GROUPS:
        if required <= terms:
            names.append(words)
            terms -= covers
    for term in sorted(terms):
        if term in TERMINAL_NAMES:
            names.append(TERMINAL_NAMES[term])
        elif term.isupper() or term.startswith("__"):
            # Anonymous keyword terminals are named after their text by Lark (e.g. THEN, WITHIN).
            names.append(f"`{term.lower()}`")
        else:
            names.append(f"`{term}`")
    unique = list(dict.fromkeys(names))
    if len(unique) > 8:
        return ", ".join(unique[:8]) + ", ..."
    return or_list(unique)


_UNIT_WORDS = {
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "d": "d", "day": "d", "days": "d",
    "w": "w", "wk": "w", "wks": "w", "week": "w", "weeks": "w",
}  # fmt: skip


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _whole_duration(amount: float, unit: str) -> str | None:
    """`1.5h` -> `90m`: the same length as a whole number of the largest unit that fits."""
    seconds = amount * _UNIT_SECONDS[unit]
    if not math.isfinite(seconds):
        return None
    for name in ("w", "d", "h", "m", "s"):
        count = seconds / _UNIT_SECONDS[name]
        if count >= 1 and abs(count - round(count)) < 1e-9:
            return f"{round(count)}{name}"
    return None


def _token_span(source: Source, token: Token, offset: int) -> Span:
    start = (token.start_pos or 0) + offset
    stop = (token.end_pos if token.end_pos is not None else start - offset) + offset
    return source.span(start, max(stop, start))


def _declaration_at(source: Source, offset: int) -> str:
    """`the rule `welcome`` for the declaration that starts at `offset`, or `this declaration`."""
    found = re.match(
        r"\s*(rule|test|let|segment)\s+(\w+|\"[^\"\n]*\")", source.text[offset : offset + 300]
    )
    if found is None:
        return "this declaration"
    kind, name = found.groups()
    kind = "constant" if kind == "let" else kind
    return f"the {kind} {name}" if name.startswith('"') else f"the {kind} `{name}`"


# `rule` followed by a keyword (taken for the name) and whitespace, up to the unexpected token.
# From a schema's start to just after a field's `:` (its type is missing).
_SCHEMA_FIELD = re.compile(r"\s*(?:event\s+\w+|contact)\s*\{[^{}]*:\s*\Z")
_RULE_WORD = re.compile(r"(?:^|\n)[ \t]*rule\s+\Z")
_WITH_MESSAGES = {
    "send": "a step has one `with`: put every field in one `{...}`",
    "expect": "an expectation has one `with`: put every field in one `{...}`",
    "emit": "`emit` takes its fields without `with`: `emit <event> { ... }`",
}


def _stray_with(source: Source, start: int, at: int) -> str:
    """What a `with` where none can go is wrong about, by the statement it is in (the first
    statement word on its line or the lines above it, continuation lines aside)."""
    text = masked(source.text[start:at])
    for line in reversed(text.splitlines()):
        words = line.split()
        if words and words[0] in STATEMENT_STARTS:
            return _WITH_MESSAGES.get(words[0], "unexpected `with`: only `send` steps carry data")
    return "unexpected `with`: only `send` steps carry data"


# `when 2` just before the `.` of `when 2.5 ...`: a count with a fraction.
_COUNT_BEFORE = re.compile(r"\b(when|limit)\s+(\d+)\Z")
# A word that takes a name, then a keyword (read as that name), up to where the error is.
_KEYWORD_AS_NAME = re.compile(
    r"(?<![.\w])(rule|emit|entered|left|as|when|on|goal|by)\s+([A-Za-z_]\w*)\s*\Z"
)
_NAME_AFTER = {  # what the word needs: message, label
    "rule": ("a rule needs a name: write `rule <name>`", "such as `rule abandoned_cart`"),
    "emit": ("`emit` needs an event type: write `emit <event>`", "such as `emit lead_qualified`"),
    "entered": ("`entered` needs a segment: write `entered <segment>`", "such as `entered vip`"),
    "left": ("`left` needs a segment: write `left <segment>`", "such as `left vip`"),
    "as": ("`as` needs a name for the event: write `as <name>`", "such as `as cart`"),
    "when": ("`when` needs a trigger: write `when <event>`", "such as `when signed_up`"),
    "on": (
        "`exit on` needs an event type: write `exit on <event>`",
        "such as `exit on unsubscribed`",
    ),
    "goal": ("`goal` needs an event type: write `goal <event> within <duration>`", ""),
    "by": ("`followed by` needs an event type: write `followed by <event>`", ""),
}


# Operators as other languages spell them, and what they are here.
_OTHER_OPERATORS = {
    "startwith": "startswith", "starts_with": "startswith", "beginswith": "startswith",
    "endwith": "endswith", "ends_with": "endswith", "contain": "contains",
    "includes": "contains", "include": "contains", "equals": "==", "eq": "==", "ne": "!=",
    "like": "matches", "match": "matches", "notin": "not in", "not_in": "not in",
    "isnull": "is null", "AND": "and", "OR": "or", "NOT": "not",
}  # fmt: skip


def _other_language(source: Source, token: Token, text: str, span: Span) -> Diagnostic | None:
    """Slips from other languages: `startwith`, `<>`, `===`, `1,5`, `// comment`, and an
    invisible character inside a word."""
    whole = source.text
    before = whole[span.start - 1] if span.start else ""
    invisible = whole[span.end] if span.end < len(whole) else ""
    if invisible and unicodedata.category(invisible) == "Cf":  # `sco\u200bre`
        return error(
            "syntax",
            f"an invisible character, U+{ord(invisible):04X}, after `{text}`: delete it",
            source.span(span.end, span.end + 1),
        )
    meant = _OTHER_OPERATORS.get(text)
    if meant is not None and token.type in ("NAME", "HEAD"):
        return error("syntax", f"unexpected `{text}` (did you mean `{meant}`?)", span)
    if text == ">" and before == "<":
        return error(
            "syntax", "`<>` is not an operator: write `!=`", source.span(span.start - 1, span.end)
        )
    if text == "=" and whole[span.start - 2 : span.start] == "==":
        return error(
            "syntax", "`===` is not an operator: write `==`", source.span(span.start - 2, span.end)
        )
    if text == "," and before.isdigit() and whole[span.end : span.end + 1].isdigit():
        return error("syntax", "a number takes a decimal point, not a comma: `1.5`", span)
    if text == "-" and before.isalnum() and whole[span.end : span.end + 1].isalpha():
        start = span.start
        while start > 0 and (whole[start - 1].isalnum() or whole[start - 1] in "_-"):
            start -= 1
        stop = span.end
        while stop < len(whole) and (whole[stop].isalnum() or whole[stop] in "_-"):
            stop += 1
        name = whole[start:stop]
        if whole[stop:].lstrip(" \t").startswith(":"):  # an object's key: quoting keeps it
            return error(
                "syntax",
                f'a key with `-` is written in quotes: `"{name}":`',
                source.span(start, stop),
            )
        return error(
            "syntax",
            f"a name cannot hold `-`: write `{name.replace('-', '_')}`",
            source.span(start, stop),
        )
    if text == "/" and whole[span.end : span.end + 1] == "/":
        return error("syntax", "comments start with `#`", source.span(span.start, span.start + 2))
    return None


# `when inactiv for 30d`: a trigger word misspelt, read as an event type.
_TRIGGER_WORD = re.compile(r"(?<![.\w])when\s+([A-Za-z_]\w*)\s+\Z")
_TRIGGER_WORDS = {"inactive": "inactive for", "entered": "entered"}


def _misspelt_trigger(source: Source, end: int, token: Token) -> Diagnostic | None:
    text = str(token)
    fits = {  # what comes after the meant word: `inactive for 30d`, `entered vip`
        "inactive": text == "for" or text[:1].isdigit(),
        "entered": token.type in ("NAME", "HEAD") and text not in keyword_texts().values(),
    }
    begin = max(0, end - 100)
    found = _TRIGGER_WORD.search(masked(source.text[begin:end]))
    if found is None:
        return None
    word = found.group(1)
    meant = did_you_mean(word, _TRIGGER_WORDS)
    if meant is None or meant == word or "_" in word or abs(len(word) - len(meant)) > 2:
        return None  # `entered_vip` is an event type of its own
    if not fits[meant]:
        return None  # `when active` and `then` forgotten: not a trigger word
    return error(
        "syntax",
        f"unexpected `{word}` (did you mean `{_TRIGGER_WORDS[meant]}`?)",
        source.span(begin + found.start(1), begin + found.end(1)),
    )


_TRIGGER_STARTS = frozenset({"inactive", "entered", "left", "count", "not", "followed"})


def _keyword_taken_as_name(source: Source, end: int) -> Diagnostic | None:
    """`rule` / `emit` / `entered` / `left` / `as` followed by a keyword just before `end`:
    the parser took the keyword for the missing name, and failed after it."""
    begin = max(0, end - 200)
    found = _KEYWORD_AS_NAME.search(masked(source.text[begin:end]))  # not in comments
    if found is None or found.group(2) not in keyword_texts().values():
        return None
    if found.group(1) == "when" and found.group(2) in _TRIGGER_STARTS:
        return None  # `when inactive 30d`: a trigger, gone wrong further on
    message, label = _NAME_AFTER[found.group(1)]
    return error(
        "syntax",
        f"{message} before `{found.group(2)}`",
        source.span(begin + found.start(2), begin + found.end(2)),
        label,
    )


_MULTI_WORD = {"NOT_FOLLOWED_BY": "not followed by", "FOLLOWED_BY": "followed by"}  # longest first


def _multi_word_hint(text: str, after: str, expected: set[str]) -> str | None:
    """The expected keyword of several words that `text` and the words after it misspell."""
    following = after.split()
    for terminal, keyword in _MULTI_WORD.items():
        if terminal not in expected:
            continue
        size = keyword.count(" ") + 1
        written = " ".join([text, *following[: size - 1]])
        if did_you_mean(written, {keyword}) is not None:
            return keyword
        first, second = keyword.split()[:2]
        if text != "not" and did_you_mean(text, {first}) is not None and following[:1] != [second]:
            return keyword  # `followed order_completed`: a word of it left out (`not` is more)
    return None


def _unexpected_token(
    source: Source, exc: UnexpectedToken, offset: int, end_of_text: int
) -> Diagnostic:
    token = exc.token
    expected = set(exc.accepts or exc.expected)
    label = _example_label(exc)
    if token.type == "$END":
        last = len(STRING_OR_COMMENT.sub(blank_comment, source.text[:end_of_text]).rstrip())
        span = source.span(last, last)
        if "END" in expected:
            taken = _keyword_taken_as_name(source, last)
            if taken is not None:  # `emit` then `end`: the rule's `end` went for the event
                return taken
            what = _declaration_at(source, offset)
            return error(
                "syntax",
                f"{what} is missing its `end`",
                span,
                label or "every rule and test ends with `end`",
            )
        ends = "file" if not source.text[end_of_text:].strip() else _declaration_at(source, offset)
        return error(
            "syntax", f"unexpected end of {ends}; expected {_expected_text(expected)}", span, label
        )
    span = _token_span(source, token, offset)
    text = str(token)
    after = source.text[span.end : span.end + 40]
    if token.type == "STRING" and _RULE_WORD.search(
        source.text, max(0, span.start - 200), span.start
    ):
        return error(
            "syntax",
            'a rule needs a name before its title: write `rule <name> "<title>"`',
            span,
            "such as `rule abandoned_cart`",
        )
    count = _COUNT_BEFORE.search(source.text, max(0, span.start - 100), span.start)
    if text == "." and count is not None:  # `when 2.5 page_viewed within 1h`, `limit 2.5 per 1d`
        decimals = re.match(r"\d*", after)
        stop = span.end + (decimals.end() if decimals else 0)
        what, example = (
            ("a count", "`3 page_viewed within 7d`")
            if count.group(1) == "when"
            else ("a limit", "`limit 2 per 1d`")
        )
        return error(
            "syntax",
            f"`{source.text[count.start(2) : stop]}` is not {what}: "
            + ("it counts whole events" if count.group(1) == "when" else "it is a whole number"),
            source.span(count.start(2), stop),
            f"such as {example}",
        )
    slip = _other_language(source, token, text, span)
    if slip is not None:
        return slip
    taken = _keyword_taken_as_name(source, span.start)
    if taken is not None:
        return taken
    trigger = _misspelt_trigger(source, span.start, token)
    if trigger is not None:
        return trigger
    if token.type == "EQUAL" and "COMPARE_OP" in expected:
        if after.startswith(">") or after.startswith("<"):  # `=>`, `=<`
            written = "=" + after[0]
            meant = after[0] + "="
            return error(
                "syntax",
                f"`{written}` is not an operator: write `{meant}`",
                source.span(span.start, span.end + 1),
            )
        return error("syntax", "`=` is not a comparison: write `==`", span, label)
    if text == "is" and ("IS_NULL" in expected or "COMPARE_OP" in expected):
        return error(  # `is nul`, `is not nothing`: the multi-word operators did not match
            "syntax",
            "`is` goes with `null`: write `is null` or `is not null`",
            span,
            label,
        )
    if token.type == "COMPARE_OP" and "COMPARE_OP" not in expected and "AND" in expected:
        return error(
            "syntax",
            "comparisons do not chain",
            span,
            label or "write `a < b and b < c`",
        )
    if token.type in ("NUMBER", "INT") and "DURATION" in expected:
        unit_word = re.match(r"\s*([A-Za-z]+)", after)
        unit = _UNIT_WORDS.get(unit_word.group(1).lower()) if unit_word else None
        if unit is not None and unit_word is not None:
            written = source.text[span.start : span.end + unit_word.end()]
            whole = _whole_duration(float(text), unit)
            fix = f"write {whole}" if whole else "use a smaller unit"
            return error(
                "syntax",
                f"`{written}` is not a duration: a duration is a whole number and a unit "
                "(s, m, h, d or w), with no space",
                source.span(span.start, span.end + unit_word.end()),
                label or fix,
            )
        glued = re.match(r"[A-Za-z_]\w*", after)
        if glued is not None:  # `24x`, `1y`, `1dd`: a unit that is none
            written = text + glued.group()
            return error(
                "syntax",
                f"`{written}` is not a duration: a duration is a whole number and a unit "
                "(s, m, h, d or w)",
                source.span(span.start, span.end + glued.end()),
                label or "such as 30s, 15m, 2h, 7d or 2w",
            )
    if token.type in ("NUMBER", "INT") and "TIMESTAMP" in expected:
        stamp = re.match(r"[0-9][0-9T:+\-.Z]*", source.text[span.start : span.start + 40])
        written = stamp.group() if stamp else text
        return error(
            "syntax",
            f"`{written}` is not a timestamp: write a date, a time and an offset",
            source.span(span.start, span.start + len(written)),
            label or "such as 2026-11-20T10:00:00Z",
        )
    if token.type in ("NUMBER", "INT") and "TIME_OF_DAY" in expected:
        return error(
            "syntax",
            f"`{text}` is not a time of day: write hours and minutes",
            span,
            label or "such as 21:00",
        )
    if is_keyword_operand(exc):
        return _keyword_as_operand(source, exc, offset, label)
    if "NAME" in expected and _SCHEMA_FIELD.match(source.text, offset, span.start):
        types = or_list([f"`{t}`" for t in TYPE_NAMES])
        colon = len(source.text[: span.start].rstrip())
        if "\n" in source.text[colon : span.start]:  # `phone:` ends its line: the caret goes there
            return error("syntax", f"expected a type: {types}", source.span(colon, colon))
        return error(
            "syntax", f"unexpected {_describe_token(token)}; expected a type: {types}", span
        )
    cut_short = _cut_short(source, exc, offset, expected, label)
    if cut_short is not None:
        return cut_short
    if text == "with" and "WITH" not in expected:  # `audience add "x" with {...}`
        return error("syntax", _stray_with(source, offset, span.start), span)
    if token.type in ("NAME", "HEAD") or text in keyword_texts().values():
        words = {keyword_texts()[t] for t in expected if t in keyword_texts()}
        best = did_you_mean(text, words) if text not in words else None
        if best is None:  # `folowed by`: a keyword of two or three words, misspelt
            best = _multi_word_hint(text, after, expected)
        if best is not None:
            # the parser's state after a step fits many examples: keep a label about `best` only
            fits = label if f"`{best}`" in label else ""
            return error("syntax", f"unexpected `{text}` (did you mean `{best}`?)", span, fits)
    if token.type in ("WHEN", "THEN") and "RULE" in expected:
        label = f"`{text}` belongs inside a rule: write `rule <name>` first"
    message = f"unexpected {_describe_token(token)}; expected {_expected_text(expected)}"
    return error("syntax", message, span, label)


# Terminals a line may start with: when one is expected, a line is allowed to end here.
_LINE_STARTERS = frozenset(
    {
        "SEND", "AUDIENCE", "SHOW", "SHOW_KIND", "SET", "UNSET", "SCORE", "EMIT", "WAIT", "STOP",
        "EXIT", "LIMIT", "ONCE", "QUIET", "NO", "PRIORITY", "GOAL", "END", "THEN", "IF", "WHEN",
        "WHERE", "AS", "FOLLOWED_BY", "NOT_FOLLOWED_BY", "RULE", "TEST", "LET", "SEGMENT",
        "EVENT", "CONTACT", "POLICY", "GIVEN", "AT", "EXPECT", "$END",
    }
)  # fmt: skip


def _cut_short(
    source: Source, exc: UnexpectedToken, offset: int, expected: set[str], label: str
) -> Diagnostic | None:
    """A line that ends before its statement does (`quiet hours 22:00`, `if (a`): the error
    is found at the next line's first word, but the caret goes where the line stopped."""
    token = exc.token
    if token.start_pos is None or expected & _LINE_STARTERS:
        return None
    at = token.start_pos + offset
    before = STRING_OR_COMMENT.sub(blank_comment, source.text[offset:at]).rstrip()
    end = offset + len(before)
    if not before or "\n" not in source.text[end:at]:
        return None
    last = re.search(r"(\S+)$", before)
    after = source.text[end - len(last.group(1)) : end] if last else before[-1:]
    return error(
        "syntax",
        f"expected {_expected_text(expected)} after `{after}`, found `{token}` on the next line",
        source.span(end, end),
        label,
    )


# After these, the missing operand is a whole condition.
_CONDITION_BEFORE = frozenset({"IF", "WHERE", "HAS", "AND", "OR", "NOT"})


def _keyword_as_operand(
    source: Source, exc: UnexpectedToken, offset: int, label: str
) -> Diagnostic:
    """A keyword where a value must come: `where e.x ==` then `then`. The expression before it is
    unfinished, so the caret goes right after its last token (`==`), not on the keyword."""
    token = exc.token
    text = str(token)
    previous = exc.token_history[-1] if exc.token_history else None
    if previous is None or previous.end_pos is None:
        what = "an expression"
        span = _token_span(source, token, offset)
        return error("syntax", f"unexpected `{text}`; expected {what}", span, label)
    what = "a condition" if previous.type in _CONDITION_BEFORE else "an expression"
    after = " ".join(COMMENT.sub(" ", str(previous)).split())  # `not   in` -> `not in`
    end = previous.end_pos + offset
    return error(
        "syntax",
        f"expected {what} after `{after}`, found `{text}`",
        source.span(end, end),
        label or f"`{text}` is a keyword, not a value",
    )


_CHARACTER_HINTS = {
    "&": ("`&&` is written `and`", "write `and`"),
    "|": ("`||` is written `or`", "write `or`"),
    "!": ("`!` is written `not`", "write `not` (and `!=` for not equal)"),
}


_CLOSING = {"(": ")", "[": "]", "{": "}"}


def _with_open_bracket(source: Source, offset: int, end: int, found: Diagnostic) -> Diagnostic:
    """`found`, with a note naming the bracket that is never closed, when the fault is on a
    later line than that bracket (`let nordic = ["SE", "NO"` and the next declaration)."""
    text = masked(source.text[offset:end])
    fault = found.span.start - offset
    opened: list[int] = []
    unclosed: int | None = None
    for i, ch in enumerate(text):
        if ch in _CLOSING:
            opened.append(i)
        elif ch in _CLOSING.values() and opened and _CLOSING[text[opened[-1]]] == ch:
            opened.pop()
        if i == fault - 1 and opened:
            unclosed = opened[-1]
    if (
        not found.message.startswith("unexpected end of")  # a declaration that runs out
        or unclosed is None
        or unclosed not in opened
        or "\n" not in text[unclosed:fault]
    ):
        return found  # none open at the fault, closed later after all, or on the fault's line
    at = source.span(offset + unclosed, offset + unclosed + 1)
    note = f"the `{text[unclosed]}` opened at {at.line}:{at.column} is never closed"
    return replace(found, notes=(*found.notes, note))


def syntax_error(source: Source, exc: UnexpectedInput, offset: int, end_of_text: int) -> Diagnostic:
    """A Lark error in the text starting at `offset` as a diagnostic on the whole file."""
    if isinstance(exc, UnexpectedToken):
        found = _unexpected_token(source, exc, offset, end_of_text)
        return _with_open_bracket(source, offset, end_of_text, found)
    last = len(source.text[:end_of_text].rstrip())
    if isinstance(exc, UnexpectedCharacters):
        pos = (exc.pos_in_stream or 0) + offset
        ch = source.text[pos] if pos < len(source.text) else ""
        span = source.span(pos, pos + 1)
        if ch == '"':
            return error(
                "syntax", 'unterminated string: a string ends with `"` on the same line', span
            )
        if ch == "'":
            return error(
                "syntax", "unexpected `'`: strings take double quotes", span, 'write "text"'
            )
        if ch in _CHARACTER_HINTS:
            message, label = _CHARACTER_HINTS[ch]
            width = 2 if source.text[pos : pos + 2] in ("&&", "||") else 1
            return error("syntax", message, source.span(pos, pos + width), label)
        shown = f"`{ch}`" if ch.isprintable() and ch.strip() else f"U+{ord(ch):04X}"
        allowed = set(exc.allowed or ())
        if len(allowed) > 6:  # what the lexer could read here, not what the rule needs: no help
            return error("syntax", f"unexpected character {shown}", span)
        expected = _expected_text(allowed)
        return error("syntax", f"unexpected character {shown}; expected {expected}", span)
    if isinstance(exc, UnexpectedEOF):
        expected = _expected_text(set(exc.expected))
        return error(
            "syntax", f"unexpected end of file; expected {expected}", source.span(last, last)
        )
    return error("syntax", str(exc).splitlines()[0], source.span(offset, offset))


# Known mistakes, labelled by example (after lark's examples/advanced/error_reporting_lalr.py).
# Grown from what marketers actually write.
PARSE_EXAMPLES: dict[str, list[str]] = {
    "a rule needs `then` before its steps": [
        'rule r when e send email "t" end',
        'rule r when e if contact.x send email "t" end',
        'rule r when e where e.x > 1 send email "t" end',
        'rule r when e tehn send email "t" end',  # a word where `then` goes
    ],
    "every rule and test ends with `end`": [
        'rule r when e then send email "t"',
    ],
    "compare with `==`, not `=`": [
        "rule r when e if contact.x = 1 then end",
        "rule r when e where e.x = 1 then end",
        "segment s = contact.x = 1",
    ],
    "strings take double quotes": [
        "rule r when e then send email 't' end",
    ],
    "a rule has no `else`: write a second rule with the opposite condition": [
        'rule r when e if contact.x then send email "t" else send sms "t" end',
    ],
    # A test's lines: examples with and without a line before (the parser's stack differs).
    'write `audience add "<name>"` or `audience remove "<name>"`': [
        'test "t" expect c1 audience "a" end',
        'test "t" expect audience "a" end',
        'test "t" expect no email expect c1 audience "a" end',
        'test "t" expect no email expect audience "a" end',
    ],
    "to check the contact, write `expect <contact> has <condition>`": [
        'test "t" expect c1 contact.score == 1 end',
        'test "t" expect no email expect c1 contact.score == 1 end',
    ],
    "a `(` is still open": [
        "rule r when e if (contact.x == 1 then end",
    ],
    "to set the score, add the difference: `score += N` or `score -= N`": [
        "rule r when e then score = 1 end",
    ],
}


def _example_label(exc: UnexpectedToken) -> str:
    try:
        label = exc.match_examples(lark_parser().parse, PARSE_EXAMPLES, use_accepts=True)
    except Exception:  # a failed match is never the user's problem
        return ""
    return str(label) if label else ""


def glued_error(source: Source, glued: GluedKeyword, text: str, offset: int) -> Diagnostic:
    token = glued.token
    keyword = str(token)
    begin = token.start_pos or 0
    word = text[begin : glued.end]
    rest = word[len(keyword) :]
    keywords = set(keyword_texts().values())
    if word in keywords:  # `not` read as `no` + `t`: a keyword out of place, not glued
        return _keyword_out_of_place(source, word, text, offset, begin)
    best = did_you_mean(word, keywords)
    if len(rest) <= 2 and rest not in keywords and best is not None and best.startswith(keyword):
        return error(  # a keyword mistyped: `oncee`, `limits`
            "syntax",
            f"unexpected `{word}` (did you mean `{best}`?)",
            source.span(offset + begin, offset + glued.end),
        )
    return error(  # a space left out: `stopif`, `sendemail`, `andevent`
        "syntax",
        f"unexpected `{word}` (did you mean `{keyword} {rest}`?)",
        source.span(offset + begin, offset + glued.end),
        f"`{keyword}` is a keyword: a space must follow it",
    )


def _keyword_out_of_place(
    source: Source, word: str, text: str, offset: int, begin: int
) -> Diagnostic:
    """`not folowed by`: the start of a keyword of several words, misspelt after it."""
    end = begin + len(word)
    meant = _multi_word_hint(word, text[end : end + 40], set(_MULTI_WORD))
    if meant is not None:
        words = meant.count(" ")
        phrase = re.match(rf"\S+(?:[ \t]+\S+){{{words}}}", text[begin:])
        stop = begin + (phrase.end() if phrase else len(word))
        written = " ".join(text[begin:stop].split())
        return error(
            "syntax",
            f"unexpected `{written}` (did you mean `{meant}`?)",
            source.span(offset + begin, offset + stop),
        )
    return error("syntax", f"unexpected `{word}`", source.span(offset + begin, offset + end))


def too_deep(source: Source, at: int) -> Diagnostic:
    return error(
        "too-deep",
        "this declaration's expressions are too long or nest too deeply to read",
        source.span(at, at),
        "split them: smaller conditions, `let` constants or segments",
    )
