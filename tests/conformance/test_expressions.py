"""Expression conformance: every case in `expr_*.json` goes parse -> check -> compile -> evaluate.

A case is data (after cel-python's features/ and OPA's test/cases):

    {"title": "...", "expr": "cart.value > 0",
     "event": {"type": "cart_updated", "as": "cart", "properties": {...}},   (optional)
     "contact": {...}, "now": "2026-11-20T10:00:00Z" or epoch seconds,        (optional)
     "decls": "let nordic = [\"SE\"]",                                         (optional)
     "history": {"order_completed": 3},                                        (optional)
     "want": <value>}         or  "want_approx": <number>

The expression is compiled as the `if` of a rule triggered by the event, so it sees the event by
its type, its alias and `event`. The checker runs too, but its verdict is not the point here:
these cases pin down what the compiled code computes, including for input the checker would
refuse. `history` answers `count(E ...)` with a number per event type.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from nudge.dsl import ast
from nudge.dsl.check import check
from nudge.dsl.compile import compile_ruleset
from nudge.dsl.parse import parse
from nudge.dsl.source import Source

HERE = Path(__file__).parent
DEFAULT_NOW = "2026-11-20T10:00:00Z"


@dataclass
class Ev:
    id: str
    type: str
    contact_id: str
    ts: float
    timestamp: str
    properties: dict[str, Any] = field(default_factory=dict)


class History:
    def __init__(self, counts: dict[str, int], windows: dict[str, str]) -> None:
        self.counts = counts
        self.windows = windows  # window id -> event type

    def count(self, window_id: str, seconds: float, now: float) -> int:
        return self.counts.get(self.windows[window_id], 0)


def _epoch(value: str | float) -> float:
    if isinstance(value, str):
        return datetime.fromisoformat(value).timestamp()
    return float(value)


def _cases() -> list[Any]:
    params = []
    for path in sorted(HERE.glob("expr_*.json")):
        for case in json.loads(path.read_text(encoding="utf-8")):
            params.append(pytest.param(case, id=f"{path.stem}: {case['title']}"))
    return params


def evaluate(case: dict[str, Any]) -> Any:
    event = case.get("event", {})
    etype = event.get("type", "something_happened")
    alias = f" as {event['as']}" if "as" in event else ""
    text = f"{case.get('decls', '')}\nrule conformance\n    when {etype}{alias}\n    if {case['expr']}\n    then\nend\n"
    rule_file, syntax = parse(Source("conformance.rules", text))
    assert not syntax, [d.message for d in syntax]
    plan = compile_ruleset(check(ast.Ruleset((rule_file,))))
    rule = plan.rule("conformance")
    assert rule is not None and rule.condition is not None
    now = _epoch(case.get("now", DEFAULT_NOW))
    ev = Ev("e1", etype, "c1", now, case.get("timestamp", DEFAULT_NOW), event.get("properties", {}))
    windows = {w.id: w.event for w in plan.windows.values()}
    history = History(case.get("history", {}), windows)
    return rule.condition({"event": ev}, case.get("contact", {}), now, history)


@pytest.mark.parametrize("case", _cases())
def test_expression(case: dict[str, Any]) -> None:
    got = evaluate(case)
    if "want_approx" in case:
        assert isinstance(got, float) and math.isclose(got, case["want_approx"], rel_tol=1e-9)
    else:
        want = case["want"]
        assert got == want and type(got) is type(want), f"{case['expr']!r} gave {got!r}"
