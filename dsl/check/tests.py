"""Test blocks: timestamps, the order of events, contacts, expectations and test data."""

from __future__ import annotations

from datetime import datetime

from .. import ast
from ..codes import diagnostic
from ..diagnostics import Diagnostic, did_you_mean, hint
from .context import ACTION_KINDS, CONTACT_BUILTINS, ENGINE_READ_TRAITS, Context
from .types import article, assignable


def check_tests(ruleset: ast.Ruleset, ctx: Context) -> list[Diagnostic]:
    """Timestamps that are not real times, events out of order, contacts never given, unknown
    action kinds and targets, test data that does not fit the schemas.

    >>> test "t"
    >>>     at 2026-11-20T10:00:00Z c1 signed_up
    >>>     at 2026-11-20T09:00:00Z c1 page_viewed    # unordered-events
    >>>     expect c1 emial "welcome_1"                # unknown-action-kind
    >>> end
    """
    targets = _targets(ruleset)
    out: list[Diagnostic] = []
    for decl in ruleset.decls():
        if isinstance(decl, ast.Test):
            out += _test(decl, ctx, targets)
    return out


def parse_timestamp(stamp: ast.Timestamp) -> datetime | str:
    """The time a test timestamp names, or why it names none."""
    try:
        moment = datetime.fromisoformat(stamp.text)
    except ValueError as exc:
        return str(exc)
    if moment.tzinfo is None:
        return "it has no offset"
    return moment


def _test(test: ast.Test, ctx: Context, targets: dict[str, set[str]]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    given: dict[str, ast.Given] = {}
    known: set[str] = set()  # contacts given, identified, or merged in this test
    for item in test.items:
        if isinstance(item, ast.Given):
            known.add(item.contact.value)
        elif isinstance(item, ast.TestEvent) and item.event.value == "identify":
            known.add(item.contact.value)
            if item.data is not None:
                for entry in item.data.entries:
                    value = entry.value
                    if entry.key.value == "anonymous_id" and isinstance(value, ast.Literal):
                        known.add(str(value.value))
    previous: tuple[datetime, ast.TestEvent] | None = None
    has_expect = False
    for item in test.items:
        if isinstance(item, ast.Given):
            name = item.contact.value
            if name in given:
                out.append(
                    diagnostic(
                        "duplicate-contact",
                        f"the contact `{name}` is given twice in this test",
                        item.contact.span,
                        "",
                        f"first given at {given[name].span}",
                    )
                )
            given[name] = item
            if item.traits is not None:
                out += _data(item.traits, ctx.contact_fields(), "contact", ctx, traits=True)
        elif isinstance(item, ast.TestEvent):
            moment = _timestamp(item.at, out)
            if isinstance(moment, datetime):
                if previous is not None and moment < previous[0]:
                    out.append(
                        diagnostic(
                            "unordered-events",
                            f"this event at {item.at.text} comes before the one above it "
                            f"({previous[1].at.text})",
                            item.at.span,
                            "",
                            "a test's events are a timeline: write them in time order",
                        )
                    )
                previous = (moment, item)
            out += _contact_ref(item.contact, known, given)
            if item.data is not None:
                if item.event.value == "identify":
                    fields = ctx.contact_fields()
                    out += _data(item.data, fields, "contact", ctx, traits=True)
                else:
                    fields = ctx.event_schemas.get(item.event.value)
                    out += _data(item.data, fields, f"event {item.event.value}", ctx, traits=False)
        elif isinstance(item, ast.Expect):
            has_expect = True
            if item.at is not None:
                _timestamp(item.at, out)
            if item.contact is not None:
                out += _contact_ref(item.contact, known, given)
            out += _expect(item, targets)
        elif isinstance(item, ast.ExpectContact):
            has_expect = True
            if item.at is not None:
                _timestamp(item.at, out)
            out += _contact_ref(item.contact, known, given)
    if not has_expect:
        out.append(
            diagnostic(
                "no-expectations",
                "this test expects nothing, so it always passes",
                test.name.span,
                "",
                "add `expect ...` lines",
            )
        )
    return out


def _timestamp(stamp: ast.Timestamp, out: list[Diagnostic]) -> datetime | None:
    moment = parse_timestamp(stamp)
    if isinstance(moment, datetime):
        return moment
    out.append(
        diagnostic(
            "bad-timestamp",
            f"`{stamp.text}` is not a valid time: {moment}",
            stamp.span,
            "",
            "write ISO 8601 with an offset, e.g. 2026-11-20T10:00:00Z",
        )
    )
    return None


def _contact_ref(name: ast.Name, known: set[str], given: dict[str, ast.Given]) -> list[Diagnostic]:
    """A contact a test gives none of is an anonymous visitor; in a test that gives contacts,
    an id it never gives nor identifies is most likely a typo."""
    if not given or name.value in known:
        return []
    return [
        diagnostic(
            "unknown-contact",
            f"the contact `{name.value}` is not given in this test{hint(name.value, given)}",
            name.span,
            "",
            f"this test gives {', '.join(f'`{g}`' for g in given)}",
        )
    ]


# What an expectation may name: an action's kind, or a rule's goal conversion.
EXPECT_KINDS = (*ACTION_KINDS, "conversion")


def _targets(ruleset: ast.Ruleset) -> dict[str, set[str]]:
    """What the rules can produce, by action kind: templates, webhook and audience names,
    contents."""
    found: dict[str, set[str]] = {kind: set() for kind in EXPECT_KINDS}
    for decl in ruleset.decls():
        if not isinstance(decl, ast.Rule):
            continue
        if decl.clause(ast.Goal) is not None:
            found["conversion"].add(decl.name.value)
        for step in decl.steps:
            if isinstance(step, ast.Send):
                target = str(step.target.value)
                channel = step.channel.value
                kinds = ("email", "sms") if channel == "best" else (channel,)
                for kind in kinds:
                    found.setdefault(kind, set()).add(target)
            elif isinstance(step, ast.Audience):
                kind = "audience_add" if step.add else "audience_remove"
                found[kind].add(str(step.audience.value))
            elif isinstance(step, ast.Show):
                found["show"].add(str(step.content.value))
    return found


def _expect(item: ast.Expect, targets: dict[str, set[str]]) -> list[Diagnostic]:
    kind = item.kind.value
    if kind not in EXPECT_KINDS:
        return [
            diagnostic(
                "unknown-action-kind",
                f"unknown action kind `{kind}`{hint(kind, EXPECT_KINDS)}",
                item.kind.span,
                "",
                "action kinds are email, sms, webhook, audience_add, audience_remove and show "
                '(and `conversion "<rule>"` for a goal)',
            )
        ]
    if item.slot is not None and kind != "show":
        return [
            diagnostic(
                "unknown-action-kind",
                f'`in "<slot>"` goes with `show`, not `{kind}`',
                item.slot.span,
                "",
                'write `expect show "<content>" in "<slot>"`',
            )
        ]
    if item.target is None:
        return []
    target = str(item.target.value)
    if target in targets[kind]:
        return []
    what = {
        "email": "sends the email",
        "sms": "sends the sms",
        "webhook": "calls the webhook",
        "audience_add": "adds to the audience",
        "audience_remove": "removes from the audience",
        "show": "shows",
        "conversion": "with a `goal` is named",
    }[kind]
    consequence = "always passes" if item.negated else "always fails"
    best = did_you_mean(target, targets[kind])
    suggestion = f' (did you mean "{best}"?)' if best else ""
    return [
        diagnostic(
            "unknown-target",
            f'no rule {what} "{target}"{suggestion}',
            item.target.span,
            "",
            f"so this expectation {consequence}",
        )
    ]


def _data(
    data: ast.ObjectExpr,
    fields: dict[str, str] | None,
    owner: str,
    ctx: Context,
    *,
    traits: bool,
) -> list[Diagnostic]:
    """Keys of test data against a schema (when there is one), and literal values against
    their declared types."""
    if fields is None:
        return []
    out: list[Diagnostic] = []
    for entry in data.entries:
        key = entry.key.value
        if traits and (key in CONTACT_BUILTINS or key in ENGINE_READ_TRAITS) and key not in fields:
            continue  # the engine reads them whatever the schema says
        if traits and key == "anonymous_id":
            continue
        if key not in fields:
            out.append(
                diagnostic(
                    "test-data",
                    f"{owner} has no field `{key}`{hint(key, fields)}",
                    entry.key.span,
                    "",
                    "the rules cannot see it; add it to the schema or fix the name",
                )
            )
            continue
        t = ctx.types.get(id(entry.value), "any")
        if not assignable(fields[key], t):
            out.append(
                diagnostic(
                    "test-data",
                    f"`{key}` of {owner} is {article(fields[key])}, not {article(t)}",
                    entry.value.span,
                )
            )
    return out
