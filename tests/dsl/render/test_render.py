"""Diagnostics as text and JSON."""

from __future__ import annotations

import json

from nudge.dsl.diagnostics import Diagnostic, Severity, error, warning
from nudge.dsl.render import render_json, render_text, render_texts
from nudge.dsl.source import Source

CART = (
    "event cart_updated { cart_id: string, value: number }\n"
    "\n"
    "rule cart\n"
    "    when cart_updated as cart where cart.vaule > 0\n"
    "    then\n"
    "        score += 1\n"
    "end\n"
)


def at(source: Source, text: str, occurrence: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(occurrence + 1):
        start = source.text.index(text, start + 1)
    return start, start + len(text)


def test_the_example_of_the_language_reference() -> None:
    source = Source("rules/cart.rules", CART)
    d = error(
        "unknown-field",
        "unknown field `vaule` on event cart_updated (did you mean `value`?)",
        source.span(*at(source, "vaule")),
    )
    assert render_text(d, source) == (
        "rules/cart.rules:4:42: error: unknown field `vaule` on event cart_updated"
        " (did you mean `value`?) [unknown-field]\n"
        "    when cart_updated as cart where cart.vaule > 0\n"
        "                                         ^^^^^"
    )


def test_label_follows_the_carets_and_notes_follow_the_snippet() -> None:
    source = Source("r.rules", CART)
    d = warning(
        "compare-null",
        "m",
        source.span(*at(source, "cart.vaule > 0")),
        "this label",
        "first note",
        "second note",
    )
    assert render_text(d, source).splitlines()[2:] == [
        "                                    ^^^^^^^^^^^^^^ this label",
        "    note: first note",
        "    note: second note",
    ]
    assert render_text(d, source).startswith("r.rules:4:37: warning: m [compare-null]\n")


def test_a_top_level_line_is_indented_by_four_spaces() -> None:
    source = Source("r.rules", CART)
    d = error("syntax", "m", source.span(*at(source, "cart", 0)))
    assert render_text(d, source).splitlines()[1:] == [
        "    event cart_updated { cart_id: string, value: number }",
        "          ^^^^",
    ]


def test_tabs_are_expanded_and_the_caret_follows() -> None:
    source = Source("r.rules", "rule r\n\twhen\te where\tx > 1\n")
    d = error("unknown-name", "m", source.span(*at(source, "x > 1")))
    lines = render_text(d, source).splitlines()
    assert "\t" not in "".join(lines)
    assert lines[1].index("x > 1") == lines[2].index("^")
    assert lines[2].strip() == "^^^^^"


def test_wide_characters_take_two_columns() -> None:
    source = Source("r.rules", 'let greeting = "日本" + x\n')
    d = error("unknown-name", "m", source.span(*at(source, "x")))
    caret_line = render_text(d, source).splitlines()[2]
    # `let greeting = "` is 16 columns, the two wide characters 4, then `" + ` 4.
    assert caret_line == "    " + " " * 24 + "^"


def test_an_empty_span_gets_one_caret() -> None:
    source = Source("r.rules", "let a =\n")
    d = error("syntax", "m", source.span(7, 7))
    assert render_text(d, source).splitlines()[2] == "    " + " " * 7 + "^"


def test_a_span_over_several_lines_is_underlined_to_the_end_of_its_first_line() -> None:
    source = Source("r.rules", CART)
    start, _ = at(source, "rule cart")
    d = error("no-steps", "m", source.span(start, len(CART)))
    assert render_text(d, source).splitlines()[1:] == ["    rule cart", "    ^^^^^^^^^"]


def test_without_a_source_only_the_first_line_the_label_and_the_notes() -> None:
    d = error("no-such-path", "no such file or folder", Source("rulez", "").span(0, 0))
    d2 = Diagnostic(d.code, d.severity, d.message, d.span, "a label", ("a note",))
    assert render_text(d2, None) == (  # no line and column: it is about the path
        "rulez: error: no such file or folder [no-such-path]\n    a label\n    note: a note"
    )


def test_a_long_line_is_shown_as_a_window_around_its_fault() -> None:
    line = "let x = " + " + ".join(["1"] * 200) + " + oops"
    source = Source("r.rules", line + "\n")
    start = line.index("oops")
    text = render_text(error("syntax", "bad", source.span(start, start + 4)), source)
    shown, carets = text.splitlines()[1:3]
    assert shown.startswith("    …") and len(shown) < 140
    assert shown[carets.index("^") : carets.rindex("^") + 1] == "oops"


def test_several_diagnostics_are_separated_by_a_blank_line() -> None:
    source = Source("r.rules", CART)
    one = error("syntax", "one", source.span(0, 5))
    two = warning("compare-null", "two", source.span(*at(source, "score")))
    text = render_texts([one, two], {"r.rules": source})
    blocks = text.split("\n\n")
    assert len(blocks) == 2 and text.endswith("\n") and not text.endswith("\n\n")
    assert blocks[0].startswith("r.rules:1:1: error: one [syntax]")
    assert blocks[1].startswith("r.rules:6:9: warning: two [compare-null]")
    assert render_texts([], {}) == ""


def test_json_has_every_field() -> None:
    source = Source("r.rules", CART)
    d = Diagnostic(
        "unknown-field",
        Severity.ERROR,
        "unknown field `vaule`",
        source.span(*at(source, "vaule")),
        "did you mean `value`?",
        ("a note",),
    )
    assert json.loads(render_json([d])) == [
        {
            "code": "unknown-field",
            "severity": "error",
            "message": "unknown field `vaule`",
            "path": "r.rules",
            "line": 4,
            "column": 42,
            "end_line": 4,
            "end_column": 47,
            "label": "did you mean `value`?",
            "notes": ["a note"],
        }
    ]
    assert json.loads(render_json([])) == []
