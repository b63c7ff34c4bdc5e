"""Properties of replay: deterministic, and indifferent to how the input is cut.

Running events in one go, in batches of any size, or in two runs on the same store (the first
part, then the second) gives the same actions. Memory store here; a store with the same
contract should behave the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nudge.dsl import Source, load_sources
from nudge.dsl.plan import RuleSet
from nudge.engine.clock import ManualClock
from nudge.engine.engine import Engine
from nudge.engine.events import Event, format_time
from nudge.engine.runner import Runner
from nudge.engine.stores.memory import MemoryStore

RULES = """
policy email limit 2 per 1d
policy quiet hours 22:00-07:00
segment hot = contact.score >= 6

rule views
    when page_viewed
    then
        score += 2
end

rule abandoned
    when cart_updated as cart not followed by order_completed within 2h
    if contact.consent_email
    then
        send email "cart" with { cart: cart.cart_id }
        wait 1d
        send email "cart_again"
    exit on order_completed
    limit 1 per 12h
    goal order_completed within 3d
end

rule paired
    when page_viewed followed by cart_updated within 1h
    then
        send webhook "paired"
end

rule thrice
    when 3 page_viewed within 6h
    then
        send best "hot_offer"
    priority 5
end

rule hot
    when entered hot
    then
        audience add "hot"
        show "hot_banner" in "hero"
end

rule idle
    when inactive for 1d
    if contact.stage != "customer"
    then
        send webhook "idle"
end

rule bought
    when order_completed
    then
        set contact.stage = "customer"
        emit thanked
end

rule thanks
    when thanked
    then
        send sms "thanks"
    once
end
"""

START = 1_795_000_000.0  # 2026-11-17T...Z


def _ruleset() -> RuleSet:
    loaded = load_sources([Source("props.rules", RULES)])
    assert loaded.ruleset is not None, loaded.diagnostics
    return loaded.ruleset


RULESET = _ruleset()

contacts = st.sampled_from(["c1", "c2", "c3", "a1"])
kinds = st.sampled_from(
    ["page_viewed", "cart_updated", "order_completed", "identify", "email_opened", "sms_clicked"]
)
steps = st.tuples(
    contacts, kinds, st.integers(min_value=0, max_value=4 * 3600), st.sampled_from(["k1", "k2"])
)


def _events(spec: Sequence[tuple[str, str, int, str]]) -> list[Event]:
    out = []
    ts = START
    for n, (contact, kind, gap, cart) in enumerate(spec):
        ts += gap
        eid = f"e{n}" if n % 7 else "e0"  # some ids repeat: duplicates
        if kind == "identify":
            traits: dict[str, Any] = {
                "email": f"{contact}@x.se",
                "phone": "+46",
                "consent_email": n % 3 != 0,
                "consent_sms": n % 2 == 0,
                "consent_ads": True,
                "timezone": "Europe/Stockholm",
            }
            anon = "a1" if contact != "a1" and n % 2 else None
            out.append(Event(eid, kind, contact, ts, format_time(ts), {}, traits, anon))
        else:
            out.append(Event(eid, kind, contact, ts, format_time(ts), {"cart_id": cart}))
    return out


async def _run(parts: Sequence[Sequence[Event]], batch: int, until: float) -> list[bytes]:
    """Each part in its own runner (a fresh clock), all on one store."""
    store = MemoryStore(partitions=3)
    out: list[bytes] = []
    for part in parts:
        runner = Runner(Engine(RULESET, trace=True), store, ManualClock())
        for i in range(0, len(part), batch):
            d = await runner.process(part[i : i + batch])
            out.extend(orjson.dumps(x if isinstance(x, dict) else x.to_json()) for x in d.trace)
    runner = Runner(Engine(RULESET, trace=True), store, ManualClock())
    d = await runner.advance(until)
    out.extend(orjson.dumps(x if isinstance(x, dict) else x.to_json()) for x in d.trace)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=st.lists(steps, min_size=1, max_size=40),
    cut=st.integers(min_value=0, max_value=40),
    batch=st.integers(min_value=1, max_value=50),
)
def test_replay_is_deterministic_and_cut_independent(
    spec: list[tuple[str, str, int, str]], cut: int, batch: int
) -> None:
    events = _events(spec)
    until = events[-1].ts + 5 * 86400
    whole = asyncio.run(_run([events], len(events), until))
    again = asyncio.run(_run([_events(spec)], len(events), until))
    assert whole == again
    batched = asyncio.run(_run([events], batch, until))
    assert batched == whole
    cut = min(cut, len(events))
    split = asyncio.run(_run([events[:cut], events[cut:]], batch, until))
    assert split == whole


def test_the_property_sees_actions() -> None:
    """The ruleset above does act on generated input (the property is not vacuous)."""
    spec = [
        ("c2", "page_viewed", 0, "k1"),
        ("c1", "identify", 0, "k1"),
        ("c1", "page_viewed", 60, "k1"),
        ("c1", "page_viewed", 60, "k1"),
        ("c1", "cart_updated", 60, "k1"),
        ("c1", "page_viewed", 60, "k1"),
    ]
    events = _events(spec)
    out = asyncio.run(_run([events], 10, events[-1].ts + 5 * 86400))
    kinds = {orjson.loads(line).get("kind") for line in out}
    assert {"email", "webhook", "audience_add", "show", "score"} <= kinds
