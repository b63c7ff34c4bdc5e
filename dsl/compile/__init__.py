"""The compiler: checked syntax to the plan the engine runs.

    compile_ruleset(checked) -> RuleSet

Modules, one job each:

- `runtime.py`: the helpers generated code may call (the language's operators, null-safe).
- `fold.py`: `let` values and literal-only subexpressions, computed at compile time.
- `codegen.py`: expressions to Python functions, built as `ast` nodes, one module per file.
- `canon.py`: expressions back to canonical text (window ids, test reports).
- `keys.py`: index keys of event matches (`E.f == k` terms a `where` requires).
- `plan_builder.py`: rules, triggers, steps, windows and the indexes of the plan.
- `tests_compile.py`: `test` blocks to test cases.
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
