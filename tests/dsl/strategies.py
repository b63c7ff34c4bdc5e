"""Hypothesis strategies for random, syntactically valid rule programs.

Programs come as text laid out at random: tokens are separated by spaces, tabs, line breaks,
blank lines and `#` comments (at line ends and on lines of their own), expressions carry their
needed parentheses and some needless ones, strings use every escape, and some files have CRLF
line breaks. Every program parses without errors; names are random, so the checker may well
reject them (which is what "never raises" tests want).

    from tests.dsl.strategies import rule_files, expressions

    @given(rule_files())
    def test_never_raises(text: str) -> None: ...

Public strategies: `names`, `string_literals`, `expressions`, `declarations`, `rule_files`
(all text), and `rule_file_trees` (a parsed `RuleFile`).
"""

from __future__ import annotations

from functools import cache

from hypothesis import strategies as st

from nudge.dsl import ast
from nudge.dsl.parse import parse
from nudge.dsl.source import Source

__all__ = [
    "declarations",
    "expressions",
    "names",
    "rule_file_trees",
    "rule_files",
    "string_literals",
]

Tokens = tuple[str, ...]
Expr = tuple[Tokens, int]  # tokens, and how tightly the expression binds (see below)

# Binding strength, weakest first; an operand weaker than its position needs parentheses.
OR, AND, NOT, COMPARE, SUM, PRODUCT, UNARY, ATOM = range(1, 9)

RESERVED = frozenset(
    (  # noqa: SIM905 (one word list reads better than sixty quoted lines)
        "add and as at audience by contact contains count emit end endswith entered event exit "
        "expect false followed for given goal has hours if in inactive is left let limit matches "
        "no not now null on once or per policy priority quiet remove rule score segment send set "
        "show startswith stop test then to true unset wait when where with within"
    ).split()
)
UNITS = "smhdw"
TYPES = ("string", "number", "bool", "time", "list", "object")
KINDS = ("email", "sms", "webhook", "audience_add", "audience_remove", "show")
COMPARE_OPS = (
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not in",
    "contains",
    "startswith",
    "endswith",
    "matches",
)


# ----------------------------------------------------------------------------- tokens


_FIRST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_REST = _FIRST + "0123456789"


@cache
def names() -> st.SearchStrategy[str]:
    """Identifiers that are no keyword."""
    return (
        st.tuples(st.sampled_from(_FIRST), st.text(_REST, max_size=7))
        .map("".join)
        .filter(lambda n: n not in RESERVED)
    )


_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",)) | st.sampled_from('"\\#\n\t\r {}'), max_size=12
)


@cache
@st.composite
def string_literals(draw: st.DrawFn) -> str:
    """A double-quoted string token, each character written one of the ways it may be."""
    value = draw(_TEXT)
    out = ['"']
    for ch in value:
        ways = {
            '"': ['\\"', "\\u0022"],
            "\\": ["\\\\"],
            "\n": ["\\n", "\\u000a"],
            "\t": ["\\t", "\t"],
            "\r": ["\\r"],
            "/": ["/", "\\/"],
        }.get(ch, [ch] + ([f"\\u{ord(ch):04X}"] if ord(ch) <= 0xFFFF else []))
        out.append(draw(st.sampled_from(ways)))
    out.append('"')
    return "".join(out)


@cache
def _numbers() -> st.SearchStrategy[str]:
    whole = st.integers(0, 10**12).map(str)
    fraction = st.floats(0, 1e12, allow_nan=False, allow_infinity=False).map(repr)
    written = st.tuples(st.integers(0, 999), st.integers(0, 99)).map(lambda p: f"{p[0]}.{p[1]:02d}")
    exponent = st.tuples(st.integers(1, 9), st.sampled_from(["e", "E"]), st.integers(-30, 30)).map(
        lambda p: f"{p[0]}{p[1]}{p[2]}"
    )
    return whole | fraction | written | exponent


@cache
def _durations() -> st.SearchStrategy[str]:
    return st.tuples(st.integers(0, 500), st.sampled_from(UNITS)).map(lambda p: f"{p[0]}{p[1]}")


@cache
def _times() -> st.SearchStrategy[str]:
    return st.tuples(st.integers(0, 23), st.integers(0, 59), st.booleans()).map(
        lambda p: f"{p[0]:02d}:{p[1]:02d}" if p[2] else f"{p[0]}:{p[1]:02d}"
    )


@cache
def _timestamps() -> st.SearchStrategy[str]:
    return st.tuples(
        st.integers(2000, 2099),
        st.integers(1, 12),
        st.integers(1, 28),
        st.integers(0, 23),
        st.integers(0, 59),
        st.sampled_from(["Z", "+01:00", "-0530", ":00Z", ":30.5+02:00"]),
    ).map(lambda p: f"{p[0]}-{p[1]:02d}-{p[2]:02d}T{p[3]:02d}:{p[4]:02d}{p[5]}")


@cache
def _paths() -> st.SearchStrategy[str]:
    return st.lists(names(), min_size=1, max_size=3).map(".".join) | names().map(
        lambda n: "contact." + n
    )


# ----------------------------------------------------------------------------- expressions

_EXTRA_PARENS = st.sampled_from([False, False, False, False, True])


def _operand(e: Expr, least: int, extra: bool) -> Tokens:
    tokens, strength = e
    return ("(", *tokens, ")") if strength < least or extra else tokens


@cache
def _atoms() -> st.SearchStrategy[Expr]:
    literal = st.one_of(
        _numbers(),
        string_literals(),
        _durations(),
        st.sampled_from(["true", "false", "null", "now"]),
        _paths(),
    ).map(lambda t: ((t,), ATOM))
    empty = st.sampled_from([(("[", "]"), ATOM), (("{", "}"), ATOM)])
    segment = st.tuples(st.sampled_from(["in", "not in"]), names()).map(
        lambda p: (("contact", p[0], p[1]), COMPARE)
    )
    return literal | empty | segment


@cache
def _keys() -> st.SearchStrategy[str]:
    return names() | st.sampled_from(sorted(RESERVED)) | string_literals()


def _extend(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    def binary(p: tuple[str, Expr, Expr, bool, bool]) -> Expr:
        op, left, right, extra_left, extra_right = p
        if op in ("or", "and"):
            strength = OR if op == "or" else AND
            least = (strength, strength + 1)
        elif op in ("+", "-", "*", "/"):
            strength = SUM if op in "+-" else PRODUCT
            least = (strength, strength + 1)
        else:
            strength, least = COMPARE, (SUM, SUM)
        tokens = (
            *_operand(left, least[0], extra_left),
            op,
            *_operand(right, least[1], extra_right),
        )
        return tokens, strength

    ops = st.sampled_from(["or", "and", "+", "-", "*", "/", *COMPARE_OPS])
    binaries = st.tuples(ops, children, children, _EXTRA_PARENS, _EXTRA_PARENS).map(binary)
    nots = st.tuples(children, _EXTRA_PARENS).map(
        lambda p: (("not", *_operand(p[0], NOT, p[1])), NOT)
    )
    negations = st.tuples(children, _EXTRA_PARENS).map(
        lambda p: (("-", *_operand(p[0], UNARY, p[1])), UNARY)
    )
    nulls = st.tuples(children, st.sampled_from(["is null", "is not null"]), _EXTRA_PARENS).map(
        lambda p: ((*_operand(p[0], SUM, p[2]), p[1]), COMPARE)
    )

    def listing(items: list[Tokens], trailing: bool) -> Tokens:
        out: list[str] = []
        for k, item in enumerate(items):
            out.extend([*item, ","] if k < len(items) - 1 or trailing else item)
        return tuple(out)

    calls = st.tuples(names(), st.lists(children, max_size=3)).map(
        lambda p: ((p[0], "(", *listing([c[0] for c in p[1]], False), ")"), ATOM)
    )
    counts = st.tuples(names(), st.none() | children, _durations()).map(
        lambda p: (
            ("count", "(", p[0], *(("where", *p[1][0]) if p[1] else ()), "within", p[2], ")"),
            ATOM,
        )
    )
    lists = st.tuples(st.lists(children, min_size=1, max_size=4), st.booleans()).map(
        lambda p: (("[", *listing([c[0] for c in p[0]], p[1]), "]"), ATOM)
    )
    objects = st.tuples(
        st.lists(st.tuples(_keys(), children), min_size=1, max_size=4), st.booleans()
    ).map(lambda p: (("{", *listing([(k, ":", *v[0]) for k, v in p[0]], p[1]), "}"), ATOM))
    parens = children.map(lambda e: (("(", *e[0], ")"), ATOM))
    return st.one_of(binaries, nots, negations, nulls, calls, counts, lists, objects, parens)


@cache
def _expressions(max_leaves: int = 12) -> st.SearchStrategy[Tokens]:
    return st.recursive(_atoms(), _extend, max_leaves=max_leaves).map(lambda e: e[0])


@cache
def expressions(max_leaves: int = 12) -> st.SearchStrategy[str]:
    """One expression as text, tokens separated by single spaces."""
    return _expressions(max_leaves).map(" ".join)


@cache
def _objects() -> st.SearchStrategy[Tokens]:
    entry = st.tuples(_keys(), _expressions(6)).map(lambda p: (p[0], ":", *p[1]))
    return st.tuples(st.lists(entry, max_size=4), st.booleans()).map(
        lambda p: (
            "{",
            *[
                t
                for k, e in enumerate(p[0])
                for t in (*e, *([","] if k < len(p[0]) - 1 or p[1] else []))
            ],
            "}",
        )
    )


# ----------------------------------------------------------------------------- declarations


@cache
@st.composite
def _match(draw: st.DrawFn) -> Tokens:
    tokens: list[str] = [draw(names())]
    if draw(st.booleans()):
        tokens += ["as", draw(names())]
    if draw(st.booleans()):
        tokens += ["where", *draw(_expressions())]
    return tuple(tokens)


@cache
@st.composite
def _trigger(draw: st.DrawFn) -> Tokens:
    kind = draw(st.sampled_from(["on", "followed", "not followed", "repeated", "inactive", "seg"]))
    if kind == "on":
        return draw(_match())
    if kind in ("followed", "not followed"):
        return (*draw(_match()), f"{kind} by", *draw(_match()), "within", draw(_durations()))
    if kind == "repeated":
        return (str(draw(st.integers(0, 99))), *draw(_match()), "within", draw(_durations()))
    if kind == "inactive":
        return ("inactive", "for", draw(_durations()))
    return (draw(st.sampled_from(["entered", "left"])), draw(names()))


@cache
@st.composite
def _step(draw: st.DrawFn) -> Tokens:
    kind = draw(st.integers(0, 10))
    if kind <= 2:
        channel = draw(st.sampled_from(["email", "sms", "webhook", "best"]) | names())
        tokens: list[str] = ["send", channel, draw(string_literals())]
        if draw(st.booleans()):
            tokens += ["to", *draw(_expressions(4))]
        if draw(st.booleans()):
            tokens += ["with", *draw(_objects())]
        return tuple(tokens)
    if kind == 3:
        return ("audience", draw(st.sampled_from(["add", "remove"])), draw(string_literals()))
    if kind == 4:
        return ("show", draw(string_literals()), "in", draw(string_literals()))
    if kind == 5:
        return ("set", "contact", ".", draw(names()), "=", *draw(_expressions()))
    if kind == 6:
        return ("unset", "contact", ".", draw(names()))
    if kind == 7:
        return ("score", draw(st.sampled_from(["+=", "-="])), *draw(_expressions(4)))
    if kind == 8:
        data = draw(st.none() | _objects())
        return ("emit", draw(names()), *(data or ()))
    if kind == 9:
        return ("wait", draw(_durations()))
    return ("stop", "if", *draw(_expressions()))


@cache
@st.composite
def _clause(draw: st.DrawFn) -> Tokens:
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return ("exit", "on", *draw(_match()))
    if kind == 1:
        return ("limit", str(draw(st.integers(0, 99))), "per", draw(_durations()))
    if kind == 2:
        return draw(st.sampled_from([("limit", "once"), ("once",)]))
    if kind == 3:
        return ("quiet", "hours", draw(_times()), "-", draw(_times()))
    if kind == 4:
        return ("no", "quiet", "hours")
    if kind == 5:
        number = str(draw(st.integers(0, 99)))
        return ("priority", *(("-", number) if draw(st.booleans()) else (number,)))
    return ("goal", *draw(_match()), "within", draw(_durations()))


@cache
@st.composite
def _rule(draw: st.DrawFn) -> Tokens:
    tokens: list[str] = ["rule", draw(names())]
    if draw(st.booleans()):
        tokens.append(draw(string_literals()))
    tokens += ["when", *draw(_trigger())]
    if draw(st.booleans()):
        tokens += ["if", *draw(_expressions())]
    tokens.append("then")
    for step in draw(st.lists(_step(), max_size=4)):
        tokens += step
    for clause in draw(st.lists(_clause(), max_size=3)):
        tokens += clause
    tokens.append("end")
    return tuple(tokens)


@cache
def _refs() -> st.SearchStrategy[str]:
    return names() | string_literals()


@cache
@st.composite
def _test_item(draw: st.DrawFn) -> Tokens:
    kind = draw(st.integers(0, 3))
    data: Tokens = draw(st.none() | _objects()) or ()
    if kind == 0:
        return ("given", "contact", draw(_refs()), *data)
    if kind == 1:
        return ("at", draw(_timestamps()), draw(_refs()), draw(names()), *data)
    at: Tokens = ("at", draw(_timestamps())) if draw(st.booleans()) else ()
    if kind == 2:
        tokens: list[str] = ["expect", *(["no"] if draw(st.booleans()) else []), *at]
        if draw(st.booleans()):
            tokens.append(draw(_refs()))
        tokens.append(draw(st.sampled_from(KINDS)))
        if draw(st.booleans()):
            tokens.append(draw(string_literals()))
        if data:
            tokens += ["with", *data]
        return tuple(tokens)
    return ("expect", *at, draw(_refs()), "has", *draw(_expressions()))


@cache
@st.composite
def _test(draw: st.DrawFn) -> Tokens:
    tokens: list[str] = ["test", draw(string_literals())]
    for item in draw(st.lists(_test_item(), max_size=4)):
        tokens += item
    return (*tokens, "end")


@cache
@st.composite
def _schema(draw: st.DrawFn) -> Tokens:
    head: Tokens = ("event", draw(names())) if draw(st.booleans()) else ("contact",)
    fields = draw(st.lists(st.tuples(names(), st.sampled_from(TYPES) | names()), max_size=5))
    body: list[str] = []
    for k, (name, type_name) in enumerate(fields):
        body += [name, ":", type_name]
        if k < len(fields) - 1 or draw(st.booleans()):
            body.append(",")
    return (*head, "{", *body, "}")


@cache
@st.composite
def _declaration(draw: st.DrawFn) -> Tokens:
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return draw(_schema())
    if kind == 1:
        return ("let", draw(names()), "=", *draw(_expressions()))
    if kind == 2:
        return ("segment", draw(names()), "=", *draw(_expressions()))
    if kind == 3:
        channel = draw(names())
        return (
            "policy",
            channel,
            "limit",
            str(draw(st.integers(0, 99))),
            "per",
            draw(_durations()),
        )
    if kind == 4:
        return ("policy", "quiet", "hours", draw(_times()), "-", draw(_times()))
    if kind == 5:
        return draw(_test())
    return draw(_rule())


@cache
def declarations() -> st.SearchStrategy[str]:
    """One top-level declaration as text, tokens separated by single spaces."""
    return _declaration().map(" ".join)


# ----------------------------------------------------------------------------- layout

_COMMENT_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")) | st.sampled_from('#"\\ '),
    max_size=15,
)


@cache
@st.composite
def _separator(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 19))
    if kind < 12:
        return " "
    if kind < 15:
        return draw(st.sampled_from(["\n", "\n    ", "\n        ", "  ", "\t", "\n\n", "\n\n\n  "]))
    comment = "#" + draw(_COMMENT_TEXT)
    if kind < 18:
        return f"  {comment}\n    "  # at the end of a line
    return f"\n{draw(st.sampled_from(['', '    ', '  ']))}{comment}\n"  # on its own line


@cache
@st.composite
def rule_files(draw: st.DrawFn, max_decls: int = 5) -> str:
    """A whole file: declarations laid out at random, with comments anywhere a space may go."""
    decls = draw(st.lists(_declaration(), max_size=max_decls))
    tokens = [t for decl in decls for t in decl]
    parts: list[str] = []
    if draw(st.booleans()):
        parts.append("#" + draw(_COMMENT_TEXT) + "\n")
    for k, token in enumerate(tokens):
        if k:
            parts.append(draw(_separator()))
        parts.append(token)
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["\n", "  ", "\n\n"])) + "#" + draw(_COMMENT_TEXT))
    text = "".join(parts) + draw(st.sampled_from(["", "\n", "\n\n"]))
    if draw(st.integers(0, 9)) == 0:
        text = text.replace("\n", "\r\n")
    return text


@cache
def rule_file_trees(max_decls: int = 5) -> st.SearchStrategy[ast.RuleFile]:
    """The syntax tree of a random file (`rule_files`), parsed."""

    def tree(text: str) -> ast.RuleFile:
        rule_file, diagnostics = parse(Source("random.rules", text))
        assert not diagnostics, (text, diagnostics)
        return rule_file

    return rule_files(max_decls).map(tree)
