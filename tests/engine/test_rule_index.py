"""Big rulesets look rules up by value (`dispatch.RuleIndex`): the same decisions as running
every rule's `where`, in the same order."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from nudge.dsl import Source, load_sources
from nudge.dsl.plan import RuleSet
from nudge.engine import dispatch
from nudge.engine.engine import Engine
from nudge.engine.events import Event, format_time, parse_time
from nudge.engine.state import ContactState

T = parse_time("2026-11-20T10:00:00Z")

RULES = """
event order_completed { sku: string, qty: number, value: number, note: string }
policy webhook limit 2 per 1d

rule a_sku_p1
    when order_completed where order_completed.sku == "p-1"
    then
        send webhook "a"
        score += 1
end

rule b_sku_p2
    when order_completed as o where o.sku == "p-2" and contact.vip == true
    then
        send webhook "b"
    priority 5
end

rule c_qty_2
    when order_completed where order_completed.qty == 2
    then
        send webhook "c"
end

rule d_qty_half
    when order_completed where 2.5 == order_completed.qty
    then
        score += 2
end

rule e_value_above
    when order_completed where order_completed.value > 100
    then
        send webhook "e"
end

rule f_value_at_least
    when order_completed where order_completed.value >= 100
    then
        score += 3
end

rule g_value_below
    when order_completed where order_completed.value < 10
    then
        send webhook "g"
end

rule h_value_at_most
    when order_completed where order_completed.value <= 10
    then
        score += 4
end

rule i_value_small
    when order_completed where 50 > order_completed.value
    then
        send webhook "i"
    priority 9
end

rule j_unkeyed
    when order_completed where order_completed.note contains "gift"
    then
        send webhook "j"
end

rule k_every
    when order_completed
    if contact.score > 3
    then
        send webhook "k"
end

rule l_sku_p1_too
    when order_completed where order_completed.sku == "p-1" and order_completed.value > 0
    then
        score += 5
end
"""

VALUES: list[Any] = [
    None,
    0,
    2,
    2.0,
    2.5,
    10,
    10.0,
    50,
    99.5,
    100,
    101,
    -3,
    True,
    False,
    "p-1",
    "p-2",
    "p-3",
    "2",
    "1970-01-01T00:00:10Z",
    "1970-01-01T00:01:40Z",
    [1],
    {"a": 1},
]


def ruleset() -> RuleSet:
    loaded = load_sources([Source("big.rules", RULES)])
    assert loaded.ruleset is not None, [str(d) for d in loaded.diagnostics]
    return loaded.ruleset


def run(engine: Engine, events: list[dict[str, Any]]) -> list[Any]:
    state = ContactState("c1")
    state.traits["vip"] = True
    out: list[Any] = []
    for n, props in enumerate(events):
        ts = T + n * 86400
        d = engine.handle(
            Event(f"e{n}", "order_completed", "c1", ts, format_time(ts), props), state, ts
        )
        out.append(([a.to_json() for a in d.actions], d.rule_counts, d.suppressed))
    out.append(state.traits)
    return out


def events() -> list[dict[str, Any]]:
    fields = ("sku", "qty", "value")
    out = [
        {f: v for f, v in zip(fields, combo, strict=True) if v is not None}
        for combo in itertools.product(VALUES[:6] + VALUES[14:19], VALUES[:13], VALUES)
    ]
    out[::7] = [{**e, "note": "a gift"} for e in out[::7]]
    return out


def test_the_ruleset_is_indexed() -> None:
    plan = Engine(ruleset())._plans["order_completed"]
    assert plan.index is not None
    assert len(plan.index.always) == 2  # the `contains` and the unconditional rule


def test_the_index_decides_as_a_scan_does(monkeypatch: pytest.MonkeyPatch) -> None:
    rs = ruleset()
    indexed = run(Engine(rs), events())
    monkeypatch.setattr(dispatch, "INDEX_MIN_KEYED", 10**9)
    scanning = Engine(rs)
    assert scanning._plans["order_completed"].index is None
    assert run(scanning, events()) == indexed
