"""Reloading a rules folder: only clean rulesets replace the running one."""

from __future__ import annotations

import os
from pathlib import Path

import structlog

from nudge.engine.rules_watch import RulesWatcher, fingerprint, load_checked

GOOD = 'rule hello\n    when signed_up\n    then\n        send webhook "hi"\nend\n'
OTHER = GOOD.replace("hello", "hello_again")
BROKEN = "rule oops\n    when\nend\n"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def touch(path: Path, text: str, mtime: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime, mtime))


def test_fingerprint_sees_content_and_time(tmp_path: Path) -> None:
    touch(tmp_path / "a.rules", GOOD, 1_000_000_000)
    (tmp_path / "notes.txt").write_text("ignored")
    first = fingerprint([tmp_path])
    assert [Path(p).name for p, _, _ in first] == ["a.rules"]
    touch(tmp_path / "a.rules", GOOD, 2_000_000_000)
    assert fingerprint([tmp_path]) != first


def test_reload_after_the_files_settle(tmp_path: Path) -> None:
    touch(tmp_path / "a.rules", GOOD, 1_000_000_000)
    clock = Clock()
    watcher = RulesWatcher([tmp_path], settle=0.5, clock=clock)
    assert watcher.poll() is None  # nothing changed
    touch(tmp_path / "a.rules", OTHER, 2_000_000_000)
    assert watcher.poll() is None  # changed just now
    clock.now = 0.2
    assert watcher.poll() is None  # not settled yet
    clock.now = 1.0
    ruleset = watcher.poll()
    assert ruleset is not None
    assert [r.name for r in ruleset.rules] == ["hello_again"]
    assert watcher.poll() is None  # loaded once
    assert watcher.reloads == 1


def test_a_ruleset_failing_the_check_is_logged_and_ignored(tmp_path: Path) -> None:
    touch(tmp_path / "a.rules", GOOD, 1_000_000_000)
    clock = Clock()
    watcher = RulesWatcher([tmp_path], settle=0.0, clock=clock)
    touch(tmp_path / "b.rules", BROKEN, 2_000_000_000)
    with structlog.testing.capture_logs() as logs:
        assert watcher.poll() is None
        clock.now = 1.0
        assert watcher.poll() is None
        clock.now = 2.0
        assert watcher.poll() is None  # not tried again until the files change again
    (rejected,) = [e for e in logs if e["event"] == "rules.reload_rejected"]
    assert "b.rules:" in rejected["diagnostics"]
    assert watcher.failures == 1
    (tmp_path / "b.rules").unlink()
    clock.now = 3.0
    watcher.poll()
    clock.now = 4.0
    fixed = watcher.poll()
    assert fixed is not None and [r.name for r in fixed.rules] == ["hello"]


def test_load_checked(tmp_path: Path) -> None:
    touch(tmp_path / "a.rules", GOOD, 1_000_000_000)
    ruleset, text = load_checked([tmp_path])
    assert ruleset is not None and text == ""
    touch(tmp_path / "a.rules", BROKEN, 1_000_000_000)
    ruleset, text = load_checked([tmp_path])
    assert ruleset is None
    assert "a.rules:" in text and "error" in text


def test_an_emptied_folder_keeps_the_running_ruleset(tmp_path: Path) -> None:
    touch(tmp_path / "a.rules", GOOD, 1_000_000_000)
    watcher = RulesWatcher([tmp_path], settle=0.0, clock=Clock())
    (tmp_path / "a.rules").rename(tmp_path / "a.rules.bak")  # an editor saving by renaming
    assert watcher.poll() is None
    assert watcher.poll() is None and watcher.failures == 1
    assert load_checked([tmp_path])[0] is None


def test_reloads_pass_the_template_checks_too(tmp_path: Path) -> None:
    from nudge.commands.check import extra_checks_of

    rules = tmp_path / "rules"
    templates = tmp_path / "templates"
    rules.mkdir()
    templates.mkdir()
    (templates / "welcome.subject.txt").write_text("Hello {{ contact.first_name }}")
    (templates / "welcome.html").write_text("<p>Hello</p>")
    send = 'rule hello\n    when signed_up\n    then\n        send email "{}"\nend\n'
    touch(rules / "a.rules", send.format("welcome"), 1_000_000_000)
    extra = extra_checks_of(str(rules), None)
    assert load_checked([rules], extra)[0] is not None
    watcher = RulesWatcher([rules], extra=extra, settle=0.0, clock=Clock())
    touch(rules / "a.rules", send.format("welcme"), 2_000_000_000)  # no such template
    assert watcher.poll() is None
    ruleset = watcher.poll()
    assert ruleset is None and watcher.failures == 1
    _, diagnostics = load_checked([rules], extra)
    assert "missing-template" in diagnostics
