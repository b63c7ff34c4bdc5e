"""From files on disk to a compiled plan: find, parse, check, compile.

`load_ruleset(paths)` is what every command and the engine use. A ruleset is every `.rules` file
under the given folders (recursively, in path order) plus any files named directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import ast
from .codes import diagnostic
from .diagnostics import Diagnostic, did_you_mean, error, sort_diagnostics
from .parse import parse
from .plan import RuleSet
from .source import Source, Span

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
    broken: list[Span] = []  # declarations kept despite a syntax error in them
    lost: set[str] = set()  # names of constants and segments whose declarations did not parse
    for source in source_map.values():
        rule_file, syntax = parse(source)
        files.append(rule_file)
        diagnostics.extend(syntax)
        if syntax:
            broken.extend(
                decl.span
                for decl in rule_file.decls
                if any(decl.span.start <= d.span.start < decl.span.end for d in syntax)
            )
            lost |= _names_declared(source.text) - _names_parsed(rule_file)
    syntax_tree = ast.Ruleset(tuple(files))
    checked = check(syntax_tree)
    # In a declaration with a broken statement set aside, errors stand, but warnings may be
    # about what is missing (an `exit on` without the `wait` that did not parse): dropped.
    # So are uses of a constant or segment whose declaration did not parse: fixing it fixes them.
    # A test's expectation of a template that no rule sends may be about a rule that did not
    # parse: those warnings wait for the fix too.
    parsed = not any(d.is_error for d in diagnostics)
    diagnostics.extend(
        d
        for d in checked.diagnostics
        if (d.is_error or not _inside(d.span, broken))
        and not (d.code in _UNKNOWN_NAME and _text(source_map, d.span) in lost)
        and (parsed or d.code != "unknown-target")
    )
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
        given, _, why = message.rpartition(": ")
        problems.append(error("no-such-path", why, Source(given, "").span(0, 0)))
    for raw in paths:
        if Path(raw).is_dir() and not find_rule_files([raw])[0]:
            others = sorted(q.name for q in Path(raw).rglob("*") if q.is_file())[:3]
            held = f" (it holds {', '.join(others)})" if others else ""
            problems.append(
                diagnostic(
                    "no-rules",
                    f"no .rules files in {raw}{held}",
                    Source(str(raw), "").span(0, 0),
                    "",
                    "a ruleset is every file ending in .rules under the folder",
                )
            )
    for path in files:
        try:
            sources.append(Source.from_path(path))
        except UnicodeDecodeError as exc:
            problems.append(_not_utf8(path, exc))
        except OSError as exc:
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


def _not_utf8(path: str | Path, exc: UnicodeDecodeError) -> Diagnostic:
    """The `unreadable` error of a file that is not UTF-8, at its first bad byte (the file
    shown as read with the bad bytes replaced)."""
    raw = bytes(exc.object)
    shown = Source(str(path), raw.decode("utf-8-sig", errors="replace"))
    at = len(raw[: exc.start].decode("utf-8-sig", errors="replace"))
    message = f"cannot read this file: byte 0x{raw[exc.start]:02x} is not UTF-8 text"
    return error("unreadable", message, shown.span(at, at + 1))


def _inside(span: Span, spans: list[Span]) -> bool:
    return any(s.path == span.path and s.start <= span.start < s.end for s in spans)


_UNKNOWN_NAME = frozenset({"unknown-name", "unknown-segment"})
_DECLARES_NAME = re.compile(r"^(?:let|segment)[ \t]+(\w+)", re.MULTILINE)
# `segmnet vip = ...`: a declaration whose first word is misspelt
_MAY_DECLARE = re.compile(r"^([A-Za-z]+)[ \t]+(\w+)[ \t]*=", re.MULTILINE)


def _names_declared(text: str) -> set[str]:
    """The names `let` and `segment` lines of a file declare, as written (parsed or not, and
    with the first word misspelt)."""
    misspelt = {
        name
        for word, name in _MAY_DECLARE.findall(text)
        if did_you_mean(word, ("let", "segment")) is not None
    }
    return set(_DECLARES_NAME.findall(text)) | misspelt


def _names_parsed(rule_file: ast.RuleFile) -> set[str]:
    return {d.name.value for d in rule_file.decls if isinstance(d, ast.Let | ast.Segment)}


def _text(sources: dict[str, Source], span: Span) -> str:
    source = sources.get(span.path)
    return "" if source is None else source.text[span.start : span.end]
