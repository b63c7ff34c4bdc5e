"""The engine core: one contact's event (or due timer) in, a `Decision` out. No I/O.

    engine = Engine(ruleset)
    decision = engine.handle(event, state, now)        # state is mutated in place
    decision = engine.fire(timer, state, now)

What an event type can affect is found with one look-up in tables built once per ruleset
(`dispatch.py`); in big rulesets, rules whose `where` requires `E.f == k` (or `<`, `>`, ...)
are looked up by the event's value instead of each running its `where`.

Per event, in this order: de-duplicate by id; create the contact on first sight; apply
`identify` (with a merge of the anonymous contact), `unsubscribed` and engagement; record
windows; re-evaluate segments (so the event's rules see what it changed); exits; goals;
triggers of the rules the event type can affect, in firing order; re-evaluate segments if the
rules changed anything. Events the rules or the engine emit are processed right after, in the
same way (to a cascade depth of 16).

Choices where the language leaves room:
- `limit N per D` and `policy ... limit N per D` count the window `(now - D, now]`: a firing
  exactly D after an earlier one is let through (a daily reminder at 10:00 works every day).
- `followed by`: a first event pairs with one second event at most (it is used up).
- `exit on` also cancels the rule's sends that quiet hours deferred.
- `goal`: "sent something" means an email, sms or webhook action that was not suppressed.
- `set contact.f = null` removes the trait, as an `identify` with a null does.
- `inactive for D` timers are not moved by each inbound event: one that falls due after
  later activity moves on to D after the latest inbound event instead of firing.
- Internal events are only made when some rule, window, exit or goal listens to their type;
  their ids read `<cause>/<event type>`, e.g. `evt-9/score_views/0/score_changed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from nudge.dsl.plan import ChannelPolicy, Match, QuietHours, Rule, RuleSet, Segment

from .decision import Context, Decision, HeldFiring, count_rule
from .delivery_rules import CONSENT_TRAIT, allowed_by_cap
from .dispatch import TypePlan, type_plans
from .events import Event
from .merge import merge_contact
from .segments import SEGMENT_CHECK, SegmentClock, reevaluate, time_passed
from .state import ContactState, Timer
from .steps import (
    Firing,
    change_trait,
    count_limited,
    given_trait_fits,
    held_back,
    run_steps,
    suppressed_preview,
    withdrawn,
)
from .timers import arm_event_timer, cancel_rule_timers
from .triggers import bind, run_triggers

__all__ = ["DEFAULT_DEDUP_SECONDS", "MAX_CASCADE", "Decision", "Engine"]

DEFAULT_DEDUP_SECONDS = 7 * 86400.0
MAX_CASCADE = 16

# Engagement events and the channel they count for (`send best`).
_ENGAGEMENT = {
    "email_opened": "email",
    "email_clicked": "email",
    "sms_clicked": "sms",
    "sms_replied": "sms",
}
_SPECIAL = frozenset({"identify", "unsubscribed", *_ENGAGEMENT})
_EXIT_CANCELS = ("wait", "deliver")


def _ends_its_run(exits: list[tuple[Match, dict[str, Event]]], ctx: Context, timer: Timer) -> bool:
    """Whether one of `exits` (each with its event's own bindings; their `where` reads the
    trigger's events) ends the run that armed `timer`: judged with the run's bindings, the
    exit's event under its own names and `event`. A timer that holds no bindings (armed
    before the rule had such an exit) is left."""
    bindings = timer.payload.get("bindings")
    if bindings is None:
        return False
    for m, own in exits:
        where = m.where
        if where is None or where({**bindings, **own}, ctx.traits, ctx.now, ctx.state) is True:
            return True
    return False


class Engine:
    """Runs a compiled `RuleSet` over contact states. Holds no contact data itself."""

    def __init__(
        self,
        ruleset: RuleSet,
        *,
        dedup_seconds: float = DEFAULT_DEDUP_SECONDS,
        trace: bool = False,
        max_cascade: int = MAX_CASCADE,
    ) -> None:
        self.ruleset = ruleset
        self.dedup_seconds = dedup_seconds
        self.trace = trace
        self.max_cascade = max_cascade
        self.rules: dict[str, Rule] = {r.name: r for r in ruleset.rules}
        # Each rule's place in the firing order (priority, higher first, then name).
        self.rank: dict[str, int] = {r.name: i for i, r in enumerate(ruleset.rules)}
        # What a limited firing of each rule holds back (counted as suppressed `limited`).
        self._held_back = {r.name: held_back(r) for r in ruleset.rules}
        self.policies: Mapping[str, ChannelPolicy] = ruleset.policies
        self.quiet_hours: QuietHours | None = ruleset.quiet_hours
        self.segments: tuple[Segment, ...] = ruleset.segments
        self.on_segment: Mapping[str, tuple[Rule, ...]] = ruleset.on_segment
        # Segments that change with time alone are checked by a timer (`segments.py`).
        self.segment_clock = SegmentClock.of(ruleset.segments)
        self.nested_segments = any(s.reads_segments for s in ruleset.segments)
        # A state whose `segments_mark` is this object had its segments brought up to date
        # by this engine: they are evaluated again only when its data changed (or its
        # segment timer is due), unless a condition reads the clock or the activity times.
        self.segments_mark = object()
        self._segments_each_event = any(s.each_event for s in ruleset.segments)
        # What segment conditions read: a change to anything else does not count as one
        # (`Context.changes`), so a score or stage no segment reads costs no evaluation.
        self.segment_fields: frozenset[str] | None = frozenset()
        for seg in ruleset.segments:
            if seg.reads is None or self.segment_fields is None:
                self.segment_fields = None
            else:
                self.segment_fields |= seg.reads
        self.segment_windows = frozenset(
            wid for s in ruleset.segments if s.timing is not None for wid, _ in s.timing.windows
        )
        self._inactive = tuple(
            (r.name, r.trigger.within or 0.0, "inactive:" + r.name) for r in ruleset.inactive
        )
        # What an event type can affect, found with one lookup per event.
        self._plans: dict[str, TypePlan] = type_plans(ruleset, _SPECIAL)
        # Event types something reacts to; emitting any other would change nothing.
        self.listened = frozenset(
            t for t, p in self._plans.items() if p.windows or p.exits or p.goals or p.entries
        ) | (_SPECIAL - {"identify"})  # these do something by themselves (consent, engagement)
        # Prune `seen` (checked every 64 new ids) once its oldest entry is this far past
        # the dedup window.
        self._seen_slack = max(dedup_seconds / 8, 60.0)

    # ------------------------------------------------------------------ entry points

    def handle(
        self,
        event: Event,
        state: ContactState,
        now: float,
        merge_from: ContactState | None = None,
        into: Decision | None = None,
    ) -> Decision:
        """Handle one event of `state`'s contact at clock time `now`.

        `merge_from` is the state of the `identify`'s `anonymous_id`, when it has one.
        With `into`, results are appended to that decision (its flags describe this call only),
        which saves an allocation per event in batch runners.
        """
        d = Decision() if into is None else into
        seen = state.seen
        eid = event.id
        floor = state.seen_floor
        if eid in seen or (floor is not None and event.ts < floor):  # seen, or may have been
            d.duplicate = True
            d.dirty = False
            return d
        d.duplicate = False
        d.dirty = True
        if not len(seen) & 63 and seen:
            self._prune_seen(state, now)
        state.seen[eid] = event.ts
        ctx = Context(state, now, d)
        if state.segments_mark is self.segments_mark and self._segments_current(state, now):
            ctx.segments_at = 0
        self._process(ctx, event, merge_from)
        if ctx.queue:
            self._drain(ctx)
        return d

    def fire(
        self, timer: Timer, state: ContactState, now: float, into: Decision | None = None
    ) -> Decision:
        """Fire a due timer of `state`'s contact. A timer no longer in the state (cancelled,
        re-armed to another time, fired already) does nothing."""
        d = Decision() if into is None else into
        d.duplicate = False
        current = state.timers.get(timer.id)
        if current is None or current.due != timer.due:
            d.dirty = False
            return d
        del state.timers[timer.id]
        d.dirty = True
        ctx = Context(state, now, d)
        payload = timer.payload
        if timer.kind == SEGMENT_CHECK:  # `reevaluate` arms the next one: this one is gone
            reevaluate(self, ctx, time_passed(state.contact_id, timer.due))
            if ctx.queue:
                self._drain(ctx)
            return d
        if state.segments_mark is self.segments_mark and self._segments_current(state, now):
            ctx.segments_at = 0
        if timer.kind == "deliver":
            action = payload["action"]
            if ctx.traits.get(CONSENT_TRAIT[action.kind]) is not True:
                # consent withdrawn while it waited for the end of quiet hours
                withdrawn(ctx, action, timer.due, self.trace)
                return d
            state.last_send[action.rule] = timer.due  # sent now, for goals
            d.actions.append(action)
            count_rule(d, action.rule, "sent")
            if self.trace:
                d.trace.append(action)
            return d
        rule = self.rules.get(timer.rule)
        if rule is None:  # the rule is gone from the ruleset
            return d
        if timer.kind == "wait":
            bindings = payload["bindings"]
            run_steps(self, ctx, Firing(rule, bindings, payload["trigger"]), payload["step"])
            cause = bindings.get("event")
        else:  # nfb, inactive
            cause = payload["event"]
            if timer.kind == "inactive":
                last = state.last_inbound
                within = rule.trigger.within or 0.0
                if last is not None and last.ts + within > timer.due:
                    # activity since it was armed: wait on from the latest inbound event
                    arm_event_timer(ctx, rule.name, "inactive", last.ts + within, last)
                    return d
                if last is not None:
                    cause = last
            first = rule.trigger.first
            b = bind(first, cause) if first is not None else {"event": cause, cause.type: cause}
            self.fire_rule(ctx, rule, b, cause.id)
        if cause is not None:  # changes made now are the timer's: ids of their own
            reevaluate(self, ctx, cause, f"{cause.id}/{timer.id}")
        if ctx.queue:
            self._drain(ctx)
        return d

    def firing_order(self, timer: Timer | None) -> tuple[int, int, float, int, str]:
        """The order a contact's timers due at one instant fire in: the segments check first
        (the rules then see membership at that instant), then as rules fire (`rank`); a rule's
        sends deferred by quiet hours first, as they were decided (time, then step), then its
        other timers; then by timer id. A timer of a rule gone from the ruleset does nothing."""
        if timer is None:
            return (0, 0, 0.0, 0, "")
        if timer.kind == SEGMENT_CHECK:
            return (0, 0, 0.0, 0, timer.id)
        rank = self.rank.get(timer.rule, -1)
        order = timer.payload.get("order") if timer.kind == "deliver" else None
        if order:
            return (1, rank, float(order[0]), int(order[1]), timer.id)
        return (1, rank, timer.due, 0, timer.id)

    def _segments_current(self, state: ContactState, now: float) -> bool:
        """Whether the segments this engine last evaluated for `state` still hold, as long
        as its data does not change (the caller checked the mark)."""
        if self._segments_each_event:
            return False
        check = state.timers.get(SEGMENT_CHECK)
        # The timer checks one second after a `count` window drops an event (and after a
        # time a condition compares strictly): within that second, events check too.
        return check is None or check.due - 1.0 > now

    # ------------------------------------------------------------------ firing a rule

    def fire_rule(self, ctx: Context, rule: Rule, b: Mapping[str, Event], trigger_id: str) -> None:
        """The trigger matched: check `if` and the limit, record the firing, run the steps."""
        condition = rule.condition
        if condition is not None and condition(b, ctx.traits, ctx.now, ctx.state) is not True:
            return
        self.fire_allowed(ctx, rule, b, trigger_id)

    def fire_allowed(
        self, ctx: Context, rule: Rule, b: Mapping[str, Event], trigger_id: str
    ) -> None:
        """`fire_rule` once the rule's `if` held: the limit, then the steps."""
        state = ctx.state
        limit = rule.limit
        name = rule.name
        if limit is not None:
            times = state.firings.get(name)
            if times is None:
                times = state.firings[name] = []
            if limit.per is None:
                allowed = len(times) < limit.count
            else:
                allowed = allowed_by_cap(times, limit.count, limit.per, ctx.now)
            if not allowed:
                if self.trace:
                    suppressed_preview(ctx, Firing(rule, b, trigger_id))
                else:
                    count_limited(ctx, rule, self._held_back.get(name))
                return
            times.append(ctx.now)
        counts = ctx.d.rule_counts  # `count_rule`, inline: this runs for every firing
        key = (name, "fired")
        counts[key] = counts.get(key, 0) + 1
        run_steps(self, ctx, Firing(rule, b, trigger_id), 0)

    # ------------------------------------------------------------------ per event

    def _process(self, ctx: Context, e: Event, merge_from: ContactState | None = None) -> None:
        state = ctx.state
        traits = ctx.traits
        was_new = "stage" not in traits
        if was_new:
            traits.setdefault("score", 0)
            traits["stage"] = "prospect"
            traits.setdefault("first_seen", e.timestamp)
            traits.setdefault("segments", [])
        if e.inbound:
            last = state.last_inbound
            if last is None or e.ts >= last.ts:
                state.last_inbound = e
                traits["last_seen"] = e.timestamp
                for name, within, timer_id in self._inactive:
                    # An armed timer is left as it is: when it falls due it moves on to
                    # D after the latest inbound event (a busy contact costs nothing).
                    if timer_id not in state.timers:
                        arm_event_timer(ctx, name, "inactive", e.ts + within, e)
        typ = e.type
        plan = self._plans.get(typ)
        if plan is not None:
            if plan.special:
                self._special(ctx, e, merge_from, was_new)
            base = {"event": e, typ: e}
            if plan.windows:
                now = ctx.now
                for w in plan.windows:
                    where = w.where
                    if where is None or where(base, traits, now, state) is True:
                        state.add_to_window(w.id, e.ts, w.horizon)
                        if w.id in self.segment_windows:
                            ctx.changes += 1
            held: list[HeldFiring] | None = None
            if self.segments and ctx.segments_at != ctx.changes:
                # the event's own changes (traits, windows) count for its rules' `contact in`;
                # the `entered`/`left` rules it causes take turns with the event's rules
                held = ctx.held = []
                reevaluate(self, ctx, e)
                ctx.held = None
            if plan.exits:
                self._run_exits(ctx, e, plan.exits)
            if plan.goals:
                self._run_goals(ctx, e, plan.goals)
            entries = plan.entries
            if entries or held:
                index = plan.index
                run_triggers(
                    self,
                    ctx,
                    e,
                    entries if index is None else index.select(e.properties),
                    base,
                    held=held or None,
                )
        if self.segments and ctx.segments_at != ctx.changes:
            reevaluate(self, ctx, e)

    def _special(
        self, ctx: Context, e: Event, merge_from: ContactState | None, was_new: bool
    ) -> None:
        typ = e.type
        if typ == "identify":
            self._identify(ctx, e, merge_from, was_new)
        elif typ == "unsubscribed":
            change_trait(self, ctx, "consent_email", False, rule=None, cause=e.id)
        else:
            ctx.state.engagement[_ENGAGEMENT[typ]] = e.ts

    def _identify(
        self, ctx: Context, e: Event, merge_from: ContactState | None, was_new: bool
    ) -> None:
        state = ctx.state
        traits = ctx.traits
        if (
            merge_from is not None
            and merge_from is not state
            and merge_from.contact_id != state.contact_id
            and merge_from.merged_into is None
        ):
            before = (traits.get("score"), traits.get("stage"))
            earlier = dict(traits) if self.trace else None
            moved = merge_contact(state, merge_from, known_is_new=was_new)
            ctx.d.timers.extend(moved)
            ctx.changes += 1
            if earlier is not None:
                ctx.record("merge", None, {"from": merge_from.contact_id})
                for name in sorted(traits.keys() | earlier.keys()):  # score, stage: below
                    old, new = earlier.get(name), traits.get(name)
                    if name not in ("score", "stage") and (
                        old != new or type(old) is not type(new)
                    ):
                        ctx.record("trait", None, {"field": name, "from": old, "to": new})
            after = (traits.get("score"), traits.get("stage"))
            if after != before:
                # Report the merged score and stage as changes, like any other.
                traits["score"], traits["stage"] = before
                cause = e.id + "/merge"
                change_trait(self, ctx, "score", after[0], rule=None, cause=cause)
                change_trait(self, ctx, "stage", after[1], rule=None, cause=cause)
        incoming = e.traits
        if incoming:
            cause = e.id + "/identify"
            for key, value in incoming.items():
                # `last_seen` is the latest inbound event's (this one's, by now), not a trait
                if key != "last_seen" and given_trait_fits(key, value):
                    change_trait(self, ctx, key, value, rule=None, cause=cause)

    def _run_exits(self, ctx: Context, e: Event, rules: tuple[Rule, ...]) -> None:
        typ = e.type
        for rule in rules:
            runs: list[Match] = []  # exits that judge each pending run by its bindings
            cancelled = 0
            for m in rule.exits:
                if m.event != typ:
                    continue
                if m.per_run:
                    runs.append(m)
                    continue
                where = m.where
                if where is None or where(bind(m, e), ctx.traits, ctx.now, ctx.state) is True:
                    cancelled = cancel_rule_timers(ctx, rule.name, _EXIT_CANCELS)
                    runs = []
                    break
            if runs:
                exits = [(m, bind(m, e)) for m in runs]
                ended = partial(_ends_its_run, exits, ctx)
                cancelled = cancel_rule_timers(ctx, rule.name, _EXIT_CANCELS, ended)
            if cancelled and self.trace:
                ctx.record("exit", rule.name, {"event_id": e.id, "cancelled": cancelled})

    def _run_goals(self, ctx: Context, e: Event, rules: tuple[Rule, ...]) -> None:
        """The latest rule that sent to the contact within its goal's window converts (last
        touch: each goal event counts, so a second order within the window counts again)."""
        last_send = ctx.state.last_send
        winner: Rule | None = None
        latest = float("-inf")
        for rule in rules:
            goal = rule.goal
            if goal is None or goal.match.event != e.type:
                continue
            sent = last_send.get(rule.name)
            if sent is None or sent <= latest or not 0 <= e.ts - sent <= goal.within:
                continue
            where = goal.match.where
            if where is None or where(bind(goal.match, e), ctx.traits, ctx.now, ctx.state) is True:
                winner, latest = rule, sent
        if winner is None:
            return
        record = ctx.make_record("conversion", winner.name, {"event_id": e.id})
        ctx.d.conversions.append(record)
        count_rule(ctx.d, winner.name, "converted")
        if self.trace:
            ctx.d.trace.append(record)

    def _drain(self, ctx: Context) -> None:
        """Process emitted events in order, each right after the one that caused it."""
        queue = ctx.queue
        if queue is None:
            return
        i = 0
        while i < len(queue):
            event, depth = queue[i]
            i += 1
            if depth > self.max_cascade:
                ctx.record("cascade_limit", None, {"event": event.type, "event_id": event.id})
                continue
            # Not recorded in `seen`: an emitted event's id is unique to its cause (the
            # event, rule and step), and it exists only inside this call.
            ctx.depth = depth
            self._process(ctx, event)
        ctx.queue = None
        ctx.depth = 0

    def _prune_seen(self, state: ContactState, now: float) -> None:
        seen = state.seen
        cutoff = now - self.dedup_seconds
        if next(iter(seen.values())) < cutoff - self._seen_slack:
            state.seen = {k: ts for k, ts in seen.items() if ts >= cutoff}
            # what is older than the cutoff can no longer be told from a repeat: from now on
            # it counts as one (`handle`)
            floor = state.seen_floor
            state.seen_floor = cutoff if floor is None else max(floor, cutoff)
