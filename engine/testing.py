"""`nudge test`: run a ruleset's own `test` blocks (LANGUAGE.md section 6).

Each test runs on a fresh MemoryStore: the given contacts (their traits plus the engine's
defaults), then the events in order (ids `<test name>#<n>`, the clock at each event's time).
After the last event, timers keep firing in due order until none is left or 400 days have
passed (an expectation with a later `at` still sees its time). An `identify` event's
`anonymous_id` entry, if any, names the anonymous contact to merge.

An expectation without `at` written between two events is checked right after the first of
them, on what has happened so far (a failing one's report says so).

Expectations: an action matches on kind, target (template, endpoint, audience or content),
contact and exact `at` when given, and data containing the given entries. Suppressed actions
never match. `expect [at T] c has <condition>` is evaluated on the contact as it is at T (after
everything at or before T), or at the end.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from nudge.dsl.plan import ExpectAction, ExpectContact, RuleSet, TestCase, TestEvent

from .actions import Action
from .clock import ManualClock
from .decision import Decision
from .engine import Engine
from .events import NOT_INBOUND_TYPES, Event, format_time, identify_fields, parse_time
from .runner import Runner
from .state import ContactState
from .steps import given_trait_fits
from .stores.memory import MemoryStore

__all__ = ["Failure", "TestResult", "format_report", "run_test", "run_tests"]

HORIZON = 400 * 86400.0
_NO_BINDINGS: dict[str, Any] = {}


@dataclass(slots=True)
class Failure:
    expectation: ExpectAction | ExpectContact | None  # None: the test itself broke
    detail: str | None = None  # what the contact was, or the error
    checked: str | None = None  # when an expectation between events was checked


@dataclass(slots=True)
class TestResult:
    case: TestCase
    actions: list[Action] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    suppressed: list[Action] = field(default_factory=list)  # shown with a failure's report

    @property
    def passed(self) -> bool:
        return not self.failures


def run_tests(ruleset: RuleSet) -> list[TestResult]:
    """Run every test of the ruleset, in order."""

    async def all_tests() -> list[TestResult]:
        engine = Engine(ruleset, trace=True)  # traced: a failure's report shows what was suppressed
        return [await run_test(engine, case) for case in ruleset.tests]

    return asyncio.run(all_tests())


def _event(case: TestCase, n: int, te: TestEvent) -> Event:
    data = dict(te.data)
    eid = f"{case.name}#{n}"
    timestamp = format_time(te.at)
    if te.event == "identify":
        anonymous = data.pop("anonymous_id", None)
        anonymous_id = None if anonymous is None or anonymous == te.contact else str(anonymous)
        fields = identify_fields(data, None)
        return Event(eid, "identify", te.contact, te.at, timestamp, fields, data, anonymous_id)
    inbound = te.event not in NOT_INBOUND_TYPES
    return Event(eid, te.event, te.contact, te.at, timestamp, data, inbound=inbound)


async def run_test(engine: Engine, case: TestCase) -> TestResult:
    """Run one test case on a fresh store."""
    result = TestResult(case)
    try:
        await _run(engine, case, result)
    except Exception as exc:  # a bug, not a failing expectation: report it as a failure
        result.failures.append(Failure(None, f"error: {type(exc).__name__}: {exc}"))
    return result


async def _run(engine: Engine, case: TestCase, result: TestResult) -> None:
    store = MemoryStore(partitions=1)
    runner = Runner(engine, store, ManualClock())
    await store.save(_given(case))
    events = [_event(case, n, te) for n, te in enumerate(case.events, start=1)]
    lines = [te.origin.line for te in case.events]
    # An expectation without `at` written between events is checked right after the event
    # before it (at that event's time, before any timer due then), on what has happened so
    # far; one with `at`, or after the last event, once everything has run.
    at_position: dict[int, list[ExpectAction | ExpectContact]] = {}
    at_end: list[ExpectAction | ExpectContact] = []
    for x in case.expects:
        position = next((i for i, line in enumerate(lines) if line > x.origin.line), None)
        if x.at is None and position is not None:
            at_position.setdefault(position - 1, []).append(x)
        elif not isinstance(x, ExpectContact) or x.at is None:
            at_end.append(x)
    timed = sorted(
        (x for x in case.expects if isinstance(x, ExpectContact) and x.at is not None),
        key=lambda x: x.at or 0.0,
    )

    def take(d: Decision) -> None:
        result.actions.extend(d.actions)
        result.actions.extend(map(_conversion, d.conversions))
        result.suppressed.extend(a for a in d.trace if isinstance(a, Action) and a.suppressed)

    async def run_until(t: float, inclusive: bool) -> None:
        """Fire what falls due before `t` (or at it), checking timed expectations on the way."""
        while timed and ((timed[0].at or 0.0) < t or (inclusive and timed[0].at == t)):
            check = timed.pop(0)
            at = check.at or 0.0
            take(await runner.advance(at))
            await _check_contact(store, check, at, result)
        take(await runner.advance(t if inclusive else _before(t)))

    for x in at_position.get(-1, ()):
        await _check(store, x, events[0].ts, result, "before the first event")
    for i, event in enumerate(events):
        await run_until(event.ts, inclusive=False)
        take(await runner.process([event]))
        for x in at_position.get(i, ()):
            when = f"at {format_time(event.ts)}, right after the event of line {lines[i]}"
            await _check(store, x, event.ts, result, when)
    last = events[-1].ts if events else 0.0
    end = max([last + HORIZON, *(x.at or 0.0 for x in case.expects)])
    while True:
        summary = await store.timer_summary()
        if summary.next_due is None or summary.next_due > end:
            break
        await run_until(summary.next_due, inclusive=True)
    if timed:
        await run_until(timed[-1].at or 0.0, inclusive=True)
    now = max(runner.clock.now(), last)
    for x in at_end:
        await _check(store, x, now, result)
    result.failures.sort(key=lambda f: 0 if f.expectation is None else f.expectation.origin.line)


def _conversion(record: dict[str, Any]) -> Action:
    """A goal conversion as `expect conversion "<rule>"` matches it: the rule as its name."""
    rule = str(record["rule"])
    cid, at = str(record["contact_id"]), str(record["at"])
    return Action(f"{record['event_id']}/conversion", rule, cid, "conversion", at, name=rule)


def _before(t: float) -> float:
    return math.nextafter(t, -math.inf)


async def _check(
    store: MemoryStore,
    x: ExpectAction | ExpectContact,
    now: float,
    result: TestResult,
    checked: str | None = None,
) -> None:
    """Check `x` now; `checked` says when, for an expectation between events."""
    failed = len(result.failures)
    if isinstance(x, ExpectContact):
        await _check_contact(store, x, now, result)
    elif not _action_expectation_holds(x, result.actions):
        result.failures.append(Failure(x))
    if checked is not None and len(result.failures) > failed:
        result.failures[-1].checked = checked


def _given(case: TestCase) -> list[ContactState]:
    first_seen: dict[str, str] = {}
    for te in case.events:
        first_seen.setdefault(te.contact, format_time(te.at))
    default_seen = format_time(case.events[0].at) if case.events else None
    states = []
    for cid, traits in case.contacts.items():
        state = ContactState(cid)
        state.traits.update((k, v) for k, v in traits.items() if given_trait_fits(k, v))
        state.traits.setdefault("score", 0)
        state.traits.setdefault("stage", "prospect")
        state.traits.setdefault("segments", [])
        seen = first_seen.get(cid, default_seen)
        if seen is not None:
            state.traits.setdefault("first_seen", seen)
        states.append(state)
    return states


async def _check_contact(
    store: MemoryStore, check: ExpectContact, now: float, result: TestResult
) -> None:
    state = (await store.load([check.contact]))[check.contact]
    while state.merged_into is not None:
        state = (await store.load([state.merged_into]))[state.merged_into]
    if check.condition(_NO_BINDINGS, state.traits, now, state) is not True:
        detail = f"{check.contact} was: {orjson.dumps(state.traits, default=str).decode()}"
        result.failures.append(Failure(check, detail))


def _action_expectation_holds(x: ExpectAction, actions: list[Action]) -> bool:
    found = any(_matches(x, a) for a in actions)
    return not found if x.negated else found


def _matches(x: ExpectAction, a: Action) -> bool:
    if a.kind != x.kind or a.suppressed is not None:
        return False
    if x.target is not None and a.target != x.target:
        return False
    if x.slot is not None and a.slot != x.slot:
        return False
    if x.contact is not None and a.contact_id != x.contact:
        return False
    if x.at is not None and parse_time(a.at) != x.at:
        return False
    if x.data:
        data = a.data
        for key, want in x.data.items():
            if key not in data or not _same(data[key], want):
                return False
    return True


def _same(have: Any, want: Any) -> bool:
    """Equality as the language has it: 1 == 1.0, but true is not 1."""
    if isinstance(have, bool) or isinstance(want, bool):
        return type(have) is type(want) and have == want
    if isinstance(want, dict):
        return (
            isinstance(have, dict)
            and have.keys() == want.keys()
            and all(_same(have[k], want[k]) for k in want)
        )
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(have) == len(want)
            and all(_same(h, w) for h, w in zip(have, want, strict=True))
        )
    return bool(have == want)


# ---------------------------------------------------------------------------- the report


def format_report(results: list[TestResult]) -> str:
    """One line per test; under each failing one, each failing expectation as written with
    its place, then every action of the test (or `no actions`); `N passed, M failed` last."""
    lines: list[str] = []
    for r in results:
        origin = r.case.origin
        if r.passed:
            lines.append(f"ok   {origin.path}:{origin.line}: {r.case.name}")
            continue
        lines.append(f"FAIL {origin.path}:{origin.line}: {r.case.name}")
        for failure in r.failures:
            x = failure.expectation
            if x is not None:
                lines.append(f"    {x.origin.path}:{x.origin.line}: {x.text}")
            if failure.checked is not None:
                lines.append(f"        checked {failure.checked}")
            if failure.detail is not None:
                lines.append(f"        {failure.detail}")
        if r.actions:
            lines.append("    actions that happened:")
            lines.extend(f"        {describe(a)}" for a in r.actions)
        else:
            lines.append("    no actions")
        if r.suppressed:
            lines.append("    suppressed:")
            lines.extend(f"        {describe(a)} ({a.suppressed})" for a in r.suppressed)
    passed = sum(r.passed for r in results)
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines) + "\n"


def describe(a: Action) -> str:
    """`<at> <contact> <kind> "<target>" <data>`, as the report lists actions."""
    target = a.target
    parts = [a.at, a.contact_id, a.kind]
    if target is not None:
        parts.append(orjson.dumps(target).decode())
    if a.kind == "show" and a.slot is not None:
        parts.append(f"in {orjson.dumps(a.slot).decode()}")
    if a.data:
        parts.append(orjson.dumps(a.data).decode())
    return " ".join(parts)
