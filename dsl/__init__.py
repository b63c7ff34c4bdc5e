"""The Nudge rule language: text -> checked syntax tree -> compiled plan.

The pipeline, one plain function per stage:

    parse(Source) -> (RuleFile, diagnostics)
    check(Ruleset) -> Checked                  (diagnostics in `Checked.diagnostics`)
    compile_ruleset(Checked) -> RuleSet        (the plan the engine runs)

`load_ruleset(paths)` runs all three over `.rules` files on disk. This package imports nothing
of the engine or the connectors.
"""

from .diagnostics import Diagnostic, Severity
from .load import LoadResult, find_rule_files, load_ruleset, load_sources
from .parse import parse
from .source import Source, Span

__all__ = [
    "Diagnostic",
    "LoadResult",
    "Severity",
    "Source",
    "Span",
    "find_rule_files",
    "load_ruleset",
    "load_sources",
    "parse",
]
