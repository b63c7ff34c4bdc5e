"""Message templates: Jinja2 in a sandbox, files in a `templates/` folder beside the rules.

For a template named T:

- email: `T.subject.txt` (one line after rendering), `T.html`, and optionally `T.txt`;
  without `T.txt` the text part is derived from the rendered HTML.
- sms: `T.sms.txt`.

Files ending in `.html` are autoescaped; text files are not. Templates see `contact` (the
contact's traits when the action was decided), `data` (the step's `with {...}`), `rule`,
and `unsubscribe_url`. A missing field renders as nothing (like null in rules); use
`{{ contact.first_name | default("there") }}` for a fallback. Templates may `{% extends %}`
or `{% include %}` other files of the folder.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from nudge.connectors.base import Action, PermanentError

__all__ = [
    "RenderedEmail",
    "TemplateError",
    "TemplateProblem",
    "Templates",
    "check_templates",
    "html_to_text",
    "template_context",
    "template_files",
]

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

SAMPLE_CONTACT: Mapping[str, Any] = {
    "first_name": "Ann",
    "last_name": "Andersson",
    "email": "ann@example.se",
    "phone": "+46701234567",
    "country": "SE",
    "timezone": "Europe/Stockholm",
    "score": 12,
    "stage": "lead",
    "total_spent": 1250.0,
}


class TemplateError(PermanentError):
    """A template is missing or does not render; says which file and, when known, line."""

    def __init__(self, message: str, *, path: Path | None = None, line: int | None = None):
        where = f"{path}:{line}" if path is not None and line else (str(path) if path else "")
        super().__init__(message, detail=where)
        self.path = path
        self.line = line


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """One finding of `check_templates`, printable as `path:line: error: message`.

    `problem` is `missing` (a required file is not there) or `render` (it does not render,
    or the name is not a valid template name).
    """

    kind: str
    name: str
    message: str
    path: Path | None = None
    line: int | None = None
    problem: Literal["missing", "render"] = "render"

    def __str__(self) -> str:
        where = str(self.path) if self.path is not None else f"template `{self.name}`"
        if self.line:
            where += f":{self.line}"
        return f"{where}: error: {self.message}"


def template_files(kind: str, name: str) -> tuple[tuple[str, bool], ...]:
    """(file name, required) pairs a template of this kind and name is made of."""
    if kind == "email":
        return ((f"{name}.subject.txt", True), (f"{name}.html", True), (f"{name}.txt", False))
    if kind == "sms":
        return ((f"{name}.sms.txt", True),)
    return ()


def template_context(action: Action, unsubscribe_url: str = "") -> dict[str, Any]:
    """What a template sees for `action`."""
    return {
        "contact": dict(action.get("contact") or {}),
        "data": dict(action.get("data") or {}),
        "rule": action.get("rule"),
        "unsubscribe_url": unsubscribe_url,
    }


class Templates:
    """Renders the templates of one folder. Files are re-read when they change."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(self.directory),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html", "htm"), default_for_string=False, default=False
            ),
            undefined=jinja2.ChainableUndefined,
            keep_trailing_newline=False,
        )

    def exists(self, kind: str, name: str) -> bool:
        """Whether every required file of the template is there."""
        files = template_files(kind, name)
        return bool(files) and all(
            (self.directory / file).is_file() for file, required in files if required
        )

    def render_email(self, name: str, context: Mapping[str, Any]) -> RenderedEmail:
        subject = " ".join(self.render_file(f"{name}.subject.txt", context).split())
        if not subject:
            raise TemplateError("the subject renders empty", path=self._path(f"{name}.subject.txt"))
        html = self.render_file(f"{name}.html", context)
        if (self.directory / f"{name}.txt").is_file():
            text = self.render_file(f"{name}.txt", context).strip() + "\n"
        else:
            text = html_to_text(html)
        return RenderedEmail(subject=subject, html=html, text=text)

    def render_sms(self, name: str, context: Mapping[str, Any]) -> str:
        body = self.render_file(f"{name}.sms.txt", context).strip()
        if not body:
            raise TemplateError("the message renders empty", path=self._path(f"{name}.sms.txt"))
        return body

    def _path(self, file: str) -> Path:
        return self.directory / file

    def render_file(self, file: str, context: Mapping[str, Any]) -> str:
        """Render one file of the folder; raises `TemplateError` naming file and line."""
        name = file.split(".", 1)[0]
        if not _NAME.fullmatch(name) or ".." in file:
            raise TemplateError(f"`{name}` is not a valid template name")
        path = self._path(file)
        try:
            return self._env.get_template(file).render(context)
        except jinja2.TemplateNotFound as exc:
            missing = self._path(str(exc.name)) if exc.name else path
            raise TemplateError("missing template file", path=missing) from None
        except jinja2.TemplateSyntaxError as exc:
            where = self._path(exc.name) if exc.name else path
            raise TemplateError(
                f"syntax error: {exc.message}", path=where, line=exc.lineno
            ) from None
        except Exception as exc:
            where, line = _template_frame(exc, self.directory) or (path, None)
            raise TemplateError(
                f"render error: {type(exc).__name__}: {exc}", path=where, line=line
            ) from None


def _template_frame(exc: BaseException, directory: Path) -> tuple[Path, int | None] | None:
    """The innermost traceback frame inside a template file (Jinja rewrites frames so)."""
    found: tuple[Path, int | None] | None = None
    root = directory.resolve()
    for frame in traceback.extract_tb(exc.__traceback__):
        try:
            path = Path(frame.filename).resolve()
        except OSError:
            continue
        if root in path.parents:
            found = (directory / path.relative_to(root), frame.lineno)
    return found


def check_templates(
    templates_dir: Path | str,
    needed: Iterable[tuple[str, str]],
    *,
    sample: Mapping[str, Any] | None = None,
) -> list[TemplateProblem]:
    """Missing files and render errors of the templates `needed`, as (kind, name) pairs.

    Each is rendered with a sample contact (override with `sample`, a template context).
    Kind `best` needs both an email and an sms template; kinds without templates
    (webhook, audience, show) need nothing.
    """
    templates = Templates(templates_dir)
    context = (
        dict(sample)
        if sample is not None
        else {
            "contact": dict(SAMPLE_CONTACT),
            "data": {},
            "rule": "sample_rule",
            "unsubscribe_url": "https://example.invalid/t/u/sample",
        }
    )
    problems: list[TemplateProblem] = []
    seen: set[tuple[str, str]] = set()
    for kind, name in needed:
        for one in ("email", "sms") if kind == "best" else (kind,):
            if (one, name) in seen:
                continue
            seen.add((one, name))
            problems.extend(_check_one(templates, one, name, context))
    return problems


def _check_one(
    templates: Templates, kind: str, name: str, context: Mapping[str, Any]
) -> list[TemplateProblem]:
    problems: list[TemplateProblem] = []
    if not _NAME.fullmatch(name):
        return [TemplateProblem(kind, name, f"`{name}` is not a valid template name")]
    files = template_files(kind, name)
    for file, required in files:
        path = templates.directory / file
        if not path.is_file():
            if required:
                problems.append(
                    TemplateProblem(
                        kind, name, f"missing {kind} template file {file}", path, problem="missing"
                    )
                )
            continue
        try:
            templates.render_file(file, context)
        except TemplateError as exc:
            problems.append(TemplateProblem(kind, name, exc.message, exc.path or path, exc.line))
    return problems


_BLOCK = frozenset(
    {"p", "div", "table", "tr", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
     "section", "article", "header", "footer", "hr"}
)  # fmt: skip
_HIDDEN = frozenset({"style", "script", "head", "title"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._links: list[tuple[str | None, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag in _BLOCK:
            self.parts.append("\n\n")
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK:
            self.parts.append("\n\n")
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            label = " ".join("".join(self.parts[start:]).split())
            if href and not href.startswith(("#", "mailto:", "tel:")) and href != label:
                self.parts.append(f" ({href})" if label else href)

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """A readable plain-text version of an HTML message; links become `label (url)`."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return text + "\n"
