"""Per-event-type tables, built once per ruleset, so an event costs one look-up to find all it
can affect.

A `TypePlan` holds, for one event type: whether the engine treats it specially (`identify`,
`unsubscribed`, engagement), the windows it may enter, the rules it may exit or convert, and
one trigger `Entry` per rule whose trigger involves the type, in firing order.

Big rulesets: when many `event` triggers of a type carry a `Match.key` (a test such as
`E.sku == "p-1"` or `E.value > 100` that their `where` requires), a `RuleIndex` picks the
rules whose key can hold from the event's properties, so the others' `where` is never run.
The index only leaves out rules whose `where` cannot be true; the chosen ones still run their
whole `where`, in firing order.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from typing import Any

from nudge.dsl.plan import Fn, MatchKey, Rule, RuleSet, Window

__all__ = [
    "EVENT",
    "FOLLOWED_BY",
    "INDEX_MIN_KEYED",
    "NOT_FOLLOWED_BY",
    "REPEATED",
    "Entry",
    "RuleIndex",
    "TypePlan",
    "type_plans",
]

# Entry codes: what a rule's trigger does with an event of the type.
EVENT, FOLLOWED_BY, NOT_FOLLOWED_BY, REPEATED = 0, 1, 2, 3
_CODES = {"event": EVENT, "followed_by": FOLLOWED_BY, "not_followed_by": NOT_FOLLOWED_BY}

# (code, rule, where, alias, condition), the last three for EVENT and REPEATED entries only
# (else None): the match's `where`; its alias when it differs from the event type (None: the
# bindings shared by every match do); the rule's `if`.
Entry = tuple[int, Rule, Fn | None, str | None, Fn | None]

# An index costs about as much as scanning a few `where`s: below this many keyed rules of a
# type, scanning is as fast.
INDEX_MIN_KEYED = 8


class TypePlan:
    """What an event of one type can affect."""

    __slots__ = ("entries", "exits", "goals", "index", "special", "windows")

    def __init__(
        self,
        special: bool,
        windows: tuple[Window, ...],
        exits: tuple[Rule, ...],
        goals: tuple[Rule, ...],
        entries: tuple[Entry, ...],
    ) -> None:
        self.special = special
        self.windows = windows
        self.exits = exits
        self.goals = goals
        self.entries = entries
        self.index = RuleIndex.build(entries)


def type_plans(ruleset: RuleSet, special: frozenset[str]) -> dict[str, TypePlan]:
    """The plan of every event type the ruleset (or the engine itself) reacts to."""
    types = {
        *ruleset.by_event,
        *ruleset.exits_by_event,
        *ruleset.goals_by_event,
        *ruleset.windows_by_event,
        *special,
    }
    return {
        typ: TypePlan(
            typ in special,
            ruleset.windows_by_event.get(typ, ()),
            ruleset.exits_by_event.get(typ, ()),
            ruleset.goals_by_event.get(typ, ()),
            tuple(_entries(typ, ruleset.by_event.get(typ, ()))),
        )
        for typ in sorted(types)
    }


def _entries(typ: str, rules: tuple[Rule, ...]) -> list[Entry]:
    out: list[Entry] = []
    for rule in rules:
        t = rule.trigger
        first = t.first
        if t.kind in ("event", "repeated"):
            if first is None or first.event != typ or (t.kind == "repeated" and not t.window):
                continue
            code = EVENT if t.kind == "event" else REPEATED
            alias = None if first.binding == typ else first.binding
            out.append((code, rule, first.where, alias, rule.condition))
        elif t.kind in _CODES:
            out.append((_CODES[t.kind], rule, None, None, None))
    return out


class RuleIndex:
    """Picks the entries of one event type whose key can hold, in firing order.

    Entries without a key are always picked. A key's value may be a string (never one that
    reads as a time: only an equal string equals it) or a number (an ISO 8601 string may equal
    or order against it, as a time: such an event picks every rule keyed on that field).
    """

    __slots__ = ("always", "bounds", "entries", "equals")

    def __init__(
        self,
        entries: tuple[Entry, ...],
        always: list[int],
        equals: list[tuple[str, dict[str, list[int]], dict[float, list[int]], list[int]]],
        bounds: list[tuple[str, str, list[float], list[int]]],
    ) -> None:
        self.entries = entries
        self.always = always
        # (field, positions by string, positions by number, every number-keyed position)
        self.equals = equals
        # (field, op, constants in ascending order, the positions in the same order)
        self.bounds = bounds

    @classmethod
    def build(cls, entries: tuple[Entry, ...]) -> RuleIndex | None:
        """An index over the entries, or None when there are too few keys to be worth it."""
        always: list[int] = []
        keyed: list[tuple[int, MatchKey]] = []
        for i, (code, rule, *_) in enumerate(entries):
            first = rule.trigger.first
            key = first.key if code == EVENT and first is not None else None
            if key is None:
                always.append(i)
            else:
                keyed.append((i, key))
        if len(keyed) < INDEX_MIN_KEYED:
            return None
        strings: dict[str, dict[str, list[int]]] = {}
        numbers: dict[str, dict[float, list[int]]] = {}
        bounds: dict[tuple[str, str], list[tuple[float, int]]] = {}
        for i, key in keyed:
            constant = key.value
            if key.op == "==":
                if isinstance(constant, str):
                    strings.setdefault(key.field, {}).setdefault(constant, []).append(i)
                else:
                    numbers.setdefault(key.field, {}).setdefault(constant, []).append(i)
            else:
                bounds.setdefault((key.field, key.op), []).append((float(key.value), i))
        equals = []
        for field in sorted({*strings, *numbers}):
            by_number = numbers.get(field, {})
            every = sorted(i for group in by_number.values() for i in group)
            equals.append((field, strings.get(field, {}), by_number, every))
        ordered = []
        for (field, op), pairs in sorted(bounds.items()):
            pairs.sort()
            ordered.append((field, op, [k for k, _ in pairs], [i for _, i in pairs]))
        return cls(entries, always, equals, ordered)

    def select(self, properties: Mapping[str, Any]) -> list[Entry]:
        """The entries to run for an event with these properties, in firing order."""
        found = list(self.always)
        for field, by_string, by_number, every_number in self.equals:
            value: Any = properties.get(field)
            t = type(value)
            if t is str:
                hit = by_string.get(value)
                if hit:
                    found += hit
                if every_number:  # an ISO string equals the time it spells
                    found += every_number
            elif t is int or t is float:
                hit = by_number.get(value)
                if hit:
                    found += hit
        for field, op, keys, positions in self.bounds:
            value = properties.get(field)
            t = type(value)
            if t is int or t is float:
                found += _in_bound(op, keys, positions, value)
            elif t is str:  # an ISO string orders as the time it spells
                found += positions
        found.sort()
        entries = self.entries
        return [entries[i] for i in found]


def _in_bound(op: str, keys: list[float], positions: list[int], value: float) -> list[int]:
    """The positions whose `value OP key` holds (keys ascending)."""
    if op == ">":  # key < value
        return positions[: bisect_left(keys, value)]
    if op == ">=":  # key <= value
        return positions[: bisect_right(keys, value)]
    if op == "<":  # key > value
        return positions[bisect_right(keys, value) :]
    return positions[bisect_left(keys, value) :]  # <=: key >= value
