"""Templates: files beside the rules, sandboxed, HTML autoescaped, checked by `check_templates`."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge.connectors.templates import (
    TemplateError,
    Templates,
    check_templates,
    html_to_text,
    template_context,
)

EXAMPLE_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
EXAMPLE_EMAILS = (
    "cart_reminder",
    "welcome_1",
    "welcome_2",
    "welcome_3",
    "winback",
    "post_purchase_review",
    "vip_welcome",
    "sales_alert",
)


def make(folder: Path, files: dict[str, str]) -> Templates:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return Templates(folder)


def context(**contact: object) -> dict[str, object]:
    action = {"rule": "r", "contact": contact, "data": {"cart_id": "k1"}}
    return template_context(action, "https://t.example/t/u/x")


def test_html_is_autoescaped_text_and_subject_are_not(tmp_path: Path) -> None:
    templates = make(
        tmp_path,
        {
            "t.subject.txt": "Hi {{ contact.first_name }}\n",
            "t.html": "<p>Hi {{ contact.first_name }}, cart {{ data.cart_id }}</p>",
            "t.txt": "Hi {{ contact.first_name }}\nUnsubscribe: {{ unsubscribe_url }}",
        },
    )
    rendered = templates.render_email("t", context(first_name="<Ann & Bo>"))
    assert rendered.subject == "Hi <Ann & Bo>"
    assert rendered.html == "<p>Hi &lt;Ann &amp; Bo&gt;, cart k1</p>"
    assert rendered.text == "Hi <Ann & Bo>\nUnsubscribe: https://t.example/t/u/x\n"


def test_text_is_derived_from_html_when_missing(tmp_path: Path) -> None:
    templates = make(
        tmp_path,
        {
            "t.subject.txt": "S",
            "t.html": (
                "<html><head><style>p{color:red}</style></head><body>"
                "<h1>Hello</h1><p>Your <a href='https://shop.example/c?a=1&amp;b=2'>cart</a>"
                " waits.<br>Bye</p><ul><li>one</li><li>two</li></ul></body></html>"
            ),
        },
    )
    text = templates.render_email("t", context()).text
    assert "color" not in text
    assert "Hello" in text
    assert "cart (https://shop.example/c?a=1&b=2) waits." in text
    assert "\nBye" in text
    assert "- one\n- two" in text


def test_missing_fields_render_empty_and_defaults_apply(tmp_path: Path) -> None:
    templates = make(
        tmp_path,
        {"t.sms.txt": "Hi {{ contact.first_name | default('there', true) }}{{ contact.a.b.c }}!"},
    )
    assert templates.render_sms("t", context()) == "Hi there!"
    assert templates.render_sms("t", context(first_name=None)) == "Hi there!"


def test_sandbox_hides_internals(tmp_path: Path) -> None:
    templates = make(
        tmp_path,
        {"t.sms.txt": "x{{ contact.__class__ }}{{ ''.__class__.__mro__ }}"},
    )
    assert templates.render_sms("t", context()) == "x"
    make(tmp_path, {"u.sms.txt": "{{ ''.__class__.__mro__[1].__subclasses__() }}"})
    with pytest.raises(TemplateError):
        templates.render_sms("u", context())


def test_errors_name_the_file_and_line(tmp_path: Path) -> None:
    templates = make(tmp_path, {"t.sms.txt": "line one\n{% if %}\n"})
    with pytest.raises(TemplateError) as caught:
        templates.render_sms("t", context())
    assert caught.value.path == tmp_path / "t.sms.txt"
    assert caught.value.line == 2
    with pytest.raises(TemplateError, match="missing template file"):
        templates.render_sms("absent", context())


def test_template_names_cannot_leave_the_folder(tmp_path: Path) -> None:
    (tmp_path / "secret.sms.txt").write_text("secret")
    templates = Templates(tmp_path / "inner")
    with pytest.raises(TemplateError):
        templates.render_sms("../secret", context())


def test_extends_a_layout(tmp_path: Path) -> None:
    templates = make(
        tmp_path,
        {
            "_layout.html": "<body>{% block content %}{% endblock %}<a href='{{ unsubscribe_url }}'>u</a></body>",
            "t.subject.txt": "S",
            "t.html": "{% extends '_layout.html' %}{% block content %}<p>{{ data.cart_id }}</p>{% endblock %}",
        },
    )
    html = templates.render_email("t", context()).html
    assert html == "<body><p>k1</p><a href='https://t.example/t/u/x'>u</a></body>"


def test_check_reports_missing_files_and_render_errors(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "ok.subject.txt": "S",
            "ok.html": "<p>{{ contact.first_name }}</p>",
            "broken.subject.txt": "S",
            "broken.html": "<p>\n{{ contact.first_name | nosuchfilter }}</p>",
            "no_html.subject.txt": "S",
            "texty.sms.txt": "{{ 1 / 0 }}",
        },
    )
    problems = check_templates(
        tmp_path,
        [
            ("email", "ok"),
            ("email", "broken"),
            ("email", "no_html"),
            ("sms", "texty"),
            ("best", "ok"),
            ("webhook", "crm"),
            ("email", "ok"),
        ],
    )
    found = {(p.kind, p.name, p.path.name if p.path else None) for p in problems}
    assert found == {
        ("email", "broken", "broken.html"),
        ("email", "no_html", "no_html.html"),
        ("sms", "texty", "texty.sms.txt"),
        ("sms", "ok", "ok.sms.txt"),
    }
    broken = next(p for p in problems if p.name == "broken")
    assert "nosuchfilter" in broken.message
    assert str(broken).startswith(f"{tmp_path / 'broken.html'}:2: error:")
    division = next(p for p in problems if p.name == "texty")
    assert "ZeroDivisionError" in division.message
    assert division.line == 1


def test_example_templates_are_complete_and_render() -> None:
    needed = [("email", name) for name in EXAMPLE_EMAILS]
    needed += [("sms", "cart_reminder"), ("sms", "winback"), ("sms", "sales_alert")]
    assert check_templates(EXAMPLE_TEMPLATES, needed) == []


def test_html_to_text_keeps_labels_that_are_urls_once() -> None:
    text = html_to_text('<p><a href="https://x.example/">https://x.example/</a></p>')
    assert text == "https://x.example/\n"
