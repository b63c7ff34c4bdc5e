"""Rules: clauses, sends, and steps or rules that can do nothing."""

from __future__ import annotations

from .. import ast
from ..codes import diagnostic
from ..diagnostics import Diagnostic, hint
from .context import SEND_CHANNELS, Context
from .walk import trigger_matches

_CLAUSE_NAMES: dict[type, str] = {
    ast.Limit: "limit",
    ast.QuietHours: "quiet hours",
    ast.Priority: "priority",
    ast.Goal: "goal",
}


def check_rules(ruleset: ast.Ruleset, ctx: Context) -> list[Diagnostic]:
    """Clauses given twice, send channels and `to`, and rules or steps that do nothing.

    >>> rule r
    >>>     when signed_up
    >>>     if false                         # never-fires
    >>>     then
    >>>         send mail "welcome_1"        # unknown-channel
    >>>         wait 1d                      # useless-wait
    >>>     once
    >>>     limit 1 per 1d                   # duplicate-clause
    >>> end
    """
    out: list[Diagnostic] = []
    for decl in ruleset.decls():
        if isinstance(decl, ast.Rule):
            out += _clauses(decl)
            out += _sends(decl)
            out += _steps(decl)
            out += _never_fires(decl)
            out += _emit_loop(decl)
    return out


def _clauses(rule: ast.Rule) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen: dict[type, ast.Clause] = {}
    for clause in rule.clauses:
        kind = type(clause)
        if kind is ast.ExitOn:
            continue
        if kind in seen:
            name = _CLAUSE_NAMES.get(kind, "clause")
            if kind is ast.Limit:
                name = "limit (or once)"
            out.append(
                diagnostic(
                    "duplicate-clause",
                    f"this rule has a {name} clause already",
                    clause.span,
                    "",
                    f"the first is at {seen[kind].span}",
                )
            )
        else:
            seen[kind] = clause
    # `exit on` cancels pending waits, and emails and texts that quiet hours deferred
    cancellable = any(
        isinstance(s, ast.Wait)
        or (isinstance(s, ast.Send) and s.channel.value in ("email", "sms", "best"))
        for s in rule.steps
    )
    if not cancellable:
        for clause in rule.clauses:
            if isinstance(clause, ast.ExitOn):
                out.append(
                    diagnostic(
                        "useless-exit",
                        "`exit on` does nothing in a rule without `wait` or an email or sms",
                        clause.span,
                        "",
                        "`exit on` cancels the rule's pending waits and the emails and texts "
                        "quiet hours deferred; this rule has neither",
                    )
                )
    # a goal credits a rule that sent something: email, sms or a webhook
    goal = rule.clause(ast.Goal)
    if goal is not None and rule.steps and not any(isinstance(s, ast.Send) for s in rule.steps):
        out.append(
            diagnostic(
                "useless-goal",
                "`goal` never counts in a rule that sends nothing",
                goal.span,
                "",
                "a conversion goes to the latest rule that sent the contact an email, "
                "an sms or a webhook within the goal's window",
            )
        )
    return out


def _sends(rule: ast.Rule) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for step in rule.steps:
        if not isinstance(step, ast.Send):
            continue
        channel = step.channel.value
        if channel not in SEND_CHANNELS:
            out.append(
                diagnostic(
                    "unknown-channel",
                    f"unknown channel `{channel}`{hint(channel, SEND_CHANNELS)}",
                    step.channel.span,
                    "",
                    "send takes email, sms, webhook or best",
                )
            )
        elif channel in _NO_TO and step.to is not None:
            out.append(
                diagnostic(
                    "bad-send", f"`send {channel}` takes no `to`", step.to.span, "", _NO_TO[channel]
                )
            )
    return out


# Sends whose address is not the rule's to choose, and why.
_NO_TO = {
    "webhook": "a webhook goes to the endpoint configured under its name",
    "best": "it goes to the contact's `email` or `phone`, whichever channel it picks",
}


def _always(expr: ast.Expr | None, value: bool) -> bool:
    """Whether a condition is the literal `value` (`null` counts as false)."""
    if not isinstance(expr, ast.Literal):
        return False
    if value:
        return expr.value is True
    return expr.value is False or expr.value is None


def _steps(rule: ast.Rule) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    if not rule.steps:
        out.append(
            diagnostic(
                "no-steps",
                f"the rule `{rule.name.value}` has no steps",
                rule.name.span,
                "",
                "it would fire and do nothing; add steps after `then`",
            )
        )
        return out
    for index, step in enumerate(rule.steps):
        if isinstance(step, ast.StopIf) and _always(step.condition, True):
            rest = rule.steps[index + 1 :]
            if rest:
                out.append(
                    diagnostic(
                        "unreachable",
                        "the steps after `stop if true` never run",
                        rest[0].span,
                        "",
                        f"`stop if true` at {step.span} always ends the run",
                    )
                )
            break
    last = rule.steps[-1]
    if isinstance(last, ast.Wait):
        out.append(
            diagnostic(
                "useless-wait",
                "a `wait` as the last step delays nothing",
                last.span,
                "",
                "a wait delays the steps after it",
            )
        )
    return out


def _never_fires(rule: ast.Rule) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    if _always(rule.condition, False) and rule.condition is not None:
        out.append(
            diagnostic(
                "never-fires",
                f"the rule `{rule.name.value}` never fires: its condition is always false",
                rule.condition.span,
            )
        )
    for index, match in enumerate(trigger_matches(rule.trigger)):
        if not _always(match.where, False) or match.where is None:
            continue
        if isinstance(rule.trigger, ast.NotFollowedBy) and index == 1:
            continue  # nothing can cancel the wait: the rule fires every time
        out.append(
            diagnostic(
                "never-fires",
                f"the rule `{rule.name.value}` never fires: `{match.event.value}` never matches",
                match.where.span,
            )
        )
    return out


def _emit_loop(rule: ast.Rule) -> list[Diagnostic]:
    if rule.clause(ast.Limit) is not None:
        return []
    trigger = rule.trigger
    if isinstance(trigger, ast.OnEvent | ast.Repeated):
        fires_on = trigger.match.event.value
    elif isinstance(trigger, ast.FollowedBy):
        fires_on = trigger.second.event.value
    else:
        return []
    out: list[Diagnostic] = []
    for step in rule.steps:
        if isinstance(step, ast.Emit) and step.event.value == fires_on:
            out.append(
                diagnostic(
                    "emit-loop",
                    f"the rule `{rule.name.value}` fires on `{fires_on}` and emits it",
                    step.event.span,
                    "",
                    "each firing fires the rule again; emit another event, or add a `limit`",
                )
            )
    return out
