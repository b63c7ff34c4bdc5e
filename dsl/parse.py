"""Text to syntax tree: `parse(source) -> (RuleFile, diagnostics)`.

Lark LALR with positions (`grammar`); a `v_args(meta=True)` transformer builds `ast` nodes. No
Lark type leaves the package's parsing modules. Parsing never raises for bad input: a syntax
error becomes a diagnostic (`syntax_errors`), and parsing goes on past it (`recovery`) so that
one run reports every error.
"""

from __future__ import annotations

import math
import re
from typing import Any

from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, VisitError
from lark.tree import Meta

from . import ast
from .diagnostics import Diagnostic
from .grammar import COMMENT, STRING_OR_COMMENT, GluedKeyword, parse_text
from .recovery import pieces, recover
from .source import Source, Span
from .syntax_errors import glued_error, syntax_error, too_deep

__all__ = ["parse", "parse_expression"]


# ---------------------------------------------------------------------------- transformer


_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_LONGEST = 10**18  # a duration amount past 18 digits, as read
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
        digits = text[:-1]
        # past 18 digits, a duration longer than anything (`long-duration` says so); Python
        # refuses to read integers of over 4,300 digits at all
        amount = int(digits) if len(digits.lstrip("0")) <= 18 else _LONGEST
        return ast.Duration(amount, text[-1], self._span(meta))

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
        negated, at, ref, kind, target, slot, data = children
        return ast.Expect(
            negated is not None,
            at,
            ref,
            kind,
            self._string(target) if target is not None else None,
            data,
            self._string(slot) if slot is not None else None,
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
        op = " ".join(COMMENT.sub(" ", str(op_token)).split())  # `not   in` -> `not in`
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
        value: int | float
        if any(c in text for c in ".eE"):
            value = float(text)
        else:  # past 4,300 digits Python reads no integer: past any float anyway
            value = int(text) if len(text.lstrip("0")) <= 4000 else math.inf
        if type(value) is int and value not in _INT64:  # as arithmetic past 64 bits: a float
            try:
                value = float(value)
            except OverflowError:  # past any float: reported by the checker (`bad-number`)
                value = math.inf
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


# ---------------------------------------------------------------------------- entry points


def _parse_piece(source: Source, start: int, end: int) -> tuple[list[ast.Decl], Diagnostic | None]:
    text = source.text[start:end]
    try:
        tree = parse_text(text)
        rule_file: ast.RuleFile = _Build(source, start).transform(tree)
    except UnexpectedInput as exc:
        return [], syntax_error(source, exc, start, end)
    except GluedKeyword as glued:
        return [], glued_error(source, glued, text, start)
    except VisitError as exc:
        if isinstance(exc.orig_exc, RecursionError):
            return [], too_deep(source, start)
        raise
    except RecursionError:
        return [], too_deep(source, start)
    return list(rule_file.decls), None


def _comments(source: Source) -> tuple[ast.Comment, ...]:
    """Every `#` comment outside strings, in order (the lexer drops them; the formatter needs them)."""
    return tuple(
        ast.Comment(m.group()[1:], source.span(m.start(), m.end()))
        for m in STRING_OR_COMMENT.finditer(source.text)
        if m.group().startswith("#")
    )


def parse(source: Source) -> tuple[ast.RuleFile, list[Diagnostic]]:
    """Parse one file. Always returns a `RuleFile` (of the declarations that parsed) and the
    syntax diagnostics; never raises for any input text.

    A file with a syntax error is cut into its top-level declarations (at lines starting with
    `rule`, `let`, `event ... {`, ...) and each is parsed on its own, so one run reports the first
    error of every broken declaration and keeps the good ones. Within a rule's steps and clauses
    and a test's lines, a broken statement is set aside and the declaration parsed on
    (`recover`): its later errors are reported too, and the rest of it is kept for the
    checker. A declaration kept so holds a syntax error: it is never compiled.
    """
    whole = source.span(0, len(source.text))
    comments = _comments(source)
    decls, problem = _parse_piece(source, 0, len(source.text))
    if problem is None:
        return ast.RuleFile(source.path, tuple(decls), whole, comments), []
    diagnostics: list[Diagnostic] = []
    kept: list[ast.Decl] = []
    for start, end in pieces(source.text):
        piece_decls, piece_problem = _parse_piece(source, start, end)
        if piece_problem is not None:
            diagnostics.append(piece_problem)
            piece_decls, more = recover(source, start, end, piece_problem, _parse_piece)
            diagnostics.extend(more)
        kept.extend(piece_decls)
    if not diagnostics:  # the pieces parse alone but not together: report the whole-file error
        diagnostics.append(problem)
    return ast.RuleFile(source.path, tuple(kept), whole, comments), diagnostics


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
