"""Running a rule's steps (LANGUAGE.md section 4) for one contact."""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from nudge.dsl.compile.runtime import number
from nudge.dsl.plan import (
    AudienceChange,
    Emit,
    Rule,
    ScoreChange,
    Send,
    SetTrait,
    Show,
    StopIf,
    UnsetTrait,
    Wait,
)

from .actions import Action, action_id
from .decision import Context, count_rule
from .delivery_rules import (
    CONSENT_TRAIT,
    best_channel,
    fits_channel_cap,
    give_back,
    is_address,
    quiet_until,
    zone,
)
from .events import Event, format_time, parse_time
from .timers import arm, deliver_id, wait_id

if TYPE_CHECKING:
    from .engine import Engine

__all__ = [
    "Firing",
    "change_trait",
    "count_limited",
    "emit_event",
    "held_back",
    "run_steps",
    "suppressed_preview",
]

Bindings = Mapping[str, Event]

_DEFAULT_TO = {"email": "email", "sms": "phone"}
# The policy channel (`policy <channel> limit ...`) each action kind counts against.
_POLICY_CHANNEL = {
    "email": "email",
    "sms": "sms",
    "webhook": "webhook",
    "audience_add": "audience",
    "audience_remove": "audience",
    "show": "show",
}
_QUIET_KINDS = frozenset({"email", "sms"})
_SEND_KINDS = frozenset({"email", "sms", "webhook"})
_EMITTING = frozenset({"stage", "score"})  # traits whose changes emit an event


class Firing:
    """One run of a rule: the rule, its bindings and the id of the event that triggered it
    (action ids derive from it)."""

    __slots__ = ("b", "rule", "trigger_id")

    def __init__(self, rule: Rule, b: Bindings, trigger_id: str) -> None:
        self.rule = rule
        self.b = b
        self.trigger_id = trigger_id


def _is_number(value: Any) -> bool:
    t = type(value)
    return t is int or t is float


def run_steps(engine: Engine, ctx: Context, f: Firing, start: int) -> None:
    """Run the rule's steps from index `start` until the end, a `wait` or a `stop if`."""
    steps = f.rule.steps
    run = _RUN
    for i in range(start, len(steps)):
        step = steps[i]
        if run[type(step)](engine, ctx, f, step):
            return


# Each step kind's runner (a step's `index` is its position in the rule); True ends the run.


def _run_send(engine: Engine, ctx: Context, f: Firing, step: Any) -> bool:
    _send(engine, ctx, f, step)
    return False


def _run_wait(engine: Engine, ctx: Context, f: Firing, step: Any) -> bool:
    rule = f.rule
    i = step.index
    payload = {
        "id": wait_id(rule.name, f.trigger_id, i),
        "bindings": dict(f.b),
        "step": i + 1,
        "trigger": f.trigger_id,
    }
    arm(ctx, rule.name, "wait", ctx.now + step.seconds, payload)
    return True


def _run_stop_if(engine: Engine, ctx: Context, f: Firing, step: Any) -> bool:
    return step.condition(f.b, ctx.traits, ctx.now, ctx.state) is True


def _run_set(engine: Engine, ctx: Context, f: Firing, step: Any) -> bool:
    value = step.value(f.b, ctx.traits, ctx.now, ctx.state)
    if given_trait_fits(step.field, value):  # a score that is no number is not set, say
        change_trait(engine, ctx, step.field, value, rule=f.rule.name, cause=_trait_cause(f, step))
    return False


def _run_unset(engine: Engine, ctx: Context, f: Firing, step: Any) -> bool:
    change_trait(engine, ctx, step.field, None, rule=f.rule.name, cause=_trait_cause(f, step))
    return False


def _trait_cause(f: Firing, step: SetTrait | UnsetTrait) -> str:
    """The cause of a trait step's events: only `stage` and `score` changes emit any."""
    return _cause(f, step.index) if step.field in _EMITTING else ""


def _run_score(engine: Engine, ctx: Context, f: Firing, step: Any) -> bool:
    _score(engine, ctx, f, step)
    return False


def _run_emit(engine: Engine, ctx: Context, f: Firing, step: Any) -> bool:
    if step.event in engine.listened:
        data = _data(ctx, step.data, f.b)
        emit_event(engine, ctx, step.event, data, _cause(f, step.index))
    return False


def _run_audience(engine: Engine, ctx: Context, f: Firing, step: Any) -> bool:
    _audience(engine, ctx, f, step)
    return False


def _run_show(engine: Engine, ctx: Context, f: Firing, step: Any) -> bool:
    _show(engine, ctx, f, step)
    return False


_RUN: dict[type, Callable[[Engine, Context, Firing, Any], bool]] = {
    Send: _run_send,
    Wait: _run_wait,
    StopIf: _run_stop_if,
    SetTrait: _run_set,
    UnsetTrait: _run_unset,
    ScoreChange: _run_score,
    Emit: _run_emit,
    AudienceChange: _run_audience,
    Show: _run_show,
}


def _cause(f: Firing, index: int) -> str:
    """What the ids of events caused by step `index` of this firing start with:
    `<trigger event id>/<rule>/<step index>` (a rule name holds no `/`)."""
    return f"{f.trigger_id}/{f.rule.name}/{index}"


def held_back(rule: Rule) -> int:
    """How many actions a limited firing of the rule holds back: its send, audience and show
    steps before the first wait."""
    n = 0
    for step in rule.steps:
        if isinstance(step, Wait):
            break
        if isinstance(step, Send | AudienceChange | Show):
            n += 1
    return n


def count_limited(ctx: Context, rule: Rule, n: int | None = None) -> None:
    """Count the actions a limited firing would have given (`n`: `held_back(rule)`, when
    known already)."""
    if n is None:
        n = held_back(rule)
    if n:
        counts = ctx.d.suppressed
        counts["limited"] = counts.get("limited", 0) + n
        count_rule(ctx.d, rule.name, "suppressed:limited", n)


def suppressed_preview(ctx: Context, f: Firing) -> None:
    """A limited firing under tracing: the actions it would have given before its first wait,
    each suppressed `limited` (a `limited` record when it gives none). Nothing else runs."""
    count_limited(ctx, f.rule)
    rule = f.rule
    cid = ctx.state.contact_id
    if not held_back(rule):
        ctx.record("limited", rule.name, {"event_id": f.trigger_id})
        return
    for step in rule.steps:
        if isinstance(step, Wait):
            return
        aid = action_id(rule.name, ctx.state.contact_id, f.trigger_id, step.index)
        if isinstance(step, Send):
            channel: str = step.channel
            if channel == "best":
                channel = best_channel(ctx.traits, ctx.state.engagement) or "email"
            action = Action(aid, rule.name, cid, channel, ctx.at)
            if channel == "webhook":
                action.name = step.target
            else:
                action.template = step.target
                to = _address(ctx, step, channel, f.b)
                action.to = to if is_address(to) else None
            action.data = _data(ctx, step.data, f.b)
        elif isinstance(step, AudienceChange):
            kind = "audience_add" if step.add else "audience_remove"
            action = Action(aid, rule.name, cid, kind, ctx.at, name=step.audience)
        elif isinstance(step, Show):
            action = Action(aid, rule.name, cid, "show", ctx.at, content=step.content)
            action.slot = step.slot
        else:
            continue
        action.suppressed = "limited"
        ctx.d.trace.append(action)


def _data(ctx: Context, fn: Any, b: Bindings) -> dict[str, Any]:
    if fn is None:
        return {}
    value = fn(b, ctx.traits, ctx.now, ctx.state)
    return value if type(value) is dict else {}


def _address(ctx: Context, step: Send, channel: str, b: Bindings) -> Any:
    if step.to is not None:
        return step.to(b, ctx.traits, ctx.now, ctx.state)
    return ctx.traits.get(_DEFAULT_TO.get(channel, "email"))


def _send(engine: Engine, ctx: Context, f: Firing, step: Send) -> None:
    traits = ctx.traits
    channel: str = step.channel
    reason: str | None = None
    if channel == "best":
        chosen = best_channel(traits, ctx.state.engagement)
        if chosen is None:
            channel, reason = "email", "no_consent"
        else:
            channel = chosen
    else:
        needs = CONSENT_TRAIT.get(channel)  # a webhook needs none
        if needs is not None and traits.get(needs) is not True:
            reason = "no_consent"
    rule = f.rule
    aid = action_id(rule.name, ctx.state.contact_id, f.trigger_id, step.index)
    action = Action(aid, rule.name, ctx.state.contact_id, channel, ctx.at)
    if channel == "webhook":
        action.name = step.target
    else:
        action.template = step.target
        action.to = to = _address(ctx, step, channel, f.b)
        if not is_address(to):
            action.to = None  # a number, a list, blank text: nothing to send to
            if reason is None:
                reason = "no_address"
    action.data = _data(ctx, step.data, f.b)
    _deliver(engine, ctx, rule, action, reason, step=step.index, bindings=f.b)


def _audience(engine: Engine, ctx: Context, f: Firing, step: AudienceChange) -> None:
    rule = f.rule
    kind = "audience_add" if step.add else "audience_remove"
    aid = action_id(rule.name, ctx.state.contact_id, f.trigger_id, step.index)
    action = Action(aid, rule.name, ctx.state.contact_id, kind, ctx.at, name=step.audience)
    reason = None
    if step.add and ctx.traits.get(CONSENT_TRAIT[kind]) is not True:
        reason = "no_consent"
    _deliver(engine, ctx, rule, action, reason, step=step.index)


def _show(engine: Engine, ctx: Context, f: Firing, step: Show) -> None:
    rule = f.rule
    aid = action_id(rule.name, ctx.state.contact_id, f.trigger_id, step.index)
    action = Action(aid, rule.name, ctx.state.contact_id, "show", ctx.at, content=step.content)
    action.slot = step.slot
    _deliver(engine, ctx, rule, action, None, step=step.index)


def _deliver(
    engine: Engine,
    ctx: Context,
    rule: Rule,
    action: Action,
    reason: str | None,
    *,
    step: int,
    bindings: Bindings | None = None,
) -> None:
    """Apply the channel cap and quiet hours to an action (of the rule's step `step`);
    `reason` is set when consent or the address already failed. A send deferred by quiet
    hours keeps its run's `bindings` when an `exit on` of the rule judges runs by them."""
    state = ctx.state
    now = ctx.now
    kind = action.kind
    later: float | None = None  # when quiet hours defer it to
    if kind in _QUIET_KINDS and (reason is None or engine.trace):  # traced: its `at` shows it
        quiet = rule.quiet if rule.quiet is not None else engine.quiet_hours
        if quiet is not None and quiet.start != quiet.end:
            later = quiet_until(now, quiet.start, quiet.end, zone(ctx.traits.get("timezone")))
    if reason is None:
        channel = _POLICY_CHANNEL[kind]
        policy = engine.policies.get(channel)
        if policy is not None:
            sent = state.sends.get(channel)
            if sent is None:
                sent = state.sends[channel] = []
            at = now if later is None else later  # the cap counts actions when they go out
            if fits_channel_cap(sent, policy.count, policy.per, at, now):
                insort(sent, at)
            else:
                reason = "capped"
    if reason is not None:
        if engine.trace and later is not None:  # traced at when it would have been due
            action.at = format_time(later)
        _suppressed(ctx, action, reason, engine.trace)
        return
    action.contact = dict(ctx.traits)
    if later is not None:
        action.at = format_time(later)
        # `order`: deferred sends due at one instant go out as they were decided
        payload: dict[str, Any] = {
            "id": deliver_id(action.id),
            "action": action,
            "order": [now, step],
        }
        if bindings is not None and any(m.per_run for m in rule.exits):
            payload["bindings"] = dict(bindings)
        arm(ctx, rule.name, "deliver", later, payload)
        return  # it counts as sent (for goals) when it goes out
    if kind in _SEND_KINDS:
        state.last_send[rule.name] = now
    ctx.d.actions.append(action)
    count_rule(ctx.d, rule.name, "sent")
    if engine.trace:
        ctx.d.trace.append(action)


def given_trait_fits(key: str, value: Any) -> bool:
    """Whether a trait an `identify` (or a test's `given`) brings may be taken: `segments` is
    the engine's alone (membership follows the segments' conditions), `score` must be a number,
    `stage` a string, `first_seen` and `last_seen` times; anything else goes. (An `identify`
    never brings `last_seen`: the engine's `_identify` keeps it to the latest inbound event.)"""
    if key == "score":
        return type(value) is int or type(value) is float
    if key == "stage":
        return type(value) is str
    if key in ("first_seen", "last_seen"):
        return type(value) is str and _is_time(value)
    return key != "segments"


def _is_time(text: str) -> bool:
    try:
        parse_time(text)
    except ValueError:
        return False
    return True


def withdrawn(ctx: Context, action: Action, due: float, trace: bool) -> None:
    """A send deferred by quiet hours whose consent was withdrawn before it went out: it is
    suppressed (`no_consent`) now, and no longer counts for its channel's cap."""
    give_back(ctx.state.sends.get(action.kind), due)
    _suppressed(ctx, action, "no_consent", trace)


def _suppressed(ctx: Context, action: Action, reason: str, trace: bool) -> None:
    """Count `action` as suppressed for `reason` (and trace it, when tracing)."""
    counts = ctx.d.suppressed
    counts[reason] = counts.get(reason, 0) + 1
    count_rule(ctx.d, action.rule, "suppressed:" + reason)
    if trace:
        action.suppressed = reason
        ctx.d.trace.append(action)


def change_trait(
    engine: Engine, ctx: Context, name: str, value: Any, *, rule: str | None, cause: str
) -> None:
    """Set (or, for None, delete) a trait; trace it; a `stage` or `score` change emits its
    event, with an id derived from `cause`."""
    traits = ctx.traits
    old = traits.get(name)
    if value is None:
        if name not in traits:
            return
        del traits[name]
    else:
        if old == value and type(old) is type(value):
            return
        traits[name] = value
    read = engine.segment_fields
    if read is None or name in read:
        ctx.changes += 1
    if engine.trace:
        kind = name if name in ("stage", "score") else "trait"
        fields = (
            {"from": old, "to": value}
            if kind != "trait"
            else {"field": name, "from": old, "to": value}
        )
        ctx.record(kind, rule, fields)
    if name in _EMITTING:  # stage_changed / score_changed, when something listens
        kind = f"{name}_changed"
        if kind in engine.listened:
            emit_event(engine, ctx, kind, {"from": old, "to": value}, cause)


def _score(engine: Engine, ctx: Context, f: Firing, step: ScoreChange) -> None:
    delta = step.delta(f.b, ctx.traits, ctx.now, ctx.state)
    if not _is_number(delta) or delta == 0:
        return
    traits = ctx.traits
    old = traits.get("score", 0)
    if not _is_number(old):
        old = 0
    new = number(old + delta)
    if new is None:  # past what a number holds: the score stays
        return
    traits["score"] = new
    read = engine.segment_fields
    if read is None or "score" in read:
        ctx.changes += 1
    rule = f.rule.name
    if engine.trace:
        ctx.record("score", rule, {"from": old, "to": new})
    if "score_changed" in engine.listened:
        emit_event(engine, ctx, "score_changed", {"from": old, "to": new}, _cause(f, step.index))


def emit_event(
    engine: Engine,
    ctx: Context,
    event_type: str,
    properties: dict[str, Any],
    cause: str,
) -> str:
    """Queue an internal event for the contact, processed right after the current one, and
    return its id: `<cause>/<event type>`, deterministic, unique per cause (`Context.fresh_id`
    for a cause that gives one twice), and readable in traces
    (`evt-9/score_views/0/score_changed`). An event that no rule, window, exit or goal
    listens to would change nothing: it is not made at all (its id is returned all the same)."""
    eid = ctx.fresh_id(f"{cause}/{event_type}")
    if event_type not in engine.listened:
        return eid
    event = Event(eid, event_type, ctx.state.contact_id, ctx.now, ctx.at, properties, inbound=False)
    queue = ctx.queue
    if queue is None:
        queue = ctx.queue = []
    queue.append((event, ctx.depth + 1))
    return eid
