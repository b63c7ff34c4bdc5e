"""Matching an event against the triggers of the rules it can affect (LANGUAGE.md section 3)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from nudge.dsl.plan import Match, Rule

from .decision import Context, HeldFiring
from .dispatch import EVENT, FOLLOWED_BY, REPEATED, Entry
from .events import Event
from .timers import arm_event_timer

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["bind", "bind_pair", "run_triggers"]

_MAX_PENDING = 1000  # first events kept per `followed by` rule and contact


def bind(m: Match, e: Event) -> dict[str, Event]:
    """The bindings of one matched event: `event`, its type name and its alias."""
    if m.binding == m.event:
        return {"event": e, m.event: e}
    return {"event": e, m.event: e, m.binding: e}


def bind_pair(first: Match, e1: Event, second: Match, e2: Event) -> dict[str, Event]:
    """Bindings of a two-event trigger: both events by type and alias; `event` is the second."""
    return {first.event: e1, first.binding: e1, second.event: e2, second.binding: e2, "event": e2}


def _holds(m: Match, b: dict[str, Event], ctx: Context) -> bool:
    where = m.where
    return where is None or where(b, ctx.traits, ctx.now, ctx.state) is True


def run_triggers(
    engine: Engine,
    ctx: Context,
    e: Event,
    entries: Iterable[Entry],
    base: dict[str, Event],
    *,
    held: list[HeldFiring] | None = None,
) -> None:
    """Fire, arm or cancel for each trigger entry of `e`'s type (in firing order; see
    `dispatch`). `base` is `{"event": e, <type>: e}`, shared by every match without an alias
    (generated code only reads bindings). `held`: `entered`/`left` firings the event caused,
    in firing order, each run when its turn comes among the entries."""
    typ = e.type
    state = ctx.state
    traits = ctx.traits
    now = ctx.now
    rank = engine.rank
    waiting = 0
    for code, rule, where, alias, condition in entries:
        if held is not None:
            mine = rank[rule.name]
            while waiting < len(held) and held[waiting][0] < mine:
                _, first, b, trigger_id = held[waiting]
                waiting += 1
                engine.fire_rule(ctx, first, b, trigger_id)
        if code in (EVENT, REPEATED):
            b = base if alias is None else {"event": e, typ: e, alias: e}
            if where is not None and where(b, traits, now, state) is not True:
                continue
            if code == REPEATED:
                # `N E within D`: the window already holds `e`; fire when it has exactly N.
                t = rule.trigger
                if state.count(t.window or "", t.within or 0.0, now) != t.count:
                    continue
            # the rule's `if` here rather than in `fire_rule`: most are false, a call saved
            if condition is None or condition(b, traits, now, state) is True:
                engine.fire_allowed(ctx, rule, b, e.id)
        elif code == FOLLOWED_BY:
            _followed_by(engine, ctx, rule, e)
        else:  # NOT_FOLLOWED_BY
            _not_followed_by(ctx, rule, e)
    if held is not None:
        for _, first, b, trigger_id in held[waiting:]:
            engine.fire_rule(ctx, first, b, trigger_id)


def _followed_by(engine: Engine, ctx: Context, rule: Rule, e: Event) -> None:
    """As the second event: fire once, bound to the most recent stored first event within
    the window (inclusive) that the second's condition accepts; first events stay, so each
    later second event within their window fires too. As the first event: remember it. An
    event of both types does both, in that order."""
    t = rule.trigger
    first, second = t.first, t.second
    if first is None or second is None:
        return
    within = t.within or 0.0
    typ = e.type
    pending = ctx.state.pending
    name = rule.name
    if second.event == typ:
        stored = pending.get(name)
        if stored:
            for i in range(len(stored) - 1, -1, -1):
                e1 = stored[i]
                gap = e.ts - e1.ts
                if gap < 0:
                    continue
                if gap > within:
                    break
                b = bind_pair(first, e1, second, e)
                if _holds(second, b, ctx):
                    engine.fire_rule(ctx, rule, b, e.id)
                    break
    if first.event == typ and _holds(first, bind(first, e), ctx):
        stored = pending.get(name)
        if not stored:
            pending[name] = [e]
            return
        cutoff = e.ts - within
        if stored[0].ts < cutoff or len(stored) >= _MAX_PENDING:
            stored[:] = [x for x in stored if x.ts >= cutoff][-(_MAX_PENDING - 1) :]
        stored.append(e)
        if len(stored) > 1 and stored[-2].ts > e.ts:
            stored.sort(key=lambda x: x.ts)


def _not_followed_by(ctx: Context, rule: Rule, e: Event) -> None:
    """A matching second event cancels the wait; a matching first event (re)starts it."""
    t = rule.trigger
    first, second = t.first, t.second
    if first is None or second is None:
        return
    typ = e.type
    if second.event == typ:
        timer_id = "nfb:" + rule.name
        timer = ctx.state.timers.get(timer_id)
        if timer is not None:
            e1 = timer.payload["event"]
            if e.ts >= e1.ts and _holds(second, bind_pair(first, e1, second, e), ctx):
                del ctx.state.timers[timer_id]
    if first.event == typ and _holds(first, bind(first, e), ctx):
        arm_event_timer(ctx, rule.name, "nfb", e.ts + (t.within or 0.0), e)
