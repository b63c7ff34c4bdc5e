"""The plan of a sample ruleset: order, triggers, steps, windows, indexes, bindings and tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from nudge.dsl import ast, plan
from nudge.dsl.check import check
from nudge.dsl.compile import CompileError, compile_ruleset
from nudge.dsl.parse import parse
from nudge.dsl.source import Source


@dataclass
class Ev:
    type: str
    properties: dict[str, Any] = field(default_factory=dict)
    id: str = "e1"
    contact_id: str = "c1"
    ts: float = 0.0
    timestamp: str = "1970-01-01T00:00:00Z"


class Hist:
    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def count(self, window_id: str, seconds: float, now: float) -> int:
        return self.counts.get(window_id, 0)


SHOP = """\
event cart_updated { cart_id: string, value: number }
let nordic = ["SE", "NO", "DK", "FI"]
segment vip = contact.total_spent > 1000 or count(order_completed within 365d) >= 3
policy email limit 3 per 7d
policy quiet hours 21:00-08:00

rule abandoned_cart "Remind about an abandoned cart"
    when cart_updated as cart where cart.value > 0
         not followed by order_completed where order_completed.cart_id == cart.cart_id within 1h
    if contact.consent_email and contact.country in nordic
    then
        send email "cart_reminder" with { cart_id: cart.cart_id, value: event.value }
        audience add "cart_abandoners"
        score += 5
    exit on order_completed where order_completed.cart_id == "x"
    limit 1 per 24h
    goal order_completed within 3d
end

rule upsell
    when cart_updated as c1 followed by checkout_started as c2 where c2.cart_id == c1.cart_id within 30m
    if c1.value < event.value
    then
        wait 1h
        send sms "upsell" to contact.mobile with { first: c1.value, second: c2.value }
        stop if contact.stage == "customer"
        set contact.upsold = true
        unset contact.cart
        score -= 2
        emit upsold { cart: c2.cart_id }
        show "banner-10" in "hero"
    no quiet hours
    priority 5
end

rule pricing_interest
    when 3 page_viewed as p where p.path startswith "/pricing" within 7d
    then
        send webhook "sales" with { views: count(page_viewed where event.path startswith "/pricing" within 1d) }
    once
    quiet hours 22:00-07:30
end

rule winback
    when inactive for 30d
    then
        send best "winback"
end

rule vip_welcome
    when entered vip
    then
        audience remove "prospects"
    priority 5
end

test "reminder"
    given contact c1 { email: "ann@example.se", tags: nordic }
    given contact "c-2" { country: "SE" }
    at 2026-11-20T10:30:00Z c1 order_completed { cart_id: "k1" }
    at 2026-11-20T10:00:00+00:00 c1 cart_updated { cart_id: "k1", value: 120 }
    expect at 2026-11-20T11:00:00Z c1 email "cart_reminder" with { cart_id: "k1" }
    expect no sms
    expect at 2026-11-20T11:00:00Z c1 has contact.score == 5
end
"""


@pytest.fixture(scope="module")
def shop() -> plan.RuleSet:
    rule_file, syntax = parse(Source("rules/shop.rules", SHOP))
    assert not syntax, [d.message for d in syntax]
    return compile_ruleset(check(ast.Ruleset((rule_file,))), {"rules/shop.rules": SHOP})


def rule(ruleset: plan.RuleSet, name: str) -> plan.Rule:
    found = ruleset.rule(name)
    assert found is not None
    return found


def test_rules_in_firing_order(shop: plan.RuleSet) -> None:
    assert [r.name for r in shop.rules] == [
        "upsell",
        "vip_welcome",
        "abandoned_cart",
        "pricing_interest",
        "winback",
    ]
    assert rule(shop, "upsell").priority == 5


def test_indexes(shop: plan.RuleSet) -> None:
    names = {k: [r.name for r in v] for k, v in shop.by_event.items()}
    assert names == {
        "cart_updated": ["upsell", "abandoned_cart"],
        "checkout_started": ["upsell"],
        "order_completed": ["abandoned_cart"],
        "page_viewed": ["pricing_interest"],
    }
    assert [r.name for r in shop.exits_by_event["order_completed"]] == ["abandoned_cart"]
    assert [r.name for r in shop.goals_by_event["order_completed"]] == ["abandoned_cart"]
    assert [r.name for r in shop.inactive] == ["winback"]
    assert [r.name for r in shop.on_segment["vip"]] == ["vip_welcome"]
    assert set(shop.windows_by_event) == {"order_completed", "page_viewed"}
    for event, windows in shop.windows_by_event.items():
        assert all(w.event == event and shop.windows[w.id] is w for w in windows)


def test_windows_are_shared_and_stable(shop: plan.RuleSet) -> None:
    pricing = rule(shop, "pricing_interest")
    trigger = pricing.trigger
    assert trigger.kind == "repeated" and trigger.count == 3 and trigger.within == 7 * 86400
    # `3 page_viewed as p where p.path ...` and `count(page_viewed where event.path ...)` are
    # the same condition: one window, with the longest horizon asked for.
    assert trigger.window is not None
    window = shop.windows[trigger.window]
    assert len(shop.windows_by_event["page_viewed"]) == 1
    assert window.horizon == 7 * 86400
    assert window.id.startswith("w:page_viewed:") and len(window.id.split(":")[2]) == 10
    assert window.where is not None
    assert window.where({"event": Ev("page_viewed", {"path": "/pricing"})}, {}, 0.0, None) is True
    (orders,) = shop.windows_by_event["order_completed"]
    assert orders.where is None and orders.horizon == 365 * 86400
    again = compile_ruleset(check(ast.Ruleset((parse(Source("other.rules", SHOP))[0],))))
    assert set(again.windows) == set(shop.windows)


def test_not_followed_by(shop: plan.RuleSet) -> None:
    r = rule(shop, "abandoned_cart")
    t = r.trigger
    assert t.kind == "not_followed_by" and t.within == 3600
    assert t.first is not None and t.second is not None
    assert (t.first.event, t.first.binding) == ("cart_updated", "cart")
    assert (t.second.event, t.second.binding) == ("order_completed", "order_completed")
    cart = Ev("cart_updated", {"cart_id": "k1", "value": 120})
    order = Ev("order_completed", {"cart_id": "k1"})
    assert t.first.where is not None and t.second.where is not None
    assert t.first.where({"event": cart}, {}, 0.0, None) is True
    # C2 sees E2 as `event` / its type name and E1 by its binding.
    assert t.second.where({"event": order, "cart": cart}, {}, 0.0, None) is True
    assert t.second.where({"event": order}, {}, 0.0, None) is False  # E1 missing: null
    # The if and the steps see E1 as `event` and by its alias.
    assert r.condition is not None
    assert r.condition({"event": cart}, {"consent_email": True, "country": "SE"}, 0, None)
    send = r.steps[0]
    assert isinstance(send, plan.Send) and send.channel == "email" and send.to is None
    assert send.data is not None
    assert send.data({"event": cart}, {}, 0.0, None) == {"cart_id": "k1", "value": 120}
    assert isinstance(r.steps[1], plan.AudienceChange) and r.steps[1].add
    score = r.steps[2]
    assert isinstance(score, plan.ScoreChange) and score.delta({}, {}, 0.0, None) == 5
    assert [s.index for s in r.steps] == [0, 1, 2]
    assert r.limit == plan.Limit(1, 86400.0)
    assert r.quiet is None
    assert r.goal is not None and r.goal.within == 3 * 86400 and r.goal.match.where is None
    (exit_,) = r.exits
    assert exit_.where is not None
    assert exit_.where({"event": Ev("order_completed", {"cart_id": "x"})}, {}, 0.0, None)
    assert r.title == "Remind about an abandoned cart"
    assert r.origin == plan.Origin("rules/shop.rules", 7, 1)


def test_followed_by(shop: plan.RuleSet) -> None:
    r = rule(shop, "upsell")
    t = r.trigger
    assert t.kind == "followed_by" and t.within == 1800
    assert t.first is not None and t.second is not None and t.second.where is not None
    e1 = Ev("cart_updated", {"cart_id": "k", "value": 1})
    e2 = Ev("checkout_started", {"cart_id": "k", "value": 2})
    assert t.second.where({"event": e2, "c1": e1}, {}, 0.0, None) is True
    assert r.condition is not None
    assert r.condition({"event": e2, "c1": e1}, {}, 0.0, None) is True
    wait, send, stop, set_, unset, score, emit, show = r.steps
    assert isinstance(wait, plan.Wait) and wait.seconds == 3600
    assert isinstance(send, plan.Send) and send.channel == "sms" and send.to is not None
    assert send.to({}, {"mobile": "+46"}, 0.0, None) == "+46"
    assert send.data is not None
    assert send.data({"event": e2, "c1": e1}, {}, 0.0, None) == {"first": 1, "second": 2}
    assert isinstance(stop, plan.StopIf)
    assert stop.condition({}, {"stage": "customer"}, 0.0, None) is True
    assert isinstance(set_, plan.SetTrait) and set_.field == "upsold"
    assert set_.value({}, {}, 0.0, None) is True
    assert isinstance(unset, plan.UnsetTrait) and unset.field == "cart"
    assert isinstance(score, plan.ScoreChange) and score.delta({}, {}, 0.0, None) == -2
    assert isinstance(emit, plan.Emit) and emit.event == "upsold" and emit.data is not None
    assert emit.data({"event": e2}, {}, 0.0, None) == {"cart": "k"}
    assert isinstance(show, plan.Show) and (show.content, show.slot) == ("banner-10", "hero")
    assert [s.index for s in r.steps] == list(range(8))
    assert r.quiet == plan.QuietHours(0, 0)


def test_other_triggers(shop: plan.RuleSet) -> None:
    pricing = rule(shop, "pricing_interest")
    assert pricing.limit == plan.Limit(1, None)
    assert pricing.quiet == plan.QuietHours(22 * 60, 7 * 60 + 30)
    send = pricing.steps[0]
    assert isinstance(send, plan.Send) and send.channel == "webhook" and send.data is not None
    window = pricing.trigger.window
    assert send.data({}, {}, 0.0, Hist({window or "": 4})) == {"views": 4}
    winback = rule(shop, "winback")
    assert winback.trigger == plan.Trigger("inactive", within=30 * 86400)
    assert rule(shop, "vip_welcome").trigger == plan.Trigger("entered", segment="vip")


def test_segments_policies_and_quiet_hours(shop: plan.RuleSet) -> None:
    (vip,) = shop.segments
    assert vip.name == "vip" and vip.origin.line == 3
    assert vip.condition({}, {"total_spent": 1001}, 0.0, Hist({})) is True
    orders = shop.windows_by_event["order_completed"][0].id
    assert vip.condition({}, {}, 0.0, Hist({orders: 3})) is True
    assert vip.condition({}, {}, 0.0, Hist({})) is False
    assert shop.policies == {"email": plan.ChannelPolicy("email", 3, 7 * 86400.0)}
    assert shop.quiet_hours == plan.QuietHours(21 * 60, 8 * 60)


def test_tests_compile(shop: plan.RuleSet) -> None:
    (case,) = shop.tests
    assert case.name == "reminder"
    assert case.contacts == {
        "c1": {"email": "ann@example.se", "tags": ["SE", "NO", "DK", "FI"]},
        "c-2": {"country": "SE"},
    }
    assert [e.event for e in case.events] == ["cart_updated", "order_completed"]  # time order
    first = case.events[0]
    assert first.at == 1795168800.0 and first.timestamp == "2026-11-20T10:00:00+00:00"
    assert first.data == {"cart_id": "k1", "value": 120}
    email, no_sms, has = case.expects
    assert isinstance(email, plan.ExpectAction)
    assert (email.kind, email.target, email.contact, email.at) == (
        "email",
        "cart_reminder",
        "c1",
        1795172400.0,
    )
    assert email.data == {"cart_id": "k1"}
    assert (
        email.text
        == 'expect at 2026-11-20T11:00:00Z c1 email "cart_reminder" with { cart_id: "k1" }'
    )
    assert isinstance(no_sms, plan.ExpectAction) and no_sms.negated and no_sms.contact is None
    assert isinstance(has, plan.ExpectContact)
    assert has.condition({}, {"score": 5}, 0.0, None) is True
    assert has.text == "expect at 2026-11-20T11:00:00Z c1 has contact.score == 5"


def test_fingerprint_follows_the_sources() -> None:
    rule_file, _ = parse(Source("a.rules", SHOP))
    checked = check(ast.Ruleset((rule_file,)))
    one = compile_ruleset(checked, {"a.rules": SHOP})
    two = compile_ruleset(checked, {"a.rules": SHOP + "\n# a comment\n"})
    assert one.fingerprint != two.fingerprint
    assert one.fingerprint == compile_ruleset(checked, {"a.rules": SHOP}).fingerprint
    assert len(compile_ruleset(checked).fingerprint) == 64


def test_an_empty_ruleset() -> None:
    empty = compile_ruleset(check(ast.Ruleset(())))
    assert empty.rules == () and empty.windows == {} and empty.by_event == {}


def test_a_bad_timestamp_the_checker_missed() -> None:
    text = 'test "t"\n    at 2026-13-40T10:00:00Z c1 x\nend\n'
    rule_file, syntax = parse(Source("t.rules", text))
    assert not syntax
    with pytest.raises(CompileError, match=r"t\.rules:2"):
        compile_ruleset(check(ast.Ruleset((rule_file,))))


def test_rules_across_files_share_lets_and_windows() -> None:
    a = 'let nordic = ["SE"]\nrule a when x if count(y within 1d) > 0 then end\n'
    b = "rule b when x if contact.c in nordic and count(y within 2d) > 0 then end\n"
    files = tuple(parse(Source(p, t))[0] for p, t in (("a.rules", a), ("b.rules", b)))
    ruleset = compile_ruleset(check(ast.Ruleset(files)))
    (window,) = ruleset.windows.values()
    assert window.horizon == 2 * 86400
    rb = ruleset.rule("b")
    assert rb is not None and rb.condition is not None
    assert rb.condition.__code__.co_filename == "b.rules"
    assert rb.condition({}, {"c": "SE"}, 0.0, Hist({window.id: 1})) is True


def test_a_deep_condition_compiles() -> None:
    """Whatever the parser and the checker accept compiles, however deeply it nests."""
    from nudge.dsl import load_sources

    condition = "contact.a == 1"
    for i in range(300):
        condition = f"(contact.x{i} > {i} {'and' if i % 2 else 'or'} {condition})"
    text = f"rule deep when e if {condition} then score += 1 end\n"
    result = load_sources([Source("deep.rules", text)])
    assert result.ruleset is not None, [d.message for d in result.diagnostics]
    deep = result.ruleset.rule("deep")
    assert deep is not None and deep.condition is not None
    assert deep.condition({}, {"a": 1}, 0.0, None) is False
    assert deep.condition({}, {"x299": 300, "x298": 299}, 0.0, None) is True
