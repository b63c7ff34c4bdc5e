"""The formatter's promises over random programs: same meaning, same comments, stable."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from nudge.dsl.fmt import format_source
from nudge.dsl.parse import parse
from nudge.dsl.source import Source
from tests.dsl.strategies import expressions, rule_files

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parsed(text: str) -> tuple[object, list[str]]:
    rule_file, diagnostics = parse(Source("random.rules", text))
    assert not diagnostics, diagnostics
    return rule_file.decls, [c.text.rstrip() for c in rule_file.comments]


def _fmt(text: str) -> str:
    result = format_source(Source("random.rules", text))
    assert isinstance(result, str), result
    return result


@SETTINGS
@given(rule_files())
def test_formatting_keeps_meaning_and_comments(text: str) -> None:
    assert _parsed(_fmt(text)) == _parsed(text)


@SETTINGS
@given(rule_files())
def test_formatting_is_idempotent(text: str) -> None:
    once = _fmt(text)
    assert _fmt(once) == once


@SETTINGS
@given(expressions(max_leaves=20))
def test_expressions_keep_their_tree(text: str) -> None:
    source = f"let x = {text}\n"
    once = _fmt(source)
    assert _parsed(once) == _parsed(source)
    assert _fmt(once) == once
