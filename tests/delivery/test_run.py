"""`nudge run`: one process, HTTP in, the rules, actions on stdout and through the connectors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from nudge_process import NudgeProcess, clean_env

from nudge.devservers import free_port

WELCOME = """\
rule welcome "Greet new sign-ups"
    when signed_up
    if contact.consent_email
    then
        send email "welcome" with { plan: signed_up.plan }
        show "hello_banner" in "hero"
end

rule after_send "Outcome events come back into the engine"
    when email_sent
    then
        show "sent_banner" in "status"
end
"""

NEW_WELCOME = WELCOME.replace('"hello_banner"', '"new_banner"')
BROKEN = WELCOME.replace("then\n        send", "then\n        sned", 1)


def _events(contact: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{contact}-identify-{n}",
            "event": "identify",
            "contact_id": contact,
            "timestamp": "2026-11-20T09:00:00Z",
            "traits": {
                "email": f"{contact}@example.se",
                "first_name": "Ann",
                "consent_email": True,
            },
        },
        {
            "id": f"{contact}-signup-{n}",
            "event": "signed_up",
            "contact_id": contact,
            "timestamp": "2026-11-20T09:00:01Z",
            "properties": {"plan": "pro"},
        },
    ]


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "welcome.rules").write_text(WELCOME)
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "welcome.subject.txt").write_text("Welcome, {{ contact.first_name }}\n")
    (templates / "welcome.html").write_text(
        "<html><body><p>Your plan: {{ data.plan }}</p>"
        '<a href="https://shop.example/start">Start</a></body></html>\n'
    )
    return tmp_path


def _start(shop: Path) -> tuple[NudgeProcess, str]:
    """`nudge run` on a port the system picks; its URL from the `run.listening` line."""
    process = NudgeProcess(
        ["run", "--rules", "rules", "--port", "0", "--outbox", "outbox"],
        shop,
        clean_env(NUDGE_RELOAD_INTERVAL="100ms", NUDGE_TIMER_INTERVAL="100ms"),
        name="run",
    ).start()
    found = process.wait_for(
        lambda: re.search(r"run\.listening .*url=(http://\S+)", process.stderr), "the collector"
    )
    return process, found.group(1)


def _outbox(shop: Path, channel: str) -> list[dict[str, Any]]:
    path = shop / "outbox" / f"{channel}.jsonl"
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _content(base: str, contact: str, slot: str) -> str | None:
    answer = httpx.get(f"{base}/v1/content/{contact}/{slot}")
    content: str | None = answer.json()["content"]
    return content


def test_events_over_http_become_actions_deliveries_and_content(shop: Path) -> None:
    process, base = _start(shop)
    try:
        assert "delivery.outbox" in process.stderr and "channel=email" in process.stderr
        answer = httpx.post(f"{base}/v1/events", json=_events("c1", 1))
        assert answer.status_code == 200 and answer.json()["accepted"] == 2

        process.wait_for(lambda: len(process.lines()) >= 3, "three actions")
        by_kind = {(a["rule"], a["kind"]): a for a in process.lines()}
        email = by_kind[("welcome", "email")]
        assert email["template"] == "welcome" and email["to"] == "c1@example.se"
        assert email["data"] == {"plan": "pro"}
        assert by_kind[("welcome", "show")]["content"] == "hello_banner"
        # email_sent came back from the connector and triggered `after_send`.
        assert by_kind[("after_send", "show")]["content"] == "sent_banner"
        assert len(process.lines()) == 3

        written = process.wait_for(lambda: _outbox(shop, "email"), "the email in the outbox")
        assert written[0]["action"]["id"] == email["id"]
        assert written[0]["rendered"]["subject"] == "Welcome, Ann"
        assert "Your plan: pro" in written[0]["rendered"]["html"]

        assert process.wait_for(lambda: _content(base, "c1", "hero"), "content") == "hello_banner"
        assert process.wait_for(lambda: _content(base, "c1", "status"), "") == "sent_banner"
        assert httpx.get(f"{base}/v1/content/c1/nowhere").status_code == 404

        # The open pixel of the outbox email is served by the same process.
        pixel = re.search(r'src="(http://[^"]+/t/o/[^"]+)"', written[0]["rendered"]["html"])
        assert pixel is not None
        assert httpx.get(pixel.group(1)).headers["content-type"] == "image/gif"

        # The same events again are duplicates: nothing new.
        httpx.post(f"{base}/v1/events", json=_events("c1", 1))
        assert len(process.lines()) == 3

        # Malformed input is set aside in the outbox's rejects file, with its reason.
        bad = b'{"id": "x1", "event": "signed_up"}\nnot json\n'
        answer = httpx.post(f"{base}/v1/events", content=bad)
        assert answer.status_code == 400
        rejects = _outbox(shop, "rejects")
        assert [(r["reason"], r["raw"]) for r in rejects] == [
            ("missing_field", '{"id": "x1", "event": "signed_up"}'),
            ("not_json", "not json"),
        ]
        assert all(r["at"].endswith("Z") for r in rejects)
    finally:
        assert process.stop() == 0
    assert "run.stopped" in process.stderr
    # Without Redis, the per-rule figures are printed when it stops.
    figures = process.stderr[process.stderr.index("per-rule figures:") :].splitlines()
    welcome = next(line.split() for line in figures if line.startswith("welcome "))
    assert welcome[1:3] == ["1", "0"]  # fired once, nothing suppressed


def test_a_broken_ruleset_keeps_the_last_good_one_until_fixed(shop: Path) -> None:
    rules = shop / "rules" / "welcome.rules"
    process, base = _start(shop)
    try:
        rules.write_text(BROKEN)
        process.wait_for(lambda: "rules.reload_rejected" in process.stderr, "the rejection")
        log = process.stderr
        assert "welcome.rules:5" in log and "error" in log  # the rendered diagnostic

        httpx.post(f"{base}/v1/events", json=_events("c2", 2))
        process.wait_for(
            lambda: any(a.get("content") == "hello_banner" for a in process.lines()),
            "the old ruleset to act",
        )

        rules.write_text(NEW_WELCOME)
        process.wait_for(lambda: "rules.reloaded" in process.stderr, "the reload")
        httpx.post(f"{base}/v1/events", json=_events("c3", 3))
        shown = process.wait_for(
            lambda: [a for a in process.lines() if a["contact_id"] == "c3" and a["kind"] == "show"],
            "the new ruleset to act",
        )
        assert shown[0]["content"] == "new_banner"
        assert process.wait_for(lambda: _content(base, "c3", "hero"), "") == "new_banner"
    finally:
        assert process.stop() == 0


def test_a_ruleset_that_fails_the_check_does_not_start(shop: Path) -> None:
    (shop / "rules" / "welcome.rules").write_text(BROKEN)
    process = NudgeProcess(
        ["run", "--rules", "rules", "--port", str(free_port())], shop, clean_env(), name="bad"
    ).start()
    assert process.process is not None
    assert process.process.wait(30) == 1
    assert "welcome.rules:5" in process.stderr
    assert "fails the check" in process.stderr


def test_waits_pending_at_a_stop_without_redis_are_said_to_be_lost(shop: Path) -> None:
    (shop / "rules" / "later.rules").write_text(
        'rule later\n    when signed_up\n    then\n        wait 2d\n        send webhook "w"\nend\n'
    )
    process, base = _start(shop)
    try:
        assert httpx.post(f"{base}/v1/events", json=_events("c1", 1)).status_code == 200
        process.wait_for(lambda: len(process.lines()) >= 2, "the welcome actions")
    finally:
        assert process.stop() == 0
    lost = re.search(r"run\.timers_lost .*", process.stderr)
    assert lost is not None and "pending=1" in lost.group()
