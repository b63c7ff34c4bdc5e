"""Reload a ruleset when its files change, without ever running one that fails the check.

`RulesWatcher.poll()` compares a fingerprint of the rules folder (each `.rules` file's path,
size and modification time) with the last one it saw. On a change it loads the ruleset
again: a clean one is returned (the caller swaps it in), one with errors is logged with
its diagnostics and ignored, and the running ruleset stays (LANGUAGE.md section 7).
A change is only acted upon once the folder has been still for `settle` seconds, so an
editor's half-written file is not even tried.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from nudge.dsl import ast
from nudge.dsl.diagnostics import Diagnostic
from nudge.dsl.load import find_rule_files, load_ruleset
from nudge.dsl.plan import RuleSet
from nudge.dsl.render import render_texts

__all__ = ["ExtraCheck", "RulesWatcher", "fingerprint", "load_checked"]

Fingerprint = tuple[tuple[str, int, int], ...]

_log = structlog.get_logger("nudge.engine.rules")


def fingerprint(paths: Sequence[str | Path]) -> Fingerprint:
    """(path, size, mtime in ns) of every `.rules` file under `paths`, in path order."""
    files, _missing = find_rule_files(paths)
    out: list[tuple[str, int, int]] = []
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            continue
        out.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(out)


# Checks beyond the rules files (the message templates), given by the command running the
# engine: the ruleset's syntax in, their diagnostics out.
ExtraCheck = Callable[[ast.Ruleset], list[Diagnostic]]


def load_checked(
    paths: Sequence[str | Path], extra: ExtraCheck | None = None
) -> tuple[RuleSet | None, str]:
    """The compiled ruleset, or None; and the rendered diagnostics (warnings too), if any.
    A folder without `.rules` files fails, as it fails `nudge check`."""
    result = load_ruleset(paths)
    found = list(result.diagnostics)
    if extra is not None and result.ok and result.syntax is not None:
        found += extra(result.syntax)
    text = render_texts(found, result.sources) if found else ""
    if not result.ok or any(d.is_error for d in found):
        return None, text
    return result.ruleset, text


class RulesWatcher:
    """Polls a rules folder; `poll()` returns a new, clean ruleset when the files changed."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        extra: ExtraCheck | None = None,
        settle: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.paths = list(paths)
        self.extra = extra
        self.settle = settle
        self.clock = clock
        self.loaded: Fingerprint = fingerprint(self.paths)
        self._seen: Fingerprint = self.loaded
        self._seen_at = clock()
        self.reloads = 0
        self.failures = 0

    def poll(self) -> RuleSet | None:
        current = fingerprint(self.paths)
        now = self.clock()
        if current != self._seen:
            self._seen, self._seen_at = current, now
            return None  # changed just now: wait until it settles
        if current == self.loaded or now - self._seen_at < self.settle:
            return None
        self.loaded = current
        ruleset, diagnostics = load_checked(self.paths, self.extra)
        if ruleset is None:
            self.failures += 1
            _log.error(
                "rules.reload_rejected",
                paths=[str(p) for p in self.paths],
                reason="the ruleset fails the check; the running one stays",
                diagnostics=diagnostics,
            )
            return None
        self.reloads += 1
        _log.info(
            "rules.reloaded",
            paths=[str(p) for p in self.paths],
            files=len(current),
            rules=len(ruleset.rules),
            warnings=diagnostics or None,
        )
        return ruleset
