"""`nudge check` and message templates: the send steps' templates must exist and render."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nudge.cli import main

RULES = """\
event cart_updated { cart_id: string, value: number }
event order_completed { order_id: string }

rule reminder
    when cart_updated as cart
    then
        send email "cart_reminder" with { cart_id: cart.cart_id, value: cart.value }
end

rule thanks
    when order_completed
    then
        send sms "thanks" with { order_id: order_completed.order_id }
        send best "welcome_back"
        send webhook "crm"
end

test "a reminder"
    given contact c1 { email: "ann@example.se", consent_email: true }
    at 2026-11-20T10:00:00Z c1 cart_updated { cart_id: "k1", value: 12 }
    expect c1 email "cart_reminder"
end
"""


def write_templates(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


GOOD = {
    "cart_reminder.subject.txt": "Your cart of {{ data.value | round(1) }}\n",
    "cart_reminder.html": "<p>Cart {{ data.cart_id | upper }}</p>\n",
    "thanks.sms.txt": "Thanks for order {{ data.order_id }}\n",
    "welcome_back.subject.txt": "Welcome back\n",
    "welcome_back.html": "<p>Hi {{ contact.first_name }}</p>\n",
    "welcome_back.sms.txt": "Welcome back, {{ contact.first_name }}\n",
}


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "shop.rules").write_text(RULES)
    return tmp_path


def check_json(
    capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, list[dict[str, object]]]:
    code = main(["check", *argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_templates_that_exist_and_render_pass(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_templates(shop / "templates", GOOD)
    assert check_json(capsys, "rules") == (0, [])


def test_a_missing_template_is_an_error_at_the_send_step(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = dict(GOOD)
    del files["thanks.sms.txt"]
    del files["welcome_back.sms.txt"]  # `send best` needs both channels
    write_templates(shop / "templates", files)
    code, found = check_json(capsys, "rules")
    assert code == 1
    assert [(d["code"], d["line"], d["column"]) for d in found] == [
        ("missing-template", 13, 18),
        ("missing-template", 14, 19),
    ]
    assert "thanks.sms.txt" in str(found[0]["message"])
    assert "welcome_back.sms.txt" in str(found[1]["message"])
    assert all(d["path"] == "rules/shop.rules" for d in found)


def test_a_template_that_does_not_render_names_its_file_and_line(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = dict(GOOD)
    files["cart_reminder.html"] = "<p>Cart</p>\n<p>{{ data.cart_id | no_such_filter }}</p>\n"
    # `cart_id` is a string in the schema: rounding it fails with the sample value.
    files["cart_reminder.subject.txt"] = "Your cart {{ data.cart_id | round }}\n"
    write_templates(shop / "templates", files)
    assert main(["check", "rules"]) == 1
    out = capsys.readouterr().out
    assert out.count("[template-error]") == 2
    assert "rules/shop.rules:7:20: error: email template `cart_reminder` does not render" in out
    assert "templates/cart_reminder.html:2: syntax error" in out
    assert "templates/cart_reminder.subject.txt:1: render error" in out
    assert 'send email "cart_reminder"' in out  # the rules line, with a caret under the name


def test_without_a_templates_folder_only_the_logic_is_checked(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_json(capsys, "rules") == (0, [])


def test_an_explicit_templates_folder(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_templates(shop / "elsewhere", {"thanks.sms.txt": "Thanks\n"})
    code, found = check_json(capsys, "rules", "--templates", "elsewhere")
    assert code == 1
    assert {d["code"] for d in found} == {"missing-template"}
    assert main(["check", "rules", "--templates", "nowhere"]) == 2


def test_replay_and_test_never_need_templates(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_templates(shop / "templates", {"unrelated.sms.txt": "x\n"})  # every template missing
    assert main(["test", "rules"]) == 0
    events = shop / "events.jsonl"
    events.write_text(
        '{"id": "e1", "event": "order_completed", "contact_id": "c1", '
        '"timestamp": "2026-11-20T10:00:00Z", "properties": {"order_id": "o1"}}\n'
    )
    assert main(["replay", str(events), "--rules", "rules"]) == 0
    assert '"kind":"webhook"' in capsys.readouterr().out


def test_the_example_rules_and_templates_pass(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parents[2]
    assert main(["check", str(root / "rules")]) == 0
    assert "all good" in capsys.readouterr().err


def test_a_misspelt_template_is_reported_once_with_a_hint(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_templates(shop / "templates", GOOD)
    rules = shop / "rules" / "shop.rules"
    rules.write_text(rules.read_text().replace('"cart_reminder"', '"cart_remindr"'))
    code, found = check_json(capsys, "rules")
    assert code == 1
    assert [d["code"] for d in found] == ["missing-template"]  # one for both files
    message = str(found[0]["message"])
    assert "cart_remindr.subject.txt" in message and "cart_remindr.html" in message
    assert "(did you mean `cart_reminder`?)" in message
