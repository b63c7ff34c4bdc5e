"""Merging an anonymous contact into a known one (an `identify` with `anonymous_id`).

Nothing of the visitor's history is lost: traits (the known contact's values win, except
over the defaults of a contact created by this very event), score (added), windows, firings,
sends, seen ids, pending first events, goals, engagement and pending timers move over.
"""

from __future__ import annotations

from typing import Any

from nudge.dsl.compile.runtime import number

from .events import parse_time
from .state import ContactState, Timer

__all__ = ["ENGINE_TRAITS", "merge_contact"]

ENGINE_TRAITS = ("score", "stage", "first_seen", "last_seen", "segments")


def _time(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            return parse_time(value)
        except ValueError:
            return None
    return None


def _merge_times(into: dict[str, list[float]], other: dict[str, list[float]]) -> None:
    for key, times in other.items():
        mine = into.get(key)
        into[key] = sorted(times) if mine is None else sorted([*mine, *times])


def _merge_traits(known: ContactState, anon: ContactState, known_is_new: bool) -> None:
    traits = known.traits
    theirs = anon.traits
    for key, value in theirs.items():
        if key in ENGINE_TRAITS:
            continue
        if key not in traits:
            traits[key] = value
    score = traits.get("score", 0)
    other = theirs.get("score", 0)
    if _is_number(score) and _is_number(other):
        total = number(score + other)
        if total is not None:
            traits["score"] = total
    if "stage" in theirs and (known_is_new or _further(theirs["stage"], traits.get("stage"))):
        traits["stage"] = theirs["stage"]
    for key, pick_earlier in (("first_seen", True), ("last_seen", False)):
        mine, their = traits.get(key), theirs.get(key)
        mine_t, their_t = _time(mine), _time(their)
        if their_t is not None and (
            mine_t is None or (their_t < mine_t if pick_earlier else their_t > mine_t)
        ):
            traits[key] = their


# The lifecycle, in order: a merge keeps the further of the two contacts' stages.
LIFECYCLE = ("prospect", "visitor", "lead", "customer")


def _further(theirs: Any, mine: Any) -> bool:
    """Whether the visitor's stage is further along the lifecycle than the known contact's
    (a stage of the ruleset's own, outside it, is never replaced nor taken over)."""
    if theirs not in LIFECYCLE or (mine is not None and mine not in LIFECYCLE):
        return False
    return mine is None or LIFECYCLE.index(theirs) > LIFECYCLE.index(mine)


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def merge_contact(known: ContactState, anon: ContactState, *, known_is_new: bool) -> list[Timer]:
    """Move `anon` into `known` in place; mark `anon` merged and empty it. Returns the timers
    that moved (with their new contact and, on a clash of ids, a new id)."""
    _merge_traits(known, anon, known_is_new)
    known.seen.update(anon.seen)
    if anon.seen_floor is not None:  # the later floor: nothing either may have seen runs again
        floor = known.seen_floor
        known.seen_floor = anon.seen_floor if floor is None else max(floor, anon.seen_floor)
    _merge_times(known.windows, anon.windows)
    _merge_times(known.sends, anon.sends)
    _merge_times(known.firings, anon.firings)
    for rule, events in anon.pending.items():
        known.pending[rule] = sorted([*known.pending.get(rule, ()), *events], key=lambda e: e.ts)
    for rule, ts in anon.last_send.items():
        if ts > known.last_send.get(rule, float("-inf")):
            known.last_send[rule] = ts
    for channel, ts in anon.engagement.items():
        if ts > known.engagement.get(channel, float("-inf")):
            known.engagement[channel] = ts
    if anon.last_inbound is not None and (
        known.last_inbound is None or anon.last_inbound.ts > known.last_inbound.ts
    ):
        known.last_inbound = anon.last_inbound
    moved = _move_timers(known, anon)
    anon.merged_into = known.contact_id
    anon.traits = {}
    anon.firings, anon.sends, anon.windows = {}, {}, {}
    anon.pending, anon.timers, anon.last_send, anon.engagement = {}, {}, {}, {}
    anon.last_inbound = None
    return moved


def _move_timers(known: ContactState, anon: ContactState) -> list[Timer]:
    """`nfb:` and `inactive:` timers are one per rule: the later one stays. Others keep their
    id (it is unique: it holds an event or action id) or, on a clash, get `~<anon id>`."""
    moved: list[Timer] = []
    cid = known.contact_id
    for tid, timer in anon.timers.items():
        payload = timer.payload
        action = payload.get("action")
        if action is not None:
            action.contact_id = cid
        mine = known.timers.get(tid)
        new_id = tid
        if mine is not None:
            if timer.kind in ("nfb", "inactive"):
                if mine.due >= timer.due:
                    continue
            else:
                new_id = f"{tid}~{anon.contact_id}"
        out = Timer(new_id, cid, timer.rule, timer.kind, timer.due, payload)
        known.timers[new_id] = out
        moved.append(out)
    return moved
