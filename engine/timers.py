"""Durable timers: their ids, arming and cancelling. Timers are records in a contact's state
(see `state.Timer`); the store indexes them by due time.

Ids (unique per contact):
- `nfb:<rule>`: the wait of a `not followed by` trigger (one per rule: a newer first event
  restarts it);
- `inactive:<rule>`: an `inactive for` trigger (armed by an inbound event; when it falls due
  after later inbound events, it moves on instead of firing);
- `wait:<rule>:<trigger event id>:<step index>`: the rest of a rule after a `wait`;
- `deliver:<action id>`: an action deferred by quiet hours;
- `segments`: the next instant a segment of the contact may change as time passes (one per
  contact; see `segments.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .decision import Context
from .delivery_rules import give_back
from .events import Event
from .state import Timer

__all__ = ["arm", "arm_event_timer", "cancel_rule_timers", "deliver_id", "wait_id"]


def wait_id(rule: str, trigger_id: str, step: int) -> str:
    return f"wait:{rule}:{trigger_id}:{step}"


def deliver_id(action_id: str) -> str:
    return f"deliver:{action_id}"


def arm(ctx: Context, rule: str, kind: str, due: float, payload: dict[str, Any]) -> None:
    """Set a `wait` or `deliver` timer of the context's contact (its id is in the payload's
    `id`, which is removed)."""
    state = ctx.state
    timer_id = payload.pop("id")
    timer = Timer(timer_id, state.contact_id, rule, kind, due, payload)
    state.timers[timer_id] = timer
    ctx.d.timers.append(timer)


def arm_event_timer(ctx: Context, rule: str, kind: str, due: float, event: Event) -> None:
    """(Re)arm the `nfb:<rule>` or `inactive:<rule>` timer, to fire with `event`."""
    timer_id = f"{kind}:{rule}"
    timers = ctx.state.timers
    timer = timers.get(timer_id)
    if timer is None:
        timer = Timer(timer_id, ctx.state.contact_id, rule, kind, due, {"event": event})
        timers[timer_id] = timer
        ctx.d.timers.append(timer)
        return
    # A new Timer, never a changed one (see `Timer`).
    same_due = timer.due == due
    timer = Timer(timer_id, ctx.state.contact_id, rule, kind, due, {"event": event})
    timers[timer_id] = timer
    if not same_due:  # the runner has the old due time scheduled already
        ctx.d.timers.append(timer)


def cancel_rule_timers(
    ctx: Context,
    rule: str,
    kinds: tuple[str, ...],
    which: Callable[[Timer], bool] | None = None,
) -> int:
    """Drop the contact's timers of `rule` whose kind is in `kinds` (and, given `which`, that
    it picks); how many went."""
    timers = ctx.state.timers
    if not timers:
        return 0
    doomed = [
        tid
        for tid, t in timers.items()
        if t.rule == rule and t.kind in kinds and (which is None or which(t))
    ]
    for tid in doomed:
        timer = timers.pop(tid)
        if timer.kind == "deliver":  # a deferred email or sms that will not go out
            give_back(ctx.state.sends.get(timer.payload["action"].kind), timer.due)
    return len(doomed)
