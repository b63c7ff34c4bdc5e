"""Parse + check never raise: on arbitrary text, on token soup, on mutated valid files and on
generated well-formed rules. Every diagnostic they give has a known code and renders."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nudge.dsl import ast
from nudge.dsl.check import check
from nudge.dsl.codes import CODES
from nudge.dsl.parse import parse
from nudge.dsl.render import render_json, render_texts
from nudge.dsl.source import Source

ROOT = Path(__file__).resolve().parents[3]
VALID = [
    p.read_text(encoding="utf-8")
    for p in [
        *sorted((ROOT / "rules").glob("*.rules")),
        *sorted(Path(__file__).parent.glob("*.rules")),
    ]
]

_VOCABULARY = """
rule when then end if let segment event contact policy test given at expect has no
send email sms webhook best audience add remove show in set unset score emit
wait stop exit on limit per once quiet hours priority goal within followed by
not and or is null true false now count as where inactive for entered left
lower upper len days_since hours_since string number bool time list object
cart_updated order_completed cart value cart_id vip nordic x c1 e
"""
WORDS = re.findall(r"\S+", _VOCABULARY)
SYMBOLS = [*'{}()[]:,.=<>+-*/"', "==", "!=", "<=", ">=", "+=", "-=", "#"]
LITERALS = ['"k1"', "12", "4.5", "30s", "2h", "7d", "21:00", "2026-11-20T10:00:00Z", "0", "0d"]


def run(*texts: str) -> None:
    sources = [Source(f"f{i}.rules", text) for i, text in enumerate(texts)]
    files = []
    diagnostics = []
    for source in sources:
        rule_file, syntax = parse(source)
        files.append(rule_file)
        diagnostics += syntax
    checked = check(ast.Ruleset(tuple(files)))
    places = [(d.span.path, d.span.start, d.message) for d in checked.diagnostics]
    assert len(places) == len(set(places))
    keys = [d.span.sort_key() for d in checked.diagnostics]
    assert keys == sorted(keys)
    for d in [*diagnostics, *checked.diagnostics]:
        assert d.code in CODES
        assert d.severity is CODES[d.code].severity
    by_path = {s.path: s for s in sources}
    render_texts([*diagnostics, *checked.diagnostics], by_path)
    render_json(checked.diagnostics)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    run(text)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(WORDS), st.sampled_from(SYMBOLS), st.sampled_from(LITERALS)),
        max_size=60,
    ),
    st.randoms(use_true_random=False),
)
def test_token_soup(tokens: list[str], rnd: object) -> None:
    import random

    assert isinstance(rnd, random.Random)
    text = "".join(t + rnd.choice([" ", " ", "\n", "\n    "]) for t in tokens)
    run(text)


def mutate(text: str, rnd: object, steps: int) -> str:
    import random

    assert isinstance(rnd, random.Random)
    lines = text.split("\n")
    for _ in range(steps):
        kind = rnd.randrange(6)
        i = rnd.randrange(len(lines))
        words = lines[i].split(" ")
        if kind == 0 and len(lines) > 1:
            del lines[i]
        elif kind == 1:
            lines.insert(rnd.randrange(len(lines)), lines[i])
        elif kind == 2 and words:
            del words[rnd.randrange(len(words))]
            lines[i] = " ".join(words)
        elif kind == 3:
            words.insert(rnd.randrange(len(words) + 1), rnd.choice(WORDS + SYMBOLS + LITERALS))
            lines[i] = " ".join(words)
        elif kind == 4 and len(words) > 1:
            a, b = rnd.randrange(len(words)), rnd.randrange(len(words))
            words[a], words[b] = words[b], words[a]
            lines[i] = " ".join(words)
        elif kind == 5 and words:
            words[rnd.randrange(len(words))] = rnd.choice(WORDS + LITERALS)
            lines[i] = " ".join(words)
    return "\n".join(lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.randoms(use_true_random=False), st.integers(1, 8))
def test_mutated_valid_files(text: str, rnd: object, steps: int) -> None:
    run(mutate(text, rnd, steps), VALID[0])


# ------------------------------------------------------------------------ generated rules

NAMES = ["cart", "e", "event", "contact", "nordic", "order_completed", "cart_updated", "x"]
FIELDS = ["value", "cart_id", "email", "score", "stage", "items", "nope", "last_seen"]


def paths() -> st.SearchStrategy[str]:
    return st.builds(
        lambda head, rest: ".".join([head, *rest]),
        st.sampled_from(NAMES),
        st.lists(st.sampled_from(FIELDS), max_size=2),
    )


def expressions() -> st.SearchStrategy[str]:
    leaves = st.one_of(
        paths(),
        st.sampled_from(
            [
                '"SE"',
                "1",
                "2.5",
                "true",
                "false",
                "null",
                "now",
                "30d",
                "[1, 2]",
                '["SE"]',
                "{a: 1}",
            ]
        ),
    )

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.builds(
            lambda a, op, b: f"({a}) {op} ({b})",
            inner,
            st.sampled_from(["+", "-", "*", "/", "and", "or"]),
            inner,
        )
        compare = st.builds(
            lambda a, op, b: f"({a}) {op} ({b})",
            inner,
            st.sampled_from(
                ["==", "!=", "<", ">=", "in", "not in", "contains", "startswith", "matches"]
            ),
            inner,
        )
        return st.one_of(
            binary,
            compare,
            inner.map(lambda a: f"not ({a})"),
            inner.map(lambda a: f"-({a})"),
            inner.map(lambda a: f"({a}) is null"),
            st.builds(
                lambda f, args: f"{f}({', '.join(args)})",
                st.sampled_from(["lower", "upper", "len", "days_since", "hours_since", "lenght"]),
                st.lists(inner, max_size=2),
            ),
            inner.map(lambda a: f"count(cart_updated where {a} within 1d)"),
            st.sampled_from(["contact in vip", "contact not in vipp"]),
            st.lists(inner, max_size=3).map(lambda xs: f"[{', '.join(xs)}]"),
        )

    return st.recursive(leaves, extend, max_leaves=8)


EXPRESSIONS = expressions()


TRIGGERS = [
    "cart_updated as cart where {c}",
    "cart_updated as cart where {c} followed by order_completed where {c} within 1h",
    "cart_updated as cart not followed by order_completed where {c} within 1h",
    "3 cart_updated where {c} within 1d",
    "inactive for 30d",
    "entered vip",
]
STEPS = [
    'send email "t" with {{ a: {v} }}',
    'send sms "t" to {v}',
    "set contact.email = {v}",
    "score += {v}",
    "emit cart_updated {{ value: {v} }}",
    "wait 1h",
    "stop if {c}",
    'audience add "a"',
]


@st.composite
def rule_files(draw: st.DrawFn) -> str:
    header = draw(
        st.sampled_from(
            [
                "",
                "event cart_updated { cart_id: string, value: number, items: list }\n"
                "event order_completed { cart_id: string, value: number }\n"
                "contact { email: string, country: string, consent_email: bool }\n",
            ]
        )
    )
    lets = 'let nordic = ["SE", "NO"]\nsegment vip = ' + draw(EXPRESSIONS) + "\n"
    trigger = draw(st.sampled_from(TRIGGERS)).format(c=draw(EXPRESSIONS))
    steps = [
        draw(st.sampled_from(STEPS)).format(v=draw(EXPRESSIONS), c=draw(EXPRESSIONS))
        for _ in range(draw(st.integers(0, 4)))
    ]
    clauses = draw(
        st.lists(
            st.sampled_from(
                [
                    "exit on order_completed where " + draw(EXPRESSIONS),
                    "limit 1 per 1d",
                    "once",
                    "goal order_completed within 7d",
                ]
            ),
            max_size=2,
        )
    )
    condition = draw(EXPRESSIONS)
    body = "\n        ".join(steps)
    tail = "\n    ".join(clauses)
    test = (
        'test "t"\n    given contact c1 { email: "a@example.com" }\n'
        "    at 2026-11-20T10:00:00Z c1 cart_updated { value: 1 }\n"
        f"    expect c1 has {draw(EXPRESSIONS)}\nend\n"
    )
    return (
        f"{header}{lets}\nrule r\n    when {trigger}\n    if {condition}\n    then\n        {body}\n"
        f"    {tail}\nend\n\n{test}"
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_files())
def test_generated_rules(text: str) -> None:
    rule_file, syntax = parse(Source("g.rules", text))
    assert syntax == [], (text, [d.message for d in syntax])
    run(text)
    checked = check(ast.Ruleset((rule_file,)))
    # Every expression of the file has a type in the side table.
    for decl in rule_file.decls:
        if isinstance(decl, ast.Segment):
            assert id(decl.condition) in checked.types


# ------------------------------------------------------------------ well-typed rules compile


def conditions(subject: str, *, segments: bool = True) -> st.SearchStrategy[str]:
    """Well-typed conditions; `subject` is the alias of a cart_updated bound in the scope, or
    empty where no event is (segments, `expect ... has`)."""
    numbers = st.recursive(
        st.sampled_from(
            ["1", "2.5", "contact.score", "len(contact.email)", "count(order_completed within 1d)"]
            + ([f"{subject}.value", f"len({subject}.items)"] if subject else [])
        ),
        lambda inner: st.builds(
            lambda a, op, b: f"({a}) {op} ({b})", inner, st.sampled_from("+-*/"), inner
        ),
        max_leaves=4,
    )
    strings = st.sampled_from(
        ['"SE"', "contact.country", "lower(contact.email)", 'contact.email + "x"']
        + ([f"{subject}.cart_id"] if subject else [])
    )
    leaves = st.one_of(
        st.builds(
            lambda a, op, b: f"{a} {op} {b}",
            numbers,
            st.sampled_from(["<", ">=", "==", "!="]),
            numbers,
        ),
        st.builds(
            lambda a, op, b: f"{a} {op} {b}",
            strings,
            st.sampled_from(["==", "startswith", "contains", "in", "<"]),
            strings,
        ),
        strings.map(lambda s: f"{s} in nordic"),
        strings.map(lambda s: f'{s} matches "^[a-z]+$"'),
        st.sampled_from(
            [
                "contact.consent_email",
                "contact.email is not null",
                "now - contact.signed_up_at > 30d",
                "days_since(contact.signed_up_at) < 3",
                "true",
            ]
            + (["contact in vip", "contact not in vip"] if segments else [])
        ),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(
                lambda a, op, b: f"({a}) {op} ({b})", inner, st.sampled_from(["and", "or"]), inner
            ),
            inner.map(lambda a: f"not ({a})"),
        ),
        max_leaves=5,
    )


RULE_CONDITIONS = conditions("cart")
CONTACT_CONDITIONS = conditions("")
SEGMENT_CONDITIONS = conditions("", segments=False)


@st.composite
def clean_files(draw: st.DrawFn) -> str:
    rule_cond = RULE_CONDITIONS
    contact_cond = CONTACT_CONDITIONS
    steps = draw(
        st.lists(
            st.sampled_from(
                [
                    'send email "t" with {{ a: cart.value, b: {n} }}',
                    'send sms "t" to contact.email',
                    'send best "t"',
                    'send webhook "w" with {{ c: cart.cart_id }}',
                    "set contact.country = lower(cart.cart_id)",
                    "unset contact.country",
                    "score += cart.value",
                    "score -= 1",
                    "emit cart_flagged {{ cart_id: cart.cart_id }}",
                    "wait 1h",
                    "stop if {c}",
                    'audience add "a"',
                    'audience remove "a"',
                    'show "c" in "s"',
                ]
            ),
            min_size=1,
            max_size=5,
        )
    )
    body = "\n        ".join(
        s.format(c=draw(rule_cond), n=draw(st.sampled_from(["1", "cart.value * 2"]))) for s in steps
    )
    if body.split("\n")[-1].strip().startswith("wait"):
        body += "\n        score += 1"
    trigger = draw(
        st.sampled_from(
            [
                "cart_updated as cart where {c}",
                "cart_updated as cart where {c}\n         followed by order_completed where order_completed.cart_id == cart.cart_id within 1h",
                "cart_updated as cart\n         not followed by order_completed where order_completed.value > cart.value within 1h",
                "3 cart_updated as cart where {c} within 1d",
            ]
        )
    ).format(c=draw(rule_cond))
    clauses = draw(
        st.lists(
            st.sampled_from(
                [
                    "limit 2 per 1d",
                    "quiet hours 21:00-08:00",
                    "priority 3",
                    "goal order_completed where order_completed.value > 1 within 7d",
                ]
            ),
            unique=True,
            max_size=3,
        )
    )
    if "wait 1h" in steps:
        clauses.append("exit on order_completed where order_completed.value > 10")
    tail = "".join(f"    {c}\n" for c in clauses)
    return (
        "event cart_updated { cart_id: string, value: number, items: list }\n"
        "event order_completed { cart_id: string, value: number }\n"
        "event cart_flagged { cart_id: string }\n"
        "contact { email: string, country: string, consent_email: bool, signed_up_at: time }\n"
        'let nordic = ["SE", "NO"]\n'
        f"segment vip = {draw(SEGMENT_CONDITIONS)}\n"
        f"rule r\n    when {trigger}\n    if {draw(rule_cond)}\n    then\n        {body}\n{tail}end\n"
        'test "t"\n    given contact c1 { email: "a@example.com", consent_email: true }\n'
        '    at 2026-11-20T10:00:00Z c1 cart_updated { cart_id: "k", value: 1, items: [] }\n'
        f"    expect c1 has {draw(contact_cond)}\nend\n"
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clean_files())
def test_what_checks_clean_compiles(text: str) -> None:
    from nudge.dsl.load import load_sources

    result = load_sources([Source("g.rules", text)])
    assert [(d.code, d.message) for d in result.diagnostics if d.is_error] == [], text
    assert result.ruleset is not None
