"""The Lark side of parsing: the LALR parser built from `grammar.lark`, the keyword table, and
`parse_text`, which parses strictly (no keyword starts a path) and again loosely where a constant
is named like a keyword, and raises `GluedKeyword` for a keyword run into the next word.

Every keyword token the contextual lexer produces is noted by a lexer callback: where no name may
come, it takes `send` out of `sendemail` and goes on with `email`; the tokens tell.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

__all__ = [
    "COMMENT",
    "STATEMENT_STARTS",
    "STATEMENT_WORDS",
    "STRING_OR_COMMENT",
    "GluedKeyword",
    "blank_comment",
    "is_keyword_operand",
    "keyword_texts",
    "lark_parser",
    "masked",
    "parse_text",
]


@cache
def lark_parser(strict: bool = True) -> Lark:
    """The parser. `strict=False` lets a keyword start a path (`x > limit`), as the grammar's
    HEAD terminal does not: see `parse_text` for when that one is used.

    Every keyword token it lexes is noted (`_LEXED_KEYWORDS`): where no name may come, the
    contextual lexer takes `send` out of `sendemail` and goes on with `email`, and only the text
    after the keyword tells that it ran into the next word (`_raise_glued`)."""
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


# Keyword tokens of the parse under way (`parse_text` empties it first).
_LEXED_KEYWORDS: list[Token] = []


_WORD_CHAR = re.compile(r"\w")


def _note_keyword(token: Token) -> Token:
    _LEXED_KEYWORDS.append(token)
    return token


class GluedKeyword(Exception):
    """A keyword run into the word after it (`sendemail`, `oncee`): `word` spans both."""

    def __init__(self, token: Token, end: int) -> None:
        super().__init__(str(token))
        self.token = token
        self.end = end


_HEAD_TERMINAL = re.compile(r"^HEAD: .*$", re.MULTILINE)


COMMENT = re.compile(r"#[^\n]*")


@cache
def keyword_texts() -> dict[str, str]:
    """Keyword terminal name -> its text (`WHEN` -> `when`)."""
    return {
        t.name: t.pattern.value
        for t in lark_parser().terminals
        if isinstance(t.pattern, PatternStr) and t.pattern.value.isalpha()
    }


# The words that start a line of a rule's body (steps, clauses, `end`) or of a test.
STATEMENT_WORDS = frozenset(
    {
        "send", "audience", "show", "set", "unset", "score", "emit", "wait", "stop",
        "exit", "limit", "once", "quiet", "no", "priority", "goal", "end",
        "given", "at", "expect",
    }
)  # fmt: skip

# Words a statement starts with (the rest are continuation lines).
STATEMENT_STARTS = STATEMENT_WORDS | {"when", "if", "then", "rule", "test"}


_BLANK_OR_COMMENTS = re.compile(r"(?:\s|#[^\n]*)*")


def parse_text(text: str) -> Tree[Token]:
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
        tree = lark_parser().parse(text)
    except UnexpectedToken as strict:
        _raise_glued(text, strict)
        if not is_keyword_operand(strict):
            raise
        _LEXED_KEYWORDS.clear()
        try:
            tree = lark_parser(strict=False).parse(text)
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
    """Raise `GluedKeyword` for the first keyword the parse lexed that runs into the next word,
    if it comes before where the parse failed (the cause, then)."""
    stop = len(text) if failure is None or _at_end(failure) else failure.pos_in_stream
    for token in _LEXED_KEYWORDS:
        end = token.end_pos
        if end is None or (token.start_pos or 0) > (stop or 0):
            break
        if end < len(text) and _WORD_CHAR.match(text, end):
            word_end = re.compile(r"\w*").match(text, end)
            raise GluedKeyword(token, word_end.end() if word_end else end)


def _at_end(exc: UnexpectedInput) -> bool:
    return isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    )


def is_keyword_operand(exc: UnexpectedToken) -> bool:
    """A keyword (`then`) where a value must come (after `==`, `and`, `where`, ...)."""
    return exc.token.type in keyword_texts() and "HEAD" in set(exc.accepts or exc.expected)


STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')


def blank_comment(found: re.Match[str]) -> str:
    """A comment as spaces, a string as it is (for `STRING_OR_COMMENT.sub`)."""
    text = found.group()
    return " " * len(text) if text.startswith("#") else text


def masked(text: str) -> str:
    """`text` with strings and comments blanked (same length), for finding keywords."""
    return STRING_OR_COMMENT.sub(lambda m: " " * len(m.group()), text)
