"""`nudge check`'s template check: every template a `send` step names exists and renders.

Each `send email|sms|best "<name>"` of the ruleset is looked up in the templates folder
(`templates/` beside the rules folder, or `--templates DIR`) and rendered with a sample
contact (the contact schema's fields, plus names templates commonly use) and sample
`data` built from the step's `with { ... }` (a value of each key's type). A problem is an
error at the step's template name in the rules file:

- `missing-template`: a required file is not there (`<name>.subject.txt` and
  `<name>.html` for email, `<name>.sms.txt` for sms; both channels' for `send best`);
- `template-error`: a file does not render (a syntax error, an undefined filter, a
  filter given a value it cannot take), with the template file and line.

A ruleset without a templates folder is checked for its logic only (`nudge replay` and
`nudge test` never need templates).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nudge.connectors.templates import SAMPLE_CONTACT, check_templates
from nudge.dsl import ast
from nudge.dsl.check import Checked
from nudge.dsl.codes import CODES, diagnostic
from nudge.dsl.diagnostics import Diagnostic, error, hint

__all__ = ["TEMPLATE_CODES", "check_send_templates", "templates_folder"]

TEMPLATE_CODES = ("missing-template", "template-error")

_CHANNELS = ("email", "sms", "best")
_SAMPLES: Mapping[str, Any] = {
    "string": "sample",
    "number": 120.5,
    "bool": True,
    "time": "2026-11-20T10:00:00Z",
    "duration": 3600,
    "list": ["sample"],
    "object": {},
    "null": None,
}
_FILES = {
    "email": "`{0}.subject.txt` and `{0}.html` (and optionally `{0}.txt`)",
    "sms": "`{0}.sms.txt`",
}


def templates_folder(ruleset_dir: Path, given: str | None = None) -> Path | None:
    """`given`, else `templates/` beside the rules folder when it exists, else None."""
    if given is not None:
        return Path(given)
    beside = ruleset_dir.parent / "templates"
    return beside if beside.is_dir() else None


def check_send_templates(templates_dir: Path, checked: Checked) -> list[Diagnostic]:
    """A diagnostic for each send step whose template is missing or does not render."""
    contact = _sample_contact(checked)
    found: list[Diagnostic] = []
    for rule, send in _sends(checked.ruleset):
        name = send.target.value
        if not isinstance(name, str):
            continue
        context = {
            "contact": contact,
            "data": _sample_data(send, checked),
            "rule": rule.name.value,
            "unsubscribe_url": "https://example.invalid/t/u/sample",
        }
        kind = send.channel.value
        missing: dict[str, list[str]] = {}  # per channel kind: the files that are not there
        for problem in check_templates(templates_dir, [(kind, name)], sample=context):
            where = str(problem.path) if problem.path is not None else str(templates_dir)
            if problem.line:
                where += f":{problem.line}"
            if problem.problem == "missing":
                missing.setdefault(problem.kind, []).append(where)
            else:
                found.append(
                    _diagnostic(
                        "template-error",
                        f"{problem.kind} template `{name}` does not render: {where}: "
                        f"{problem.message}",
                        send.target.span,
                        "this template",
                        "rendered with a sample contact and sample values of the step's "
                        "`with { ... }`",
                    )
                )
        for missing_kind, files in missing.items():  # one diagnostic per template
            found.append(
                _diagnostic(
                    "missing-template",
                    f"{missing_kind} template `{name}` is missing: no {', '.join(files)}"
                    + hint(name, _template_names(templates_dir)),
                    send.target.span,
                    "no such template",
                    f"an {missing_kind} template is "
                    + _FILES.get(missing_kind, "`{0}`").format(name)
                    + f" in {templates_dir}",
                )
            )
    return found


def _template_names(folder: Path) -> set[str]:
    """The names of the templates in `folder` (`welcome_1` of `welcome_1.subject.txt`)."""
    names: set[str] = set()
    try:
        files = [p.name for p in folder.iterdir() if p.is_file()]
    except OSError:
        return names
    for file in files:
        for suffix in (".subject.txt", ".sms.txt", ".html", ".txt"):
            if file.endswith(suffix):
                names.add(file[: -len(suffix)])
                break
    return names


def _diagnostic(code: str, message: str, span: Any, label: str, *notes: str) -> Diagnostic:
    if code in CODES:
        return diagnostic(code, message, span, label, *notes)
    return error(code, message, span, label, *notes)


def _sends(ruleset: ast.Ruleset) -> Iterator[tuple[ast.Rule, ast.Send]]:
    for decl in ruleset.decls():
        if isinstance(decl, ast.Rule):
            for step in decl.steps:
                if isinstance(step, ast.Send) and step.channel.value in _CHANNELS:
                    yield decl, step


def _sample_contact(checked: Checked) -> dict[str, Any]:
    contact: dict[str, Any] = {}
    for field, type_name in (checked.contact_schema or {}).items():
        contact[field] = _SAMPLES.get(type_name, "sample")
    contact.update(SAMPLE_CONTACT)
    return contact


def _sample_data(send: ast.Send, checked: Checked) -> dict[str, Any]:
    if send.data is None:
        return {}
    return {
        entry.key.value: _SAMPLES.get(checked.types.get(id(entry.value), "any"), "sample")
        for entry in send.data.entries
    }
