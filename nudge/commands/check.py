"""`nudge check [PATH ...]`: report every problem of a ruleset, exit 1 if there is an error.

    nudge check                      # the ruleset under rules/
    nudge check rules/ extra.rules   # folders (recursively) and files
    nudge check --format json        # the diagnostics as a JSON list, for tools

Diagnostics (errors and warnings) go to stdout; a one-line summary goes to stderr. Warnings alone
do not fail the check. A clean ruleset is also compiled, so that `check` passing means the engine
can load it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from nudge.dsl import ast
from nudge.dsl.check import Checked, check
from nudge.dsl.diagnostics import Diagnostic, sort_diagnostics
from nudge.dsl.load import load_ruleset
from nudge.dsl.render import render_json, render_texts
from nudge.dsl.source import Source

DEFAULT_PATH = "rules/"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help=f"rules files or folders of them (default {DEFAULT_PATH})",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="how to print the diagnostics (default text)",
    )
    parser.add_argument(
        "--templates",
        metavar="DIR",
        help="message templates to check the send steps against "
        "(default: templates/ beside the rules folder, when there is one)",
    )


def run(args: argparse.Namespace) -> int:
    paths: list[str] = list(args.paths) or [DEFAULT_PATH]
    templates = getattr(args, "templates", None)
    if templates is not None and not Path(templates).is_dir():
        print(f"nudge check: --templates {templates}: no such folder", file=sys.stderr)
        return 2
    result = load_ruleset(paths, compile_plan=False)
    found = list(result.diagnostics)
    checked = check(result.syntax) if result.syntax is not None else None
    if checked is not None:
        # `templates` only when given: a hook may take just the folder and the ruleset.
        given = {} if templates is None else {"templates": templates}
        found += extra_checks(ruleset_dir(paths), checked, **given)
    diagnostics = sort_diagnostics(found)
    errors = sum(d.is_error for d in diagnostics)
    if not errors and checked is not None:
        # A clean ruleset must compile; an exception here is a bug in the compiler, not the rules.
        from nudge.dsl.compile import compile_ruleset

        compile_ruleset(checked, {path: s.text for path, s in result.sources.items()})
    sources = dict(result.sources)
    if args.format == "json":
        print(render_json(diagnostics))
    else:
        sys.stdout.write(render_texts(diagnostics, _with_other_sources(diagnostics, sources)))
    sys.stdout.flush()  # the diagnostics, whole, before the summary (`2>&1` keeps them apart)
    rules = 0 if checked is None else sum(isinstance(d, ast.Rule) for d in checked.ruleset.decls())
    print(summary(paths, diagnostics, len(result.sources), rules), file=sys.stderr)
    return 1 if errors else 0


# ----------------------------------------------------------------------------------------------
# HOOK: checks beyond the rules files themselves (the message templates under the ruleset's
# folder, ...) plug in here. Each takes the ruleset's folder and the checked ruleset and returns
# its diagnostics; they are reported, sorted and counted with the checker's own.


def extra_checks(
    ruleset_dir: Path, checked: Checked, *, templates: str | None = None
) -> list[Diagnostic]:
    """Diagnostics of the checks that need more than the rules files.

    Message templates: with a `templates/` folder beside the rules folder (or `templates`
    given), every template a send step names must exist and render with sample data.
    """
    from nudge.commands._template_check import check_send_templates, templates_folder

    folder = templates_folder(ruleset_dir, templates)
    return [] if folder is None else check_send_templates(folder, checked)


def extra_checks_of(rules: str, templates: str | None) -> Callable[[ast.Ruleset], list[Diagnostic]]:
    """`extra_checks` for a running engine's rules folder: what its reloads must pass too."""
    given = {} if templates is None else {"templates": templates}

    def checks(syntax: ast.Ruleset) -> list[Diagnostic]:
        return extra_checks(ruleset_dir([rules]), check(syntax), **given)

    return checks


# ----------------------------------------------------------------------------------------------


def ruleset_dir(paths: Sequence[str]) -> Path:
    """The folder of the ruleset: the first folder given, else the first file's folder."""
    for raw in paths:
        if Path(raw).is_dir():
            return Path(raw)
    return Path(paths[0]).parent if paths else Path(DEFAULT_PATH)


def summary(paths: Sequence[str], diagnostics: Sequence[Diagnostic], files: int, rules: int) -> str:
    """`3 errors, 1 warning in 2 files` or `rules/: 7 rules in 3 files, all good`: the counts of
    every diagnostic, all of which are shown."""
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    if errors:
        counts = [_plural(errors, "error")]
        if warnings:
            counts.append(_plural(warnings, "warning"))
        where = len({d.span.path for d in diagnostics})
        return f"{', '.join(counts)} in {_plural(where, 'file')}"
    verdict = _plural(warnings, "warning") if warnings else "all good"
    return f"{' '.join(paths)}: {_plural(rules, 'rule')} in {_plural(files, 'file')}, {verdict}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _with_other_sources(
    diagnostics: Sequence[Diagnostic], sources: dict[str, Source]
) -> dict[str, Source]:
    """The sources of every file a diagnostic points into (extra checks may point at files that
    are not rules files)."""
    for d in diagnostics:
        path = d.span.path
        if path not in sources and Path(path).is_file():
            try:
                sources[path] = Source.from_path(path)
            except UnicodeDecodeError:  # shown as read, bad bytes replaced (`unreadable`)
                text = Path(path).read_bytes().decode("utf-8-sig", errors="replace")
                sources[path] = Source(path, text)
            except OSError:
                continue
    return sources
