"""`nudge fmt [--check] [--diff] [PATH ...]`: rewrite `.rules` files in the canonical layout.

    nudge fmt                       # every .rules file under rules/, rewritten in place
    nudge fmt --check               # write nothing; exit 1 naming each file that would change
    nudge fmt --diff rules/x.rules  # print the changes as a unified diff; write nothing

stdout lists the files (`reformatted rules/x.rules`, or with --check `would reformat ...`) and
the diffs; stderr gets errors and a one-line summary. A file with syntax errors is left as it is
and its errors are reported; so is a file that is not UTF-8. The exit status is 1 if any file
had errors or, with --check, would change; 0 otherwise. The layout is described in
docs/formatting.md.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterator
from pathlib import Path

from nudge.dsl.fmt import FormatError, format_source
from nudge.dsl.load import find_rule_files
from nudge.dsl.render import render_texts
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
        "--check",
        action="store_true",
        help="write nothing; exit 1 if any file would change, naming each",
    )
    parser.add_argument(
        "--diff",
        action="store_true",
        help="print what would change as a unified diff; write nothing",
    )


def run(args: argparse.Namespace) -> int:
    paths: list[str] = list(args.paths) or [DEFAULT_PATH]
    files, missing = find_rule_files(paths)
    for message in missing:
        print(f"error: {message}", file=sys.stderr)
    write = not (args.check or args.diff)
    changed = unchanged = failed = 0
    for path in files:
        outcome = _format_one(path, write=write, diff=args.diff)
        if outcome is None:
            failed += 1
        elif outcome:
            changed += 1
            if args.check:
                print(f"would reformat {path}")
            elif write:
                print(f"reformatted {path}")
        else:
            unchanged += 1
    print(_summary(changed, unchanged, failed, done=write), file=sys.stderr)
    return 1 if missing or failed or (args.check and changed) else 0


def _format_one(path: Path, *, write: bool, diff: bool) -> bool | None:
    """Whether the file changes (or would), or None when it could not be formatted."""
    try:
        raw = path.read_bytes()
        original = raw.decode("utf-8-sig")
    except OSError as exc:
        print(f"error: {path}: {exc.strerror or exc}", file=sys.stderr)
        return None
    except UnicodeDecodeError as exc:
        print(f"error: {path}: not UTF-8 text (byte {exc.start})", file=sys.stderr)
        return None
    source = Source(str(path), original)
    try:
        result = format_source(source)
    except FormatError as exc:  # a formatter bug: never rewrite the file
        print(f"error: {exc}", file=sys.stderr)
        return None
    if isinstance(result, list):
        sys.stderr.write(render_texts(result, {source.path: source}))
        return None
    formatted = result.encode("utf-8")
    if formatted == raw:
        return False
    if diff:
        sys.stdout.writelines(_unified_diff(original, result, str(path)))
    if write:
        path.write_bytes(formatted)
    return True


def _unified_diff(before: str, after: str, name: str) -> Iterator[str]:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=name,
        tofile=f"{name} (formatted)",
    )
    for line in lines:
        yield line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"


def _summary(changed: int, unchanged: int, failed: int, *, done: bool) -> str:
    """`1 file reformatted, 2 left unchanged, 1 with errors` (or `would be ...`)."""
    parts: list[str] = []
    if changed:
        verb = "reformatted" if done else "would be reformatted"
        parts.append(f"{_files(changed)} {verb}")
    if unchanged:
        parts.append(f"{_files(unchanged) if not parts else unchanged} left unchanged")
    if failed:
        parts.append(f"{_files(failed) if not parts else failed} with errors")
    return ", ".join(parts) if parts else "no .rules files found"


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"
