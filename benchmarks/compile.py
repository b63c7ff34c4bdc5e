"""How long a ruleset takes to load: parse, check and compile, over named nasty inputs.

    python benchmarks/compile.py            # 10, 1,000 and 10,000 rules, and deep conditions
    python benchmarks/compile.py --quick    # fewer repeats, no 10,000-rule case

Cases:
- many_rules_N: one file of N generated rules mixing every trigger kind, `let`s, segments,
  `count(...)`, regexes and every step kind (a realistic shop, repeated).
- deep_condition_N: one rule whose `if` nests N alternating `and`/`or` levels.

Each case prints the best of a few runs for each stage and the total, and the compile stage per
rule. Plain timing of this process's CPU time (time.process_time), since one run of the big
case takes seconds and the machine may be shared.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from machine import machine

from nudge.dsl import ast
from nudge.dsl.check import check
from nudge.dsl.compile import compile_ruleset
from nudge.dsl.parse import parse
from nudge.dsl.source import Source

HEADER = """\
let nordic = ["SE", "NO", "DK", "FI"]
let big = 500
segment vip = contact.total_spent > 1000 or count(order_completed within 365d) >= 3
policy email limit 3 per 7d
policy quiet hours 21:00-08:00
"""

RULES = [
    """\
rule cart_{i}
    when cart_updated as cart where cart.value > {i}
         not followed by order_completed where order_completed.cart_id == cart.cart_id within 1h
    if contact.consent_email and contact.country in nordic and contact.score >= {m}
    then
        send email "cart_{i}" with {{ cart_id: cart.cart_id, value: cart.value }}
        audience add "abandoners_{i}"
        score += 5
    limit 1 per 24h
    goal order_completed within 3d
end
""",
    """\
rule upsell_{i}
    when cart_updated as a followed by checkout_started as b where b.cart_id == a.cart_id within 30m
    if a.value < b.value and lower(contact.email) endswith ".se"
    then
        wait 1h
        stop if contact.stage == "customer"
        send sms "upsell_{i}" to contact.mobile with {{ first: a.value, second: b.value }}
        set contact.upsold_{m} = true
    priority {m}
end
""",
    """\
rule pricing_{i}
    when 3 page_viewed where event.path startswith "/pricing/{m}" within 7d
    if count(demo_requested within 30d) == 0 and contact.email matches "^[^@]+@[^@]+$"
    then
        send webhook "sales" with {{ views: count(page_viewed within 1d), n: {i} }}
        emit hot_lead {{ rule: "pricing_{i}" }}
    once
end
""",
    """\
rule winback_{i}
    when inactive for {d}d
    if days_since(contact.last_order_at) > {m} and contact in vip
    then
        send best "winback_{i}"
        show "banner_{i}" in "hero"
    quiet hours 22:00-07:30
end
""",
]


def many_rules(n: int) -> list[Source]:
    parts = [HEADER]
    for i in range(n):
        template = RULES[i % len(RULES)]
        parts.append(template.format(i=i, m=i % 50, d=30 + i % 60))
    return [Source(f"bench/many_{n}.rules", "\n".join(parts))]


def deep_condition(depth: int) -> list[Source]:
    condition = "contact.a == 1"
    for i in range(depth):
        condition = f"(contact.x{i} > {i} {'and' if i % 2 else 'or'} {condition})"
    text = f"rule deep\n    when e\n    if {condition}\n    then\n        score += 1\nend\n"
    return [Source("bench/deep.rules", text)]


def best_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.process_time()
        result = fn()
        best = min(best, time.process_time() - start)
    return best, result


def run_case(name: str, sources: list[Source], repeats: int, rules: int) -> None:
    parse_s, files = best_of(repeats, lambda: [parse(s) for s in sources])
    for _, diagnostics in files:
        assert not diagnostics, diagnostics[0].message
    syntax = ast.Ruleset(tuple(f for f, _ in files))
    check_s, checked = best_of(repeats, lambda: check(syntax))
    errors = [d for d in checked.diagnostics if d.is_error]
    assert not errors, f"{errors[0].span}: {errors[0].message}"
    compile_s, plan = best_of(repeats, lambda: compile_ruleset(checked))
    assert len(plan.rules) == rules
    total = parse_s + check_s + compile_s
    per_rule = compile_s / rules * 1e6
    print(
        f"{name:<22} {parse_s * 1e3:>10.1f} {check_s * 1e3:>10.1f} {compile_s * 1e3:>11.1f} "
        f"{total * 1e3:>10.1f} {per_rule:>14.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller cases")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    sizes = [10, 1_000] if args.quick else [10, 1_000, 10_000]
    print(f"machine: {machine()}")
    print(
        f"{'case':<22} {'parse ms':>10} {'check ms':>10} {'compile ms':>11} {'total ms':>10} "
        f"{'compile us/rule':>14}"
    )
    for n in sizes:
        run_case(f"many_rules_{n}", many_rules(n), repeats, n)
    for depth in (100, 300):
        run_case(f"deep_condition_{depth}", deep_condition(depth), repeats, 1)


if __name__ == "__main__":
    main()
