"""The compiler: checked syntax to the plan the engine runs.

    compile_ruleset(checked) -> RuleSet

Expressions become Python functions built as `ast` nodes (`codegen.py`) that call only the
helpers of `runtime.py`; `plan_builder.py` assembles rules, triggers, windows and indexes;
`tests_compile.py` turns `test` blocks into test cases.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..plan import RuleSet
from .plan_builder import CheckedLike, build_ruleset
from .tests_compile import CompileError

__all__ = ["CompileError", "compile_ruleset"]


def compile_ruleset(checked: CheckedLike, sources: Mapping[str, str] | None = None) -> RuleSet:
    """The plan of a ruleset that passed the check.

    `sources` (path -> text), when given, is what the plan's `fingerprint` hashes; without it the
    fingerprint hashes the syntax tree. Raises only for compiler bugs (and `CompileError` for
    input the checker should have refused).
    """
    return build_ruleset(checked, sources)
