"""Timing: durations, times of day, quiet hours and limits."""

from __future__ import annotations

from collections.abc import Iterator

from .. import ast
from ..codes import diagnostic
from ..diagnostics import Diagnostic
from .context import Context
from .walk import decl_expressions, subexpressions

MAX_DAYS = 400  # tests run timers up to 400 days after their last event


def check_timing(ruleset: ast.Ruleset, ctx: Context) -> list[Diagnostic]:
    """Zero and overlong durations where something waits or counts, impossible times of day,
    empty quiet hours, zero limits and counts.

    >>> policy quiet hours 21:00-24:00         # bad-time
    >>> rule r
    >>>     when signed_up
    >>>     then
    >>>         wait 0s                        # bad-duration
    >>>         score += 1
    >>>     limit 0 per 1d                     # bad-limit
    >>> end
    """
    out: list[Diagnostic] = []
    for decl in ruleset.decls():
        for what, duration in _durations(decl):
            out += _duration(what, duration)
        for start, end in _quiet_periods(decl):
            out += _time_of_day(start) + _time_of_day(end)
            if (start.hour, start.minute) == (end.hour, end.minute):
                out.append(
                    diagnostic(
                        "empty-quiet-hours",
                        "quiet hours that start when they end are empty",
                        end.span,
                        "",
                        "to turn quiet hours off for a rule, write `no quiet hours`",
                    )
                )
        out += _counts(decl)
    return out


def _durations(decl: ast.Decl) -> Iterator[tuple[str, ast.Duration]]:
    """Every duration that sets how long something waits, lasts or counts back."""
    if isinstance(decl, ast.ChannelPolicy):
        yield "a policy's window", decl.per
    elif isinstance(decl, ast.Rule):
        trigger = decl.trigger
        if isinstance(trigger, ast.FollowedBy | ast.NotFollowedBy | ast.Repeated):
            yield "a trigger's window", trigger.within
        elif isinstance(trigger, ast.Inactive):
            yield "`inactive for`", trigger.duration
        for step in decl.steps:
            if isinstance(step, ast.Wait):
                yield "a wait", step.duration
        for clause in decl.clauses:
            if isinstance(clause, ast.Limit) and clause.per is not None:
                yield "a limit's window", clause.per
            elif isinstance(clause, ast.Goal):
                yield "a goal's window", clause.within
    for count in _count_nodes(decl):
        yield "a count's window", count.within


def _count_nodes(decl: ast.Decl) -> Iterator[ast.Count]:
    for root in decl_expressions(decl):
        for expr in subexpressions(root):
            if isinstance(expr, ast.Count):
                yield expr


def _duration(what: str, duration: ast.Duration) -> list[Diagnostic]:
    if duration.amount == 0:
        return [
            diagnostic(
                "bad-duration",
                f"{what} cannot be zero",
                duration.span,
                "",
                "durations are a whole number above 0 and a unit: 30s, 15m, 2h, 7d, 2w",
            )
        ]
    days = duration.seconds / 86400
    if days > MAX_DAYS:
        return [
            diagnostic(
                "long-duration",
                f"{what} of {duration.amount}{duration.unit} is over {MAX_DAYS} days"
                + ("" if duration.unit == "d" else f" ({days:,.0f} days)"),
                duration.span,
                "",
                "check the unit: d is days, w is weeks",
            )
        ]
    return []


def _quiet_periods(decl: ast.Decl) -> Iterator[tuple[ast.TimeOfDay, ast.TimeOfDay]]:
    if isinstance(decl, ast.QuietPolicy):
        yield decl.start, decl.end
    elif isinstance(decl, ast.Rule):
        for clause in decl.clauses:
            if isinstance(clause, ast.QuietHours) and clause.start and clause.end:
                yield clause.start, clause.end


def _time_of_day(t: ast.TimeOfDay) -> list[Diagnostic]:
    if t.hour <= 23 and t.minute <= 59:
        return []
    if (t.hour, t.minute) == (24, 0):
        message = "24:00 is not a time of day"
        note = "midnight is 00:00"
    else:
        message = f"{t.hour:02d}:{t.minute:02d} is not a time of day"
        note = "times of day run from 00:00 to 23:59"
    return [diagnostic("bad-time", message, t.span, "", note)]


def _counts(decl: ast.Decl) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    if isinstance(decl, ast.ChannelPolicy) and decl.count == 0:
        out.append(
            diagnostic(
                "bad-limit",
                f"a limit of 0 would block every {decl.channel.value}",
                decl.span,
                "",
                "to stop sending on a channel, remove the sends",
            )
        )
    elif isinstance(decl, ast.Rule):
        for clause in decl.clauses:
            if isinstance(clause, ast.Limit) and clause.count == 0:
                out.append(
                    diagnostic(
                        "bad-limit",
                        "with `limit 0` the rule could never fire",
                        clause.span,
                        "",
                        "the limit is how many times the rule may fire per window: at least 1",
                    )
                )
        if isinstance(decl.trigger, ast.Repeated) and decl.trigger.count == 0:
            out.append(
                diagnostic(
                    "bad-limit",
                    "`0 ... within` can never happen: the event that fires the rule counts too",
                    decl.trigger.span,
                    "",
                    "to act when something did not happen, use `not followed by` or `count(...)`",
                )
            )
    return out
