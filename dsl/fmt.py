"""The canonical layout of `.rules` files: `format_source(source) -> str | list[Diagnostic]`.

One layout, whatever the input's; formatting never changes meaning (`parse(fmt(x)) == parse(x)`,
comments kept in order) and is idempotent (`fmt(fmt(x)) == fmt(x)`). docs/formatting.md shows
the same rules with examples.

Layout
- Lines hold at most 100 columns where a break is possible; indentation is 4 spaces.
- Top level: a `rule` or `test`, or a declaration printed on several lines, has a blank line
  before and after it. One-line declarations (`event`, `contact`, `let`, `segment`, `policy`)
  that were on consecutive lines stay together; several blank lines become one. No blank line
  starts the file; it ends with one line break.
- A rule: `rule name "title"`; then, at 4 spaces, `when`, `if`, `then`; steps at 8 spaces; then
  the clauses (`exit on`, `limit`/`once`, `quiet hours`, `priority`, `goal`) at 4, in the order
  written; `end` at column 1. `limit once` is printed `once`. Blank lines inside are dropped.
- A `followed by` / `not followed by` trigger that does not fit (or has a comment between its
  events) is broken before `followed by`, aligned under the first event.
- An `and`/`or` chain that does not fit, or has a comment between its operands, is broken before
  each `and`/`or`, aligned under its first operand; an operand that still does not fit is broken
  the same way (an `and` chain inside an `or` chain, or a chain inside parentheses).
- A list, object or schema that does not fit, or holds a comment, is written one item per line,
  4 spaces deeper than the line that opens it, each item followed by a comma, the closing
  bracket on its own line. Otherwise `[1, 2]`, `{ k: v, k2: v2 }`, `{}`, `[]`.
- Expressions carry the fewest parentheses that keep the tree: `or` < `and` < `not` <
  comparisons < `+ -` < `* /` < unary `-`; `a - (b - c)` keeps its parentheses,
  `(a - b) - c` loses them. One exception, for the eye: a minus sign is never followed by
  another, so `-(-x)`.
- Strings take double quotes with `\\"`, `\\\\`, `\\n`, `\\t`, `\\r` and `\\uXXXX` (other
  non-printable characters) escapes; object keys and test contact names that are not plain
  names are quoted (contact names that are keywords too). Whole numbers print as whole numbers,
  others as Python's shortest round-tripping form (`4.5`, `1e+16`); durations as amount and
  unit (`90m` stays `90m`); times of day as `HH:MM`.
- Comments stay with the line they were on or above. A comment alone on its line goes above the
  line it preceded, at that line's indentation (inside a closing `end`, `}` or `]`, at the body's);
  a comment at the end of a line stays at the end of the line holding the code it followed. When
  lines are joined, all but the last such comment move above the joined line, in order.
  End-of-line comments on consecutive lines are aligned, two spaces past the longest code.
  Comment text is kept as written, less trailing spaces.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from . import ast
from .diagnostics import Diagnostic, error
from .parse import parse
from .source import Source

__all__ = ["LINE_LIMIT", "FormatError", "format_file", "format_source"]

LINE_LIMIT = 100
INDENT = 4

# Every word the grammar reserves somewhere; a test contact named like one is quoted.
KEYWORDS = frozenset(
    (  # noqa: SIM905 (one word list reads better than sixty quoted lines)
        "add and as at audience by contact contains count emit end endswith entered event exit "
        "expect false followed for given goal has hours if in inactive is left let limit matches "
        "no not now null on once or per policy priority quiet remove rule score segment send set "
        "show startswith stop test then to true unset wait when where with within"
    ).split()
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


class FormatError(RuntimeError):
    """The formatter produced text that means something else: a bug in the formatter, never a
    mistake in the rules. The file is left as it was."""


def format_source(source: Source) -> str | list[Diagnostic]:
    """The canonical text of `source`, or its syntax errors (a broken file is not formatted;
    nor is one nesting expressions so deeply that the formatter cannot follow).

    Raises `FormatError` if the result would not parse back to the same rules and comments.
    """
    rule_file, diagnostics = parse(source)
    whole = source.span(0, len(source.text))
    errors = [d for d in diagnostics if d.is_error]
    if errors:
        return errors
    try:
        text = format_file(rule_file, source)
    except RecursionError:  # nesting the parser still took, but deeper than Python's stack here
        return [error("too-deep", "this file nests expressions too deeply to format", whole)]
    again, problems = parse(Source(source.path, text))
    if problems or again != rule_file or _comment_texts(again) != _comment_texts(rule_file):
        raise FormatError(f"{source.path}: formatting would change the rules; file left as is")
    return text


def format_file(rule_file: ast.RuleFile, source: Source) -> str:
    """The canonical text of a file that parsed without errors (`source` is its text)."""
    return _Printer(source, rule_file.comments).file(rule_file)


def _comment_texts(rule_file: ast.RuleFile) -> list[str]:
    return [c.text.rstrip() for c in rule_file.comments]


# ----------------------------------------------------------------------------- expressions

# Binding strength: an operand weaker than its position needs parentheses.
_OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _UNARY, _ATOM = range(1, 9)
_LOGICAL = {"or": _OR, "and": _AND}
_BINARY = {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT}

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def quote(value: str) -> str:
    """A string literal that reads back as `value`."""
    out: list[str] = []
    for ch in value:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code <= 0xFFFF and (not ch.isprintable() or 0xD800 <= code <= 0xDFFF):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):  # only an overflowing literal such as 1e999 reads as infinity
        return "1e999" if value > 0 else "-1e999"
    return repr(value)


def _literal(value: str | int | float | bool | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value)
    return _number(value)


def _key(name: ast.Name) -> str:
    return name.value if _NAME.fullmatch(name.value) else quote(name.value)


def _ref(name: ast.Name) -> str:
    """A test's contact name: bare when it reads back as the same name."""
    bare = _NAME.fullmatch(name.value) and name.value not in KEYWORDS
    return name.value if bare else quote(name.value)


def _duration(d: ast.Duration) -> str:
    return f"{d.amount}{d.unit}"


def _time(t: ast.TimeOfDay) -> str:
    return f"{t.hour:02d}:{t.minute:02d}"


def _prec(e: ast.Expr) -> int:
    if isinstance(e, ast.Logical):
        return _LOGICAL[e.op]
    if isinstance(e, ast.Unary):
        return _NOT if e.op == "not" else _UNARY
    if isinstance(e, ast.Compare | ast.IsNull | ast.InSegment):
        return _COMPARE
    if isinstance(e, ast.Binary):
        return _BINARY[e.op]
    if isinstance(e, ast.Literal) and not isinstance(e.value, bool | str | None) and e.value < 0:
        return _UNARY  # `-5` is a negation in the grammar
    return _ATOM


def expr(e: ast.Expr, min_prec: int = 0) -> str:
    """`e` on one line, in parentheses if it binds more weakly than `min_prec`."""
    text = _expr(e)
    return f"({text})" if _prec(e) < min_prec else text


def _operands(e: ast.Logical | ast.Binary | ast.Compare) -> tuple[int, int]:
    """The least binding strength of the left and the right operand."""
    if isinstance(e, ast.Logical):
        return _LOGICAL[e.op], _LOGICAL[e.op] + 1
    if isinstance(e, ast.Binary):
        return _BINARY[e.op], _BINARY[e.op] + 1
    return _SUM, _SUM  # comparisons do not chain


def _expr(e: ast.Expr) -> str:
    match e:
        case ast.Literal(value=value):
            return _literal(value)
        case ast.Duration():
            return _duration(e)
        case ast.Now():
            return "now"
        case ast.Path():
            return e.dotted
        case ast.ListExpr(items=items):
            return "[" + ", ".join(expr(i) for i in items) + "]"
        case ast.ObjectExpr(entries=entries):
            if not entries:
                return "{}"
            return "{ " + ", ".join(f"{_key(x.key)}: {expr(x.value)}" for x in entries) + " }"
        case ast.Unary(op="not", operand=operand):
            return "not " + expr(operand, _NOT)
        case ast.Unary(operand=operand):
            inner = expr(operand, _UNARY)
            return f"-({inner})" if inner.startswith("-") else "-" + inner  # never `--x`
        case ast.Binary() | ast.Compare() | ast.Logical():
            left, right = _operands(e)
            return f"{expr(e.left, left)} {e.op} {expr(e.right, right)}"
        case ast.IsNull(operand=operand, negated=negated):
            return expr(operand, _SUM) + (" is not null" if negated else " is null")
        case ast.InSegment(segment=segment, negated=negated):
            return f"contact {'not in' if negated else 'in'} {segment.value}"
        case ast.Call(name=name, args=args):
            return f"{name.value}(" + ", ".join(expr(a) for a in args) + ")"
        case ast.Count(event=event, where=where, within=within):
            cond = f" where {expr(where)}" if where is not None else ""
            return f"count({event.value}{cond} within {_duration(within)})"
    raise TypeError(f"not an expression: {e!r}")  # pragma: no cover


# ----------------------------------------------------------------------------- lines


@dataclass(slots=True)
class _Line:
    """One output line, and where its code came from in the source, for placing comments.

    `start` is at most the offset of the line's last code character and past the previous
    line's; `end` is at least the offset of its first code character and at most past its last.
    An end-of-line comment goes to the last line starting at or before the code it followed;
    a comment alone on its line goes above the first line ending after it.
    """

    text: str
    start: int
    end: int
    indent: int
    comment_indent: int | None = None  # for comments above it, when not `indent`
    decl: int = -1  # the index of the declaration this line opens


class _Run:
    """A line being built; a block (an expression laid out) may spill it onto further lines."""

    def __init__(self, indent: int, start: int, col: int | None = None) -> None:
        self.lines = [_Line("", start, start, indent)]
        self._first_col = indent if col is None else col  # where the first line's text starts

    @property
    def col(self) -> int:
        last = self.lines[-1]
        return (self._first_col if len(self.lines) == 1 else last.indent) + len(last.text)

    def put(self, text: str, node: ast.Node | None = None) -> _Run:
        """Append text; `node` is what it prints, when all of it is on this line."""
        last = self.lines[-1]
        last.text += text
        if node is not None:
            last.end = max(last.end, node.span.end)
        return self

    def spill(self, block: list[_Line]) -> _Run:
        first, *rest = block
        last = self.lines[-1]
        last.text += first.text
        last.end = max(last.end, first.end)
        self.lines.extend(rest)
        return self


class _Printer:
    def __init__(self, source: Source, comments: Sequence[ast.Comment]) -> None:
        self.text = source.text
        self.comments = sorted(comments, key=lambda c: c.span.start)
        self._starts = [c.span.start for c in self.comments]

    # ------------------------------------------------------------------ source queries
    def has_comment(self, start: int, end: int) -> bool:
        """Whether a comment starts in [start, end)."""
        i = bisect.bisect_left(self._starts, start)
        return i < len(self._starts) and self._starts[i] < end

    def _skip(self, pos: int, also: str = "") -> int:
        """The offset of the next code character at or after `pos` (skipping `also` too)."""
        text = self.text
        while pos < len(text):
            ch = text[pos]
            if ch.isspace() or ch in also:
                pos += 1
            elif ch == "#":
                newline = text.find("\n", pos)
                pos = len(text) if newline < 0 else newline
            else:
                break
        return pos

    def _blank_before(self, pos: int) -> bool:
        """Whether a blank line separates `pos` from the code or comment before it."""
        text, newlines = self.text, 0
        while pos > 0 and text[pos - 1].isspace():
            pos -= 1
            newlines += text[pos] == "\n"
        return pos > 0 and newlines >= 2

    # ------------------------------------------------------------------ expressions
    def layout(self, e: ast.Expr, col: int, indent: int, tail: int = 0) -> list[_Line]:
        """`e` starting at column `col` of a line indented `indent`; `tail` columns follow it."""
        flat = expr(e)
        too_long = col + len(flat) + tail > LINE_LIMIT
        if isinstance(e, ast.Logical) and (too_long or self._gap_comment(e)):
            return self._chain(e, col, indent, tail)
        if isinstance(e, ast.ListExpr | ast.ObjectExpr) and (
            too_long or self.has_comment(e.span.start, e.span.end)
        ):
            return self._expand(e, indent)
        if isinstance(e, ast.Compare) and isinstance(e.right, ast.ListExpr | ast.ObjectExpr):
            run = _Run(indent, e.span.start, col).put(f"{expr(e.left, _SUM)} {e.op} ", e.left)
            return run.spill(self.layout(e.right, run.col, indent, tail)).lines
        return [_Line(flat, e.span.start, e.span.end, indent)]

    def _links(self, e: ast.Logical) -> list[ast.Expr]:
        """The operands of a chain of one operator (`a and b and c`), left to right."""
        if isinstance(e.left, ast.Logical) and e.left.op == e.op:
            return [*self._links(e.left), e.right]
        return [e.left, e.right]

    def _gap_comment(self, e: ast.Logical) -> bool:
        links = self._links(e)
        return any(self.has_comment(a.span.end, b.span.start) for a, b in itertools.pairwise(links))

    def _chain(self, e: ast.Logical, col: int, indent: int, tail: int) -> list[_Line]:
        links = self._links(e)
        lines: list[_Line] = []
        for k, link in enumerate(links):
            prefix = "" if k == 0 else e.op + " "
            least = _LOGICAL[e.op] + (k > 0)
            rest = tail if k == len(links) - 1 else 0
            block = self._operand(link, col + len(prefix), indent if k == 0 else col, least, rest)
            if k:
                block[0] = _Line(prefix + block[0].text, link.span.start, block[0].end, col)
            lines.extend(block)
        return lines

    def _operand(self, e: ast.Expr, col: int, indent: int, least: int, tail: int) -> list[_Line]:
        if _prec(e) >= least:
            return self.layout(e, col, indent, tail)
        run = _Run(indent, e.span.start, col).put("(")
        return run.spill(self.layout(e, run.col, indent, tail + 1)).put(")").lines

    def _expand(self, e: ast.ListExpr | ast.ObjectExpr, indent: int) -> list[_Line]:
        inner = indent + INDENT
        opener, closer = ("[", "]") if isinstance(e, ast.ListExpr) else ("{", "}")
        lines = [_Line(opener, e.span.start, e.span.start + 1, indent)]
        items: Sequence[ast.Expr | ast.Entry] = (
            e.items if isinstance(e, ast.ListExpr) else e.entries
        )
        for item in items:
            run = _Run(inner, item.span.start)
            if isinstance(item, ast.Entry):
                run.put(_key(item.key) + ": ", item.key)
            value = item.value if isinstance(item, ast.Entry) else item
            run.spill(self.layout(value, run.col, inner, tail=1)).put(",")
            lines.extend(run.lines)
        lines.append(_Line(closer, e.span.end - 1, e.span.end, indent, comment_indent=inner))
        return lines

    # ------------------------------------------------------------------ declarations
    def file(self, rule_file: ast.RuleFile) -> str:
        lines: list[_Line] = []
        apart: list[bool] = []  # whether each declaration needs blank lines around it
        for index, decl in enumerate(rule_file.decls):
            block = self._decl(decl)
            block[0].decl = index
            apart.append(isinstance(decl, ast.Rule | ast.Test) or len(block) > 1)
            lines.extend(block)
        return self._weave(lines, apart)

    def _decl(self, decl: ast.Decl) -> list[_Line]:
        start = decl.span.start
        match decl:
            case ast.EventSchema(name=name, fields=fields):
                return self._schema(f"event {name.value} ", name.span.end, fields, decl)
            case ast.ContactSchema(fields=fields):
                return self._schema("contact ", start + len("contact"), fields, decl)
            case ast.Let(name=name, value=value) | ast.Segment(name=name, condition=value):
                keyword = "let" if isinstance(decl, ast.Let) else "segment"
                run = _Run(0, start).put(f"{keyword} {name.value} = ", name)
                return run.spill(self.layout(value, run.col, 0)).lines
            case ast.ChannelPolicy(channel=channel, count=count, per=per):
                text = f"policy {channel.value} limit {count} per {_duration(per)}"
                return [_Line(text, start, decl.span.end, 0)]
            case ast.QuietPolicy(start=begin, end=end):
                text = f"policy quiet hours {_time(begin)}-{_time(end)}"
                return [_Line(text, start, decl.span.end, 0)]
            case ast.Rule():
                return self._rule(decl)
            case ast.Test():
                return self._test(decl)
        raise TypeError(f"not a declaration: {decl!r}")  # pragma: no cover

    def _schema(
        self, head: str, body: int, fields: Sequence[ast.Field], decl: ast.Decl
    ) -> list[_Line]:
        """`head { a: t, ... }`; `body` is where the part in braces may start."""
        items = [f"{f.name.value}: {f.type.value}" for f in fields]
        flat = head + ("{ " + ", ".join(items) + " }" if items else "{}")
        if len(flat) <= LINE_LIMIT and not self.has_comment(body, decl.span.end):
            return [_Line(flat, decl.span.start, decl.span.end, 0)]
        lines = [_Line(head + "{", decl.span.start, body, 0)]
        for f, item in zip(fields, items, strict=True):
            lines.append(_Line(item + ",", f.span.start, f.span.end, INDENT))
        lines.append(_Line("}", decl.span.end - 1, decl.span.end, 0, comment_indent=INDENT))
        return lines

    # ------------------------------------------------------------------ rules
    def _rule(self, rule: ast.Rule) -> list[_Line]:
        header = _Run(0, rule.span.start).put(f"rule {rule.name.value}", rule.name)
        if rule.title is not None:
            header.put(" " + quote(rule.title))
            title = _STRING.match(self.text, self._skip(rule.name.span.end))
            if title:
                header.lines[-1].end = title.end()
        lines = header.lines
        lines.extend(self._trigger(rule.trigger))
        if rule.condition is not None:
            run = _Run(INDENT, rule.condition.span.start).put("if ")
            lines.extend(run.spill(self.layout(rule.condition, run.col, INDENT)).lines)
        then = self._skip((rule.condition or rule.trigger).span.end, also=")")
        lines.append(_Line("then", then, then + len("then"), INDENT))
        for step in rule.steps:
            lines.extend(self._step(step))
        for clause in rule.clauses:
            lines.extend(self._clause(clause))
        lines.append(_end(rule))
        return lines

    def _match(self, run: _Run, m: ast.EventMatch, tail: int = 0) -> _Run:
        """`E [as a] [where C]` onto `run`; `tail` columns follow it on its last line."""
        run.put(m.event.value, m.event)
        if m.alias is not None:
            run.put(f" as {m.alias.value}", m.alias)
        if m.where is not None:
            run.put(" where ")
            run.spill(self.layout(m.where, run.col, run.lines[-1].indent, tail))
        return run

    def _trigger(self, trigger: ast.Trigger) -> list[_Line]:
        run = _Run(INDENT, trigger.span.start).put("when ")
        match trigger:
            case ast.OnEvent(match=m):
                self._match(run, m)
            case (
                ast.FollowedBy(first=first, second=second, within=within)
                | ast.NotFollowedBy(first=first, second=second, within=within)
            ):
                word = "followed by " if isinstance(trigger, ast.FollowedBy) else "not followed by "
                align = run.col
                suffix = f" within {_duration(within)}"
                self._match(run, first)
                if len(run.lines) == 1 and not self.has_comment(first.span.end, second.span.start):
                    whole = _Run(INDENT, trigger.span.start).put("when ")
                    self._match(whole, first).put(" " + word)
                    self._match(whole, second, len(suffix)).put(suffix, within)
                    if len(whole.lines) == 1 and whole.col <= LINE_LIMIT:
                        return whole.lines
                second_run = _Run(align, second.span.start).put(word)
                self._match(second_run, second, len(suffix)).put(suffix, within)
                return run.lines + second_run.lines
            case ast.Repeated(count=count, match=m, within=within):
                suffix = f" within {_duration(within)}"
                self._match(run.put(f"{count} "), m, len(suffix)).put(suffix, within)
            case ast.Inactive(duration=duration):
                run.put(f"inactive for {_duration(duration)}", duration)
            case ast.SegmentChange(entered=entered, segment=segment):
                run.put(f"{'entered' if entered else 'left'} {segment.value}", segment)
        return run.lines

    def _step(self, step: ast.Step) -> list[_Line]:
        indent = 2 * INDENT
        run = _Run(indent, step.span.start)
        match step:
            case ast.Send(channel=channel, target=target, to=to, data=data):
                run.put(f"send {channel.value} {quote(str(target.value))}", target)
                if to is not None:
                    run.put(f" to {expr(to)}", to)
                if data is not None:
                    run.put(" with ").spill(self.layout(data, run.col, indent))
            case ast.Audience(add=add, audience=audience):
                run.put(f"audience {'add' if add else 'remove'} {quote(str(audience.value))}", step)
            case ast.Show(content=content, slot=slot):
                run.put(f"show {quote(str(content.value))} in {quote(str(slot.value))}", step)
            case ast.SetTrait(field=field, value=value):
                run.put(f"set contact.{field.value} = ", field)
                run.spill(self.layout(value, run.col, indent))
            case ast.UnsetTrait(field=field):
                run.put(f"unset contact.{field.value}", step)
            case ast.Score(op=op, amount=amount):
                run.put(f"score {op} ").spill(self.layout(amount, run.col, indent))
            case ast.Emit(event=event, data=data):
                run.put(f"emit {event.value}", event)
                if data is not None:
                    run.put(" ").spill(self.layout(data, run.col, indent))
            case ast.Wait(duration=duration):
                run.put(f"wait {_duration(duration)}", step)
            case ast.StopIf(condition=condition):
                run.put("stop if ").spill(self.layout(condition, run.col, indent))
        return run.lines

    def _clause(self, clause: ast.Clause) -> list[_Line]:
        run = _Run(INDENT, clause.span.start)
        match clause:
            case ast.ExitOn(match=m):
                self._match(run.put("exit on "), m)
            case ast.Limit(count=count, per=per):
                run.put("once" if per is None else f"limit {count} per {_duration(per)}", clause)
            case ast.QuietHours(start=begin, end=end):
                quiet = (
                    "no quiet hours"
                    if begin is None or end is None
                    else (f"quiet hours {_time(begin)}-{_time(end)}")
                )
                run.put(quiet, clause)
            case ast.Priority(value=value):
                run.put(f"priority {value}", clause)
            case ast.Goal(match=m, within=within):
                suffix = f" within {_duration(within)}"
                self._match(run.put("goal "), m, len(suffix)).put(suffix, within)
        return run.lines

    # ------------------------------------------------------------------ tests
    def _test(self, test: ast.Test) -> list[_Line]:
        lines = [
            _Line(f"test {quote(str(test.name.value))}", test.span.start, test.name.span.end, 0)
        ]
        for item in test.items:
            run = _Run(INDENT, item.span.start)
            match item:
                case ast.Given(contact=contact, traits=traits):
                    run.put(f"given contact {_ref(contact)}", contact)
                    if traits is not None:
                        run.put(" ").spill(self.layout(traits, run.col, INDENT))
                case ast.TestEvent(at=at, contact=contact, event=event, data=data):
                    run.put(f"at {at.text} {_ref(contact)} {event.value}", event)
                    if data is not None:
                        run.put(" ").spill(self.layout(data, run.col, INDENT))
                case ast.Expect(negated=negated, at=at, contact=contact, kind=kind):
                    run.put("expect" + (" no" if negated else ""))
                    if at is not None:
                        run.put(f" at {at.text}", at)
                    if contact is not None:
                        run.put(f" {_ref(contact)}", contact)
                    run.put(f" {kind.value}", kind)
                    if item.target is not None:
                        run.put(" " + quote(str(item.target.value)), item.target)
                    if item.slot is not None:
                        run.put(" in " + quote(str(item.slot.value)), item.slot)
                    if item.data is not None:
                        run.put(" with ").spill(self.layout(item.data, run.col, INDENT))
                case ast.ExpectContact(at=at, contact=contact, condition=condition):
                    run.put("expect")
                    if at is not None:
                        run.put(f" at {at.text}", at)
                    run.put(f" {_ref(contact)} has ", contact)
                    run.spill(self.layout(condition, run.col, INDENT))
            lines.extend(run.lines)
        lines.append(_end(test))
        return lines

    # ------------------------------------------------------------------ comments and blank lines
    def _weave(self, lines: list[_Line], apart: list[bool]) -> str:
        """The lines as text, with every comment in its place and blank lines between
        declarations."""
        leading, trailing = self._place(lines)
        rows: list[tuple[str, str | None]] = []  # (code or comment line, end-of-line comment)

        def blank(wanted: bool) -> None:
            if wanted and rows and rows[-1][0]:
                rows.append(("", None))

        for i in range(len(lines) + 1):
            line = lines[i] if i < len(lines) else None  # None: after the last line
            top = line is None or line.decl >= 0
            force = (
                line is not None and line.decl > 0 and (apart[line.decl] or apart[line.decl - 1])
            )
            indent = 0
            if line is not None:
                indent = line.indent if line.comment_indent is None else line.comment_indent
            for comment in leading.get(i, []):
                if top:
                    blank(force or self._blank_before(comment.span.start))
                    force = False
                rows.append((" " * indent + "#" + comment.text.rstrip(), None))
            if line is None:
                break
            if top:
                blank(force or self._blank_before(line.start))
            end_comment = trailing.get(i)
            rows.append(
                (
                    " " * line.indent + line.text,
                    "#" + end_comment.text.rstrip() if end_comment else None,
                )
            )
        return _render(rows)

    def _place(
        self, lines: list[_Line]
    ) -> tuple[dict[int, list[ast.Comment]], dict[int, ast.Comment]]:
        """Which line each comment goes above (`leading`) or at the end of (`trailing`)."""
        # Running bounds, so that the searches below hold even if anchors were not monotonic.
        ends: list[int] = []
        for line in lines:
            ends.append(max(line.end, ends[-1]) if ends else line.end)
        starts = [line.start for line in lines]
        for k in range(len(starts) - 2, -1, -1):
            starts[k] = min(starts[k], starts[k + 1])

        slots: list[list[int]] = []  # [line, 0 above | 1 at the end], in comment order
        for comment in self.comments:
            pos = comment.span.start
            line_start = self.text.rfind("\n", 0, pos) + 1
            code = self.text[line_start:pos].rstrip()
            if not code.strip():
                slot = [bisect.bisect_right(ends, pos), 0]
            else:
                last_code = line_start + len(code) - 1
                slot = [max(bisect.bisect_right(starts, last_code) - 1, 0), 1]
            if slots and slot <= slots[-1]:
                # The comment falls inside a line already holding an end-of-line comment (lines
                # were joined): that one moves above the line, so that only the last stays.
                previous = slots[-1]
                wants_end = slot == previous and previous[1] == 1
                previous[1] = 0
                slot = [previous[0], 1 if wants_end else 0]
            slots.append(slot)

        leading: dict[int, list[ast.Comment]] = {}
        trailing: dict[int, ast.Comment] = {}
        for comment, (index, where) in zip(self.comments, slots, strict=True):
            if where:
                trailing[index] = comment
            else:
                leading.setdefault(index, []).append(comment)
        return leading, trailing


def _end(block: ast.Rule | ast.Test) -> _Line:
    return _Line("end", block.span.end - 3, block.span.end, 0, comment_indent=INDENT)


def _render(rows: list[tuple[str, str | None]]) -> str:
    """Join rows, aligning the end-of-line comments of consecutive lines."""
    out: list[str] = []
    i = 0
    while i < len(rows):
        code, comment = rows[i]
        if comment is None:
            out.append(code)
            i += 1
            continue
        j = i
        while j < len(rows) and rows[j][1] is not None:
            j += 1
        column = max(len(c.rstrip()) for c, _ in rows[i:j]) + 2
        out.extend(f"{c.rstrip().ljust(column)}{m}" for c, m in rows[i:j])
        i = j
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n" if out else ""
