"""From files on disk to a compiled plan: find, parse, check, compile.

`load_ruleset(paths)` is what every command and the engine use. A ruleset is every `.rules` file
under the given folders (recursively, in path order) plus any files named directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import ast
from .codes import diagnostic
from .diagnostics import Diagnostic, error, sort_diagnostics
from .parse import parse
from .plan import RuleSet
from .source import Source

__all__ = ["LoadResult", "find_rule_files", "load_ruleset", "load_sources"]


@dataclass(slots=True)
class LoadResult:
    ruleset: RuleSet | None  # None when any error was found
    diagnostics: list[Diagnostic]
    sources: dict[str, Source] = field(default_factory=dict)
    syntax: ast.Ruleset | None = None

    @property
    def ok(self) -> bool:
        return self.ruleset is not None and not any(d.is_error for d in self.diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]


def find_rule_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """The `.rules` files under `paths`, and a message for each path that does not exist."""
    files: list[Path] = []
    missing: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files.extend(sorted(q for q in p.rglob("*.rules") if q.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            missing.append(f"{raw}: no such file or folder")
    unique = list(dict.fromkeys(files))
    return unique, missing


def load_sources(sources: Iterable[Source], *, compile_plan: bool = True) -> LoadResult:
    """Parse, check and (when clean and asked) compile sources already in memory."""
    from .check import check
    from .compile import compile_ruleset

    source_map = {s.path: s for s in sources}
    files: list[ast.RuleFile] = []
    diagnostics: list[Diagnostic] = []
    for source in source_map.values():
        rule_file, syntax = parse(source)
        files.append(rule_file)
        diagnostics.extend(syntax)
    syntax_tree = ast.Ruleset(tuple(files))
    checked = check(syntax_tree)
    diagnostics.extend(checked.diagnostics)
    diagnostics = sort_diagnostics(diagnostics)
    ruleset = None
    if compile_plan and not any(d.is_error for d in diagnostics):
        ruleset = compile_ruleset(checked, sources={p: s.text for p, s in source_map.items()})
    return LoadResult(ruleset, diagnostics, source_map, syntax_tree)


def load_ruleset(paths: Iterable[str | Path], *, compile_plan: bool = True) -> LoadResult:
    """Load every `.rules` file under `paths`. Never raises for bad rules: see `diagnostics`.
    A path that does not exist, or a folder without `.rules` files, is an error."""
    paths = list(paths)
    files, missing = find_rule_files(paths)
    sources: list[Source] = []
    problems: list[Diagnostic] = []
    for message in missing:
        problems.append(
            error("no-such-path", message, Source(message.split(":")[0], "").span(0, 0))
        )
    for raw in paths:
        if Path(raw).is_dir() and not find_rule_files([raw])[0]:
            problems.append(
                diagnostic(
                    "no-rules",
                    f"no .rules files in {raw}",
                    Source(str(raw), "").span(0, 0),
                    "",
                    "a ruleset is every file ending in .rules under the folder",
                )
            )
    for path in files:
        try:
            sources.append(Source.from_path(path))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(
                error(
                    "unreadable", f"cannot read this file: {exc}", Source(str(path), "").span(0, 0)
                )
            )
    result = load_sources(sources, compile_plan=compile_plan and not problems)
    result.diagnostics = sort_diagnostics([*problems, *result.diagnostics])
    if problems:
        result.ruleset = None
    return result
