"""Text to syntax tree: `parse(source) -> (RuleFile, diagnostics)`.

Lark LALR with positions; a `v_args(meta=True)` transformer builds `ast` nodes. No Lark type leaves
this module. Parsing never raises for bad input: a syntax error becomes a diagnostic, and parsing
resumes at the next top-level declaration so that one run reports every broken declaration.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.lexer import PatternStr
from lark.tree import Meta

from . import ast
from .diagnostics import Diagnostic, did_you_mean, error, or_list
from .source import Source, Span

__all__ = ["parse", "parse_expression"]

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


@cache
def _parser(strict: bool = True) -> Lark:
    """The parser. `strict=False` lets a keyword start a path (`x > limit`), as the grammar's
    HEAD terminal does not: see `_parse_text` for when that one is used.

    Every keyword token it lexes is noted (`_LEXED_KEYWORDS`): where no name may come, the
    contextual lexer takes `send` out of `sendemail` and goes on with `email`, and only the text
    after the keyword tells that it ran into the next word (`_glued`)."""
    grammar = _grammar()
    if not strict:
        grammar, found = _HEAD_TERMINAL.subn(r"HEAD: /[A-Za-z_][A-Za-z0-9_]*/", grammar)
        assert found == 1, "grammar.lark defines HEAD on one line"
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        cache=False,
        lexer_callbacks=dict.fromkeys(_keyword_terminals(), _note_keyword),
    )


def _grammar() -> str:
    return (Path(__file__).parent / "grammar.lark").read_text(encoding="utf-8")


@cache
def _keyword_terminals() -> tuple[str, ...]:
    """The names of the grammar's keyword terminals (`SEND`, `NO`, ...), from a plain build."""
    plain = Lark(_grammar(), parser="lalr", lexer="contextual", cache=False)
    return tuple(
        t.name
        for t in plain.terminals
        if isinstance(t.pattern, PatternStr) and t.pattern.value.isalpha()
    )


# Keyword tokens of the parse under way (`_parse_text` empties it first).
_LEXED_KEYWORDS: list[Token] = []
_WORD_CHAR = re.compile(r"\w")


def _note_keyword(token: Token) -> Token:
    _LEXED_KEYWORDS.append(token)
    return token


class _GluedKeyword(Exception):
    """A keyword run into the word after it (`sendemail`, `oncee`): `word` spans both."""

    def __init__(self, token: Token, end: int) -> None:
        super().__init__(str(token))
        self.token = token
        self.end = end


_HEAD_TERMINAL = re.compile(r"^HEAD: .*$", re.MULTILINE)


# ---------------------------------------------------------------------------- transformer


_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_COMMENT = re.compile(r"#[^\n]*")
_INT64 = range(-(2**63), 2**63)


def _unquote(text: str) -> str:
    body = text[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "/": "/"}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and _HEX4.fullmatch(body, i + 2, i + 6):
                code = int(body[i + 2 : i + 6], 16)
                i += 6
                if 0xD800 <= code < 0xDC00:  # a surrogate pair, as JSON writes 😀: \ud83d\ude00
                    low = _HEX4.fullmatch(body, i + 2, i + 6) if body[i : i + 2] == "\\u" else None
                    low_code = int(low.group(), 16) if low is not None else 0
                    if 0xDC00 <= low_code < 0xE000:
                        code = 0x10000 + ((code - 0xD800) << 10) + (low_code - 0xDC00)
                        i += 6
                if 0xD800 <= code < 0xE000:  # half a pair: no character; JSON out cannot hold it
                    code = 0xFFFD
                out.append(chr(code))
                continue
            out.append(escapes.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class _Build(Transformer[Token, Any]):
    """Lark tree -> ast nodes. Method names are the grammar's `->` aliases."""

    def __init__(self, source: Source, offset: int = 0) -> None:
        super().__init__()
        self.source = source
        self.offset = offset  # where the parsed text starts in the file

    # ------------------------------------------------------------------ helpers
    def _span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return self.source.span(self.offset, self.offset)
        return self.source.span(meta.start_pos + self.offset, meta.end_pos + self.offset)

    def _tok(self, token: Token) -> Span:
        start = (token.start_pos or 0) + self.offset
        end = token.end_pos + self.offset if token.end_pos is not None else start + len(token)
        return self.source.span(start, end)

    def _string(self, token: Token) -> ast.Literal:
        return ast.Literal(_unquote(str(token)), self._tok(token))

    # ------------------------------------------------------------------ basics
    @v_args(meta=True)
    def name(self, meta: Meta, children: list[Token]) -> ast.Name:
        return ast.Name(str(children[0]), self._span(meta))

    @v_args(meta=True)
    def digit_name(self, meta: Meta, children: list[Token]) -> ast.Name:
        return ast.Name(str(children[0]), self._span(meta))

    @v_args(meta=True)
    def head(self, meta: Meta, children: list[Token]) -> ast.Name:
        return ast.Name(str(children[0]), self._span(meta))

    @v_args(meta=True)
    def duration(self, meta: Meta, children: list[Token]) -> ast.Duration:
        text = str(children[0])
        return ast.Duration(int(text[:-1]), text[-1], self._span(meta))

    @v_args(meta=True)
    def time_of_day(self, meta: Meta, children: list[Token]) -> ast.TimeOfDay:
        hour, minute = str(children[0]).split(":")
        return ast.TimeOfDay(int(hour), int(minute), self._span(meta))

    @v_args(meta=True)
    def timestamp(self, meta: Meta, children: list[Token]) -> ast.Timestamp:
        return ast.Timestamp(str(children[0]), self._span(meta))

    # ------------------------------------------------------------------ file
    @v_args(meta=True)
    def start(self, meta: Meta, children: list[Any]) -> ast.RuleFile:
        return ast.RuleFile(
            self.source.path, tuple(children), self.source.span(0, len(self.source.text))
        )

    # ------------------------------------------------------------------ declarations
    @v_args(meta=True)
    def field(self, meta: Meta, children: list[Any]) -> ast.Field:
        return ast.Field(children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def event_schema(self, meta: Meta, children: list[Any]) -> ast.EventSchema:
        return ast.EventSchema(
            children[0], tuple(c for c in children[1:] if c is not None), self._span(meta)
        )

    @v_args(meta=True)
    def contact_schema(self, meta: Meta, children: list[Any]) -> ast.ContactSchema:
        return ast.ContactSchema(tuple(c for c in children if c is not None), self._span(meta))

    @v_args(meta=True)
    def let_decl(self, meta: Meta, children: list[Any]) -> ast.Let:
        return ast.Let(children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def segment_decl(self, meta: Meta, children: list[Any]) -> ast.Segment:
        return ast.Segment(children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def channel_policy(self, meta: Meta, children: list[Any]) -> ast.ChannelPolicy:
        return ast.ChannelPolicy(children[0], int(children[1]), children[2], self._span(meta))

    @v_args(meta=True)
    def quiet_policy(self, meta: Meta, children: list[Any]) -> ast.QuietPolicy:
        return ast.QuietPolicy(children[0], children[1], self._span(meta))

    # ------------------------------------------------------------------ rules
    @v_args(meta=True)
    def rule(self, meta: Meta, children: list[Any]) -> ast.Rule:
        name, title, trigger, condition, *rest = children
        steps = tuple(
            c
            for c in rest
            if not isinstance(c, ast.ExitOn | ast.Limit | ast.QuietHours | ast.Priority | ast.Goal)
        )
        clauses = tuple(
            c
            for c in rest
            if isinstance(c, ast.ExitOn | ast.Limit | ast.QuietHours | ast.Priority | ast.Goal)
        )
        return ast.Rule(
            name,
            _unquote(str(title)) if title is not None else None,
            trigger,
            condition,
            steps,
            clauses,
            self._span(meta),
        )

    def condition(self, children: list[Any]) -> Any:
        return children[0]

    @v_args(meta=True)
    def match(self, meta: Meta, children: list[Any]) -> ast.EventMatch:
        return ast.EventMatch(children[0], children[1], children[2], self._span(meta))

    @v_args(meta=True)
    def on_event(self, meta: Meta, children: list[Any]) -> ast.OnEvent:
        return ast.OnEvent(children[0], self._span(meta))

    @v_args(meta=True)
    def followed_by(self, meta: Meta, children: list[Any]) -> ast.FollowedBy:
        return ast.FollowedBy(children[0], children[2], children[3], self._span(meta))

    @v_args(meta=True)
    def not_followed_by(self, meta: Meta, children: list[Any]) -> ast.NotFollowedBy:
        return ast.NotFollowedBy(children[0], children[2], children[3], self._span(meta))

    @v_args(meta=True)
    def repeated(self, meta: Meta, children: list[Any]) -> ast.Repeated:
        return ast.Repeated(int(children[0]), children[1], children[2], self._span(meta))

    @v_args(meta=True)
    def inactive(self, meta: Meta, children: list[Any]) -> ast.Inactive:
        return ast.Inactive(children[0], self._span(meta))

    @v_args(meta=True)
    def entered(self, meta: Meta, children: list[Any]) -> ast.SegmentChange:
        return ast.SegmentChange(True, children[0], self._span(meta))

    @v_args(meta=True)
    def left(self, meta: Meta, children: list[Any]) -> ast.SegmentChange:
        return ast.SegmentChange(False, children[0], self._span(meta))

    # ------------------------------------------------------------------ steps
    @v_args(meta=True)
    def send(self, meta: Meta, children: list[Any]) -> ast.Send:
        channel, target, to, data = children
        return ast.Send(channel, self._string(target), to, data, self._span(meta))

    @v_args(meta=True)
    def audience_add(self, meta: Meta, children: list[Any]) -> ast.Audience:
        return ast.Audience(True, self._string(children[0]), self._span(meta))

    @v_args(meta=True)
    def audience_remove(self, meta: Meta, children: list[Any]) -> ast.Audience:
        return ast.Audience(False, self._string(children[0]), self._span(meta))

    @v_args(meta=True)
    def show(self, meta: Meta, children: list[Any]) -> ast.Show:
        return ast.Show(self._string(children[0]), self._string(children[1]), self._span(meta))

    @v_args(meta=True)
    def set_trait(self, meta: Meta, children: list[Any]) -> ast.SetTrait:
        return ast.SetTrait(children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def unset_trait(self, meta: Meta, children: list[Any]) -> ast.UnsetTrait:
        return ast.UnsetTrait(children[0], self._span(meta))

    @v_args(meta=True)
    def score(self, meta: Meta, children: list[Any]) -> ast.Score:
        return ast.Score(str(children[0]), children[1], self._span(meta))

    @v_args(meta=True)
    def emit(self, meta: Meta, children: list[Any]) -> ast.Emit:
        return ast.Emit(children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def wait(self, meta: Meta, children: list[Any]) -> ast.Wait:
        return ast.Wait(children[0], self._span(meta))

    @v_args(meta=True)
    def stop_if(self, meta: Meta, children: list[Any]) -> ast.StopIf:
        return ast.StopIf(children[0], self._span(meta))

    # ------------------------------------------------------------------ clauses
    @v_args(meta=True)
    def exit_on(self, meta: Meta, children: list[Any]) -> ast.ExitOn:
        return ast.ExitOn(children[0], self._span(meta))

    @v_args(meta=True)
    def limit(self, meta: Meta, children: list[Any]) -> ast.Limit:
        return ast.Limit(int(children[0]), children[1], self._span(meta))

    @v_args(meta=True)
    def once(self, meta: Meta, children: list[Any]) -> ast.Limit:
        return ast.Limit(1, None, self._span(meta))

    @v_args(meta=True)
    def quiet_hours(self, meta: Meta, children: list[Any]) -> ast.QuietHours:
        return ast.QuietHours(children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def no_quiet_hours(self, meta: Meta, children: list[Any]) -> ast.QuietHours:
        return ast.QuietHours(None, None, self._span(meta))

    @v_args(meta=True)
    def priority(self, meta: Meta, children: list[Any]) -> ast.Priority:
        return ast.Priority(children[0], self._span(meta))

    def signed_int(self, children: list[Token]) -> int:
        return int(children[0])

    def negative_int(self, children: list[Token]) -> int:
        return -int(children[0])

    @v_args(meta=True)
    def goal(self, meta: Meta, children: list[Any]) -> ast.Goal:
        return ast.Goal(children[0], children[1], self._span(meta))

    # ------------------------------------------------------------------ tests
    @v_args(meta=True)
    def test(self, meta: Meta, children: list[Any]) -> ast.Test:
        return ast.Test(self._string(children[0]), tuple(children[1:]), self._span(meta))

    @v_args(meta=True)
    def given(self, meta: Meta, children: list[Any]) -> ast.Given:
        return ast.Given(children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def test_event(self, meta: Meta, children: list[Any]) -> ast.TestEvent:
        return ast.TestEvent(children[0], children[1], children[2], children[3], self._span(meta))

    @v_args(meta=True)
    def expect(self, meta: Meta, children: list[Any]) -> ast.Expect:
        negated, at, ref, kind, target, data = children
        return ast.Expect(
            negated is not None,
            at,
            ref,
            kind,
            self._string(target) if target is not None else None,
            data,
            self._span(meta),
        )

    @v_args(meta=True)
    def expect_contact(self, meta: Meta, children: list[Any]) -> ast.ExpectContact:
        return ast.ExpectContact(children[0], children[1], children[2], self._span(meta))

    def expect_kind(self, children: list[Any]) -> ast.Name:
        kind = children[0]
        if isinstance(kind, Token):
            return ast.Name(str(kind), self._tok(kind))
        assert isinstance(kind, ast.Name)
        return kind

    @v_args(meta=True)
    def audience_add_kind(self, meta: Meta, children: list[Any]) -> ast.Name:
        return ast.Name("audience_add", self._span(meta))

    @v_args(meta=True)
    def audience_remove_kind(self, meta: Meta, children: list[Any]) -> ast.Name:
        return ast.Name("audience_remove", self._span(meta))

    def at(self, children: list[Any]) -> Any:
        return children[0]

    def ref(self, children: list[Any]) -> Any:
        return children[0]

    def ref_string(self, children: list[Token]) -> ast.Name:
        token = children[0]
        return ast.Name(_unquote(str(token)), self._tok(token))

    # ------------------------------------------------------------------ expressions
    @v_args(meta=True)
    def or_op(self, meta: Meta, children: list[Any]) -> ast.Logical:
        return ast.Logical("or", children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def and_op(self, meta: Meta, children: list[Any]) -> ast.Logical:
        return ast.Logical("and", children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def not_op(self, meta: Meta, children: list[Any]) -> ast.Unary:
        return ast.Unary("not", children[0], self._span(meta))

    @v_args(meta=True)
    def compare(self, meta: Meta, children: list[Any]) -> ast.Expr:
        left, op_token, right = children
        op = " ".join(_COMMENT.sub(" ", str(op_token)).split())  # `not   in` -> `not in`
        span = self._span(meta)
        if (
            op in ("in", "not in")
            and isinstance(left, ast.Path)
            and len(left.parts) == 1
            and left.head == "contact"
            and isinstance(right, ast.Path)
            and len(right.parts) == 1
        ):
            return ast.InSegment(right.parts[0], op == "not in", span)
        return ast.Compare(op, left, right, span)

    @v_args(meta=True)
    def is_null(self, meta: Meta, children: list[Any]) -> ast.IsNull:
        return ast.IsNull(children[0], False, self._span(meta))

    @v_args(meta=True)
    def is_not_null(self, meta: Meta, children: list[Any]) -> ast.IsNull:
        return ast.IsNull(children[0], True, self._span(meta))

    @v_args(meta=True)
    def binary(self, meta: Meta, children: list[Any]) -> ast.Binary:
        return ast.Binary(str(children[1]), children[0], children[2], self._span(meta))

    @v_args(meta=True)
    def negate(self, meta: Meta, children: list[Any]) -> ast.Expr:
        operand = children[0]
        span = self._span(meta)
        if (
            isinstance(operand, ast.Literal)
            and isinstance(operand.value, int | float)
            and not isinstance(operand.value, bool)
        ):
            return ast.Literal(-operand.value, span)
        return ast.Unary("-", operand, span)

    @v_args(meta=True)
    def now(self, meta: Meta, children: list[Any]) -> ast.Now:
        return ast.Now(self._span(meta))

    @v_args(meta=True)
    def list_expr(self, meta: Meta, children: list[Any]) -> ast.ListExpr:
        return ast.ListExpr(tuple(c for c in children if c is not None), self._span(meta))

    @v_args(meta=True)
    def object_expr(self, meta: Meta, children: list[Any]) -> ast.ObjectExpr:
        return ast.ObjectExpr(tuple(c for c in children if c is not None), self._span(meta))

    @v_args(meta=True)
    def entry(self, meta: Meta, children: list[Any]) -> ast.Entry:
        key = children[0]
        if isinstance(key, Token):
            key = ast.Name(_unquote(str(key)), self._tok(key))
        return ast.Entry(key, children[1], self._span(meta))

    @v_args(meta=True)
    def count(self, meta: Meta, children: list[Any]) -> ast.Count:
        return ast.Count(children[0], children[1], children[2], self._span(meta))

    @v_args(meta=True)
    def call(self, meta: Meta, children: list[Any]) -> ast.Call:
        return ast.Call(
            children[0], tuple(c for c in children[1:] if c is not None), self._span(meta)
        )

    @v_args(meta=True)
    def path(self, meta: Meta, children: list[Any]) -> ast.Path:
        return ast.Path(tuple(children), self._span(meta))

    @v_args(meta=True)
    def string(self, meta: Meta, children: list[Token]) -> ast.Literal:
        return ast.Literal(_unquote(str(children[0])), self._span(meta))

    @v_args(meta=True)
    def number(self, meta: Meta, children: list[Token]) -> ast.Literal:
        text = str(children[0])
        value: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        if type(value) is int and value not in _INT64:  # as arithmetic past 64 bits: a float
            value = float(value)
        return ast.Literal(value, self._span(meta))

    @v_args(meta=True)
    def true(self, meta: Meta, children: list[Any]) -> ast.Literal:
        return ast.Literal(True, self._span(meta))

    @v_args(meta=True)
    def false(self, meta: Meta, children: list[Any]) -> ast.Literal:
        return ast.Literal(False, self._span(meta))

    @v_args(meta=True)
    def null(self, meta: Meta, children: list[Any]) -> ast.Literal:
        return ast.Literal(None, self._span(meta))


# ---------------------------------------------------------------------------- errors

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


@cache
def _keywords() -> dict[str, str]:
    """Keyword terminal name -> its text (`WHEN` -> `when`)."""
    return {
        t.name: t.pattern.value
        for t in _parser().terminals
        if isinstance(t.pattern, PatternStr) and t.pattern.value.isalpha()
    }


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


def _unexpected_token(
    source: Source, exc: UnexpectedToken, offset: int, end_of_text: int
) -> Diagnostic:
    token = exc.token
    expected = set(exc.accepts or exc.expected)
    label = _example_label(exc)
    if token.type == "$END":
        last = len(source.text[:end_of_text].rstrip())
        span = source.span(last, last)
        if "END" in expected:
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
    if _is_keyword_operand(exc):
        return _keyword_as_operand(source, exc, offset, label)
    cut_short = _cut_short(source, exc, offset, expected, label)
    if cut_short is not None:
        return cut_short
    if token.type in ("NAME", "HEAD") or text in _keywords().values():
        words = {_keywords()[t] for t in expected if t in _keywords()}
        best = did_you_mean(text, words) if text not in words else None
        if best is not None:
            return error("syntax", f"unexpected `{text}` (did you mean `{best}`?)", span, label)
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
    before = _STRING_OR_COMMENT.sub(_blank_comment, source.text[offset:at]).rstrip()
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
    after = " ".join(_COMMENT.sub(" ", str(previous)).split())  # `not   in` -> `not in`
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


def _syntax_error(
    source: Source, exc: UnexpectedInput, offset: int, end_of_text: int
) -> Diagnostic:
    """A Lark error in the text starting at `offset` as a diagnostic on the whole file."""
    if isinstance(exc, UnexpectedToken):
        return _unexpected_token(source, exc, offset, end_of_text)
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
        shown = repr(ch) if ch.strip() == "" else f"`{ch}`"
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
        label = exc.match_examples(_parser().parse, PARSE_EXAMPLES, use_accepts=True)
    except Exception:  # a failed match is never the user's problem
        return ""
    return str(label) if label else ""


# ---------------------------------------------------------------------------- entry points


# A line that starts a top-level declaration at column 1: where a broken file is cut into pieces.
_DECL_START = re.compile(
    r"^(?:(?:rule|let|segment|policy|test)\b|event\s+\w+\s*\{|contact\s*\{)", re.MULTILINE
)


_LINE_WORD = re.compile(r"^([A-Za-z_]\w*)", re.MULTILINE)
_DECL_WORDS = frozenset({"rule", "let", "segment", "policy", "test", "event", "contact"})


def _pieces(text: str) -> list[tuple[int, int]]:
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


_BLANK_OR_COMMENTS = re.compile(r"(?:\s|#[^\n]*)*")


def _parse_text(text: str) -> Tree[Token]:
    """Parse with the strict grammar, where no keyword starts a path, so that `then` after an
    unfinished `where e.x ==` is an error at the condition and not the operand it lacks.

    Constants named like keywords are refused by the checker, not the parser (`let limit = 1`
    and `x > limit` still compile): when the strict parse stops at a keyword operand, the text is
    parsed again with keywords allowed there. If that fails too, the strict error is the one to
    report when the second parse stopped right after the keyword (it read `then` as the value and
    then found the steps); else the keyword was meant as a value, and the fault is further on.
    """
    _LEXED_KEYWORDS.clear()
    try:
        tree = _parser().parse(text)
    except UnexpectedToken as strict:
        _raise_glued(text, strict)
        if not _is_keyword_operand(strict):
            raise
        _LEXED_KEYWORDS.clear()
        try:
            tree = _parser(strict=False).parse(text)
        except UnexpectedInput as loose:
            _raise_glued(text, loose)
            after_keyword = _BLANK_OR_COMMENTS.match(text, strict.token.end_pos or 0)
            stopped_at = len(text) if _at_end(loose) else loose.pos_in_stream
            if after_keyword is not None and after_keyword.end() == stopped_at:
                raise strict from None
            raise
    except UnexpectedInput as exc:
        _raise_glued(text, exc)
        raise
    _raise_glued(text, None)
    return tree


def _raise_glued(text: str, failure: UnexpectedInput | None) -> None:
    """Raise `_GluedKeyword` for the first keyword the parse lexed that runs into the next word,
    if it comes before where the parse failed (the cause, then)."""
    stop = len(text) if failure is None or _at_end(failure) else failure.pos_in_stream
    for token in _LEXED_KEYWORDS:
        end = token.end_pos
        if end is None or (token.start_pos or 0) > (stop or 0):
            break
        if end < len(text) and _WORD_CHAR.match(text, end):
            word_end = re.compile(r"\w*").match(text, end)
            raise _GluedKeyword(token, word_end.end() if word_end else end)


def _at_end(exc: UnexpectedInput) -> bool:
    return isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    )


def _is_keyword_operand(exc: UnexpectedToken) -> bool:
    """A keyword (`then`) where a value must come (after `==`, `and`, `where`, ...)."""
    return exc.token.type in _keywords() and "HEAD" in set(exc.accepts or exc.expected)


def _parse_piece(source: Source, start: int, end: int) -> tuple[list[ast.Decl], Diagnostic | None]:
    text = source.text[start:end]
    try:
        tree = _parse_text(text)
        rule_file: ast.RuleFile = _Build(source, start).transform(tree)
    except UnexpectedInput as exc:
        return [], _syntax_error(source, exc, start, end)
    except _GluedKeyword as glued:
        return [], _glued_error(source, glued, text, start)
    except VisitError as exc:
        if isinstance(exc.orig_exc, RecursionError):
            return [], _too_deep(source, start)
        raise
    except RecursionError:
        return [], _too_deep(source, start)
    return list(rule_file.decls), None


def _glued_error(source: Source, glued: _GluedKeyword, text: str, offset: int) -> Diagnostic:
    token = glued.token
    keyword = str(token)
    begin = token.start_pos or 0
    word = text[begin : glued.end]
    rest = word[len(keyword) :]
    keywords = set(_keywords().values())
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


_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')


def _comments(source: Source) -> tuple[ast.Comment, ...]:
    """Every `#` comment outside strings, in order (the lexer drops them; the formatter needs them)."""
    return tuple(
        ast.Comment(m.group()[1:], source.span(m.start(), m.end()))
        for m in _STRING_OR_COMMENT.finditer(source.text)
        if m.group().startswith("#")
    )


# The words that start a line of a rule's body (steps, clauses, `end`) or of a test.
_STATEMENT_WORDS = frozenset(
    {
        "send", "audience", "show", "set", "unset", "score", "emit", "wait", "stop",
        "exit", "limit", "once", "quiet", "no", "priority", "goal", "end",
        "given", "at", "expect",
    }
)  # fmt: skip
_FIRST_WORD = re.compile(r"[ \t]*([A-Za-z_]\w*)")
_THEN = re.compile(r"\bthen\b")
# A statement alone, in a declaration of its own: does it parse without its context?
_ALONE = {"rule": "rule r__ when e__ then\n{}\nend\n", "test": 'test "t__"\n{}\nend\n'}
_IF_ALONE = "rule r__ when e__\n{}\nthen\nend\n"
_WHEN_ALONE = "rule r__\n{}\nthen\nend\n"
# Words a statement starts with (the rest are continuation lines).
_STATEMENT_STARTS = _STATEMENT_WORDS | {"when", "if", "then", "rule", "test"}
_MAX_RECOVERIES = 16


def _blank_comment(found: re.Match[str]) -> str:
    """A comment as spaces, a string as it is (for `_STRING_OR_COMMENT.sub`)."""
    text = found.group()
    return " " * len(text) if text.startswith("#") else text


def _masked(text: str) -> str:
    """`text` with strings and comments blanked (same length), for finding keywords."""
    return _STRING_OR_COMMENT.sub(lambda m: " " * len(m.group()), text)


def _body_start(text: str, start: int, end: int) -> tuple[str, int] | None:
    """(`rule` or `test`, where the lines of its body start) for the declaration in
    `text[start:end]`: a rule's steps and clauses come on the lines after its `then`, a test's
    lines after its first. None for other declarations, or a rule without `then`."""
    kind = _FIRST_WORD.match(text, start)
    if kind is None or kind.group(1) not in _ALONE:
        return None
    head = kind.group(1)
    if head == "rule":
        found = _THEN.search(_masked(text[start:end]))
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
                word.group(1) not in _keywords().values()
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
        return _Statement(at, _statement_end(text, at, end, _STATEMENT_WORDS), _ALONE[body[0]])
    head = _FIRST_WORD.match(text, start)
    if head is None or head.group(1) != "rule" or word not in ("if", "when"):
        return None
    stop = _statement_end(text, at, end, _STATEMENT_WORDS | {"then", "if"})
    then = _THEN.search(_masked(text[at:stop]))
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


def _recover(
    source: Source, start: int, end: int, first: Diagnostic
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
            # statement above: if that one is whole without it, the line is the fault alone.
            if (
                statement.start < line
                and not text[line:at].strip()
                and not _is_fault(text, replace(statement, stop=line))
            ):
                statement = replace(statement, start=line)
        if statement is None or not _is_fault(text, statement):
            break
        fixed = _respelt(text, problem)
        if fixed is not None:  # `sned` for `send`: read the line on as meant, for its other errors
            retry, retry_problem = _parse_piece(Source(source.path, fixed), start, end)
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
        decls, problem_or_none = _parse_piece(Source(source.path, text), start, end)
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
            word.group(1) in _STATEMENT_STARTS
            or (  # a misspelt one (`tehn`) starts a statement too
                word.group(1) not in _keywords().values()
                and did_you_mean(word.group(1), _STATEMENT_STARTS) is not None
            )
        ):
            return line
        previous = text.rfind("\n", start, line - 1) + 1
        line = max(previous, start)
    return line


def _parses(text: str) -> bool:
    try:
        _parse_text(text)
    except (UnexpectedInput, _GluedKeyword, RecursionError):
        return False
    return True


def parse(source: Source) -> tuple[ast.RuleFile, list[Diagnostic]]:
    """Parse one file. Always returns a `RuleFile` (of the declarations that parsed) and the
    syntax diagnostics; never raises for any input text.

    A file with a syntax error is cut into its top-level declarations (at lines starting with
    `rule`, `let`, `event ... {`, ...) and each is parsed on its own, so one run reports the first
    error of every broken declaration and keeps the good ones. Within a rule's steps and clauses
    and a test's lines, a broken statement is set aside and the declaration parsed on
    (`_recover`): its later errors are reported too, and the rest of it is kept for the
    checker. A declaration kept so holds a syntax error: it is never compiled.
    """
    whole = source.span(0, len(source.text))
    comments = _comments(source)
    decls, problem = _parse_piece(source, 0, len(source.text))
    if problem is None:
        return ast.RuleFile(source.path, tuple(decls), whole, comments), []
    diagnostics: list[Diagnostic] = []
    kept: list[ast.Decl] = []
    for start, end in _pieces(source.text):
        piece_decls, piece_problem = _parse_piece(source, start, end)
        if piece_problem is not None:
            diagnostics.append(piece_problem)
            piece_decls, more = _recover(source, start, end, piece_problem)
            diagnostics.extend(more)
        kept.extend(piece_decls)
    if not diagnostics:  # the pieces parse alone but not together: report the whole-file error
        diagnostics.append(problem)
    return ast.RuleFile(source.path, tuple(kept), whole, comments), diagnostics


def _too_deep(source: Source, at: int) -> Diagnostic:
    return error(
        "too-deep", "this declaration nests expressions too deeply to read", source.span(at, at)
    )


def parse_expression(
    text: str, path: str = "<expression>"
) -> tuple[ast.Expr | None, list[Diagnostic]]:
    """Parse a lone expression (used by tools and tests): wraps it in a `let`."""
    prefix = "let __expr__ = "
    source = Source(path, prefix + text)
    rule_file, diagnostics = parse(source)
    for decl in rule_file.decls:
        if isinstance(decl, ast.Let):
            return decl.value, diagnostics
    return None, diagnostics
