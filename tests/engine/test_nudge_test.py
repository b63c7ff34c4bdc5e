"""`nudge test`: passing and failing tests, and the exact failure report."""

from __future__ import annotations

from collections.abc import Callable

from conftest import RanTests

RULES = """
policy quiet hours 21:00-08:00

rule abandoned_cart
    when cart_updated as cart not followed by order_completed within 1h
    if contact.consent_email
    then
        send email "cart_reminder" with { cart_id: cart.cart_id, value: cart.value }
        score += 5
end

rule welcome
    when signed_up
    then
        send webhook "crm"
        wait 2d
        send webhook "crm_later"
end
"""

PASSING = """
test "cart reminder one hour after an abandoned cart"
    given contact c1 { email: "ann@example.se", consent_email: true, country: "SE" }
    at 2026-11-20T10:00:00Z c1 cart_updated { cart_id: "k1", value: 120 }
    expect at 2026-11-20T11:00:00Z c1 email "cart_reminder" with { cart_id: "k1" }
    expect no sms
    expect c1 has contact.score == 5
end

test "deferred to the morning in the contact's zone"
    given contact c1 { email: "ann@example.se", consent_email: true, timezone: "Europe/Stockholm" }
    at 2026-11-20T20:30:00Z c1 cart_updated { cart_id: "k1", value: 120 }
    expect at 2026-11-21T07:00:00Z c1 email "cart_reminder"
end

test "expectations between events see what happened so far"
    given contact c1 { email: "ann@example.se", consent_email: true }
    at 2026-11-20T10:00:00Z c1 cart_updated { cart_id: "k1", value: 120 }
    expect no email
    expect c1 has contact.score == 0
    at 2026-11-20T12:00:00Z c1 page_viewed { path: "/" }
    expect email "cart_reminder"
    expect at 2026-11-20T11:30:00Z c1 has contact.score == 5
end

test "timers keep firing after the last event"
    given contact c2 { }
    at 2026-11-20T10:00:00Z c2 signed_up { }
    expect at 2026-11-22T10:00:00Z c2 webhook "crm_later"
end
"""

FAILING = """
test "wrong expectations"
    given contact c1 { email: "ann@example.se", consent_email: true }
    at 2026-11-20T10:00:00Z c1 cart_updated { cart_id: "k1", value: 120 }
    expect at 2026-11-20T10:30:00Z c1 email "cart_reminder"
    expect no email "cart_reminder"
    expect c1 email "cart_reminder" with { cart_id: "k2" }
    expect c1 has contact.score > 10
end

test "nothing happens"
    given contact c1 { email: "ann@example.se" }
    at 2026-11-20T10:00:00Z c1 cart_updated { cart_id: "k1", value: 120 }
    expect c1 email "cart_reminder"
end

test "checked between events"
    given contact c1 { email: "ann@example.se", consent_email: true }
    at 2026-11-20T10:00:00Z c1 cart_updated { cart_id: "k1", value: 120 }
    expect c1 email "cart_reminder"
    at 2026-11-20T12:00:00Z c1 page_viewed { path: "/" }
end
"""

NudgeTest = Callable[[str], RanTests]


def test_passing_tests(nudge_test: NudgeTest) -> None:
    t = nudge_test(RULES + PASSING)
    assert t.code == 0
    path = str(t.path)
    first = RULES.count("\n") + 2  # `test` lines, counted from 1
    assert t.stdout == (
        f"ok   {path}:{first}: cart reminder one hour after an abandoned cart\n"
        f"ok   {path}:{first + 8}: deferred to the morning in the contact's zone\n"
        f"ok   {path}:{first + 14}: expectations between events see what happened so far\n"
        f"ok   {path}:{first + 24}: timers keep firing after the last event\n"
        "4 passed, 0 failed\n"
    )


def test_failing_tests_report_each_failing_expectation_and_the_actions(
    nudge_test: NudgeTest,
) -> None:
    t = nudge_test(RULES + PASSING + FAILING)
    assert t.code == 1
    path = str(t.path)
    start = (RULES + PASSING).count("\n") + 1  # the line of FAILING's first line
    line = start + 1  # `test "wrong expectations"`
    report = t.stdout.split("\n", 4)[4]
    assert report == (
        f"FAIL {path}:{line}: wrong expectations\n"
        f'    {path}:{line + 3}: expect at 2026-11-20T10:30:00Z c1 email "cart_reminder"\n'
        f'    {path}:{line + 4}: expect no email "cart_reminder"\n'
        f'    {path}:{line + 5}: expect c1 email "cart_reminder" with {{ cart_id: "k2" }}\n'
        f"    {path}:{line + 6}: expect c1 has contact.score > 10\n"
        "        c1 was: "
        '{"email":"ann@example.se","consent_email":true,"score":5,"stage":"prospect",'
        '"segments":[],"first_seen":"2026-11-20T10:00:00Z","last_seen":"2026-11-20T10:00:00Z"}\n'
        "    actions that happened:\n"
        '        2026-11-20T11:00:00Z c1 email "cart_reminder" {"cart_id":"k1","value":120}\n'
        f"FAIL {path}:{line + 9}: nothing happens\n"
        f'    {path}:{line + 12}: expect c1 email "cart_reminder"\n'
        "    no actions\n"
        f"FAIL {path}:{line + 15}: checked between events\n"
        f'    {path}:{line + 18}: expect c1 email "cart_reminder"\n'
        f"        checked at 2026-11-20T10:00:00Z, right after the event of line {line + 17}\n"
        "    actions that happened:\n"
        '        2026-11-20T11:00:00Z c1 email "cart_reminder" {"cart_id":"k1","value":120}\n'
        "4 passed, 3 failed\n"
    )


def test_a_ruleset_failing_the_check_fails(nudge_test: NudgeTest) -> None:
    t = nudge_test(
        'rule r\n    when ping\n    if contact in nowhere\n    then\n        send webhook "x"\nend\n'
    )
    assert t.code == 1
    assert "unknown segment `nowhere`" in t.stdout
    assert "passed" not in t.stdout


def test_identify_in_a_test_can_merge_an_anonymous_contact(nudge_test: NudgeTest) -> None:
    t = nudge_test(
        """
rule views
    when page_viewed
    then
        score += 1
end

test "the visitor's score follows them"
    at 2026-11-20T10:00:00Z a1 page_viewed { path: "/" }
    at 2026-11-20T10:05:00Z a1 page_viewed { path: "/pricing" }
    at 2026-11-20T10:10:00Z c1 identify { email: "x@y.se", anonymous_id: "a1" }
    expect c1 has contact.score == 2 and contact.email == "x@y.se"
end
"""
    )
    assert t.stdout.endswith("1 passed, 0 failed\n"), t.stdout


def test_a_failing_test_shows_what_was_suppressed_and_why(nudge_test: NudgeTest) -> None:
    t = nudge_test(
        "rule hello\n    when signed_up\n    then\n"
        '        send email "welcome"\n        audience add "fans"\nend\n'
        'test "no consent"\n    given contact c1 { email: "a@x.se", consent_email: true }\n'
        "    at 2026-11-20T10:00:00Z c1 signed_up\n"
        '    expect c1 audience_add "fans"\nend\n'
    )
    assert t.code == 1
    assert t.stdout.splitlines()[-5:] == [
        "    actions that happened:",
        '        2026-11-20T10:00:00Z c1 email "welcome"',
        "    suppressed:",
        '        2026-11-20T10:00:00Z c1 audience_add "fans" (no_consent)',
        "0 passed, 1 failed",
    ]


def test_an_expectation_may_name_the_slot_a_show_fills(nudge_test: NudgeTest) -> None:
    rules = 'rule vip\n    when ping\n    then\n        show "vip_banner" in "home_hero"\nend\n'
    t = nudge_test(
        rules + 'test "the hero"\n    at 2026-11-20T10:00:00Z c1 ping\n'
        '    expect c1 show "vip_banner" in "home_hero"\n'
        '    expect no show in "sidebar"\nend\n'
        'test "the sidebar"\n    at 2026-11-20T10:00:00Z c1 ping\n'
        '    expect c1 show "vip_banner" in "sidebar"\nend\n'
    )
    assert t.code == 1
    assert t.stdout.splitlines()[-5:] == [
        f"FAIL {t.path}:11: the sidebar",
        f'    {t.path}:13: expect c1 show "vip_banner" in "sidebar"',
        "    actions that happened:",
        '        2026-11-20T10:00:00Z c1 show "vip_banner" in "home_hero"',
        "1 passed, 1 failed",
    ]


def test_an_expectation_may_name_a_rule_s_goal_conversion(nudge_test: NudgeTest) -> None:
    rules = (
        'rule cart\n    when cart_updated\n    then\n        send webhook "remind"\n'
        "    goal order_completed within 3d\nend\n"
    )
    t = nudge_test(
        rules + 'test "in time"\n    at 2026-11-20T10:00:00Z c1 cart_updated\n'
        "    at 2026-11-21T10:00:00Z c1 order_completed\n"
        '    expect at 2026-11-21T10:00:00Z c1 conversion "cart"\nend\n'
        'test "too late"\n    at 2026-11-20T10:00:00Z c1 cart_updated\n'
        "    at 2026-11-25T10:00:00Z c1 order_completed\n"
        '    expect c1 conversion "cart"\nend\n'
    )
    assert t.code == 1
    assert t.stdout.splitlines()[-5:] == [
        f"FAIL {t.path}:12: too late",
        f'    {t.path}:15: expect c1 conversion "cart"',
        "    actions that happened:",
        '        2026-11-20T10:00:00Z c1 webhook "remind"',
        "1 passed, 1 failed",
    ]


def test_a_ruleset_without_tests_passes_and_says_it_has_none(nudge_test: NudgeTest) -> None:
    t = nudge_test(RULES)
    assert t.code == 0
    assert t.stdout == "0 passed, 0 failed\n"
    assert f"no `test` blocks in {t.path}" in t.stderr


def test_event_types_may_start_with_digits(nudge_test: NudgeTest) -> None:
    t = nudge_test(
        """
event 2fa_enabled { method: string }

rule secured
    when 2fa_enabled where event.method == "app"
    then
        send webhook "w" with { n: count(2fa_enabled within 1d) }
        emit 3d_secure_done { ok: true }
end

rule done
    when 3d_secure_done
    then
        send webhook "done"
end

test "digits first"
    at 2026-11-20T10:00:00Z c1 2fa_enabled { method: "app" }
    expect webhook "w" with { n: 1 }
    expect webhook "done"
end
"""
    )
    assert t.code == 0, t.stdout
    assert t.stdout.endswith("1 passed, 0 failed\n")


def test_identify_and_given_cannot_set_what_only_the_engine_keeps(nudge_test: NudgeTest) -> None:
    t = nudge_test(
        """
segment vip = contact.spent > 100

rule entered_vip
    when entered vip
    then
        send webhook "entered"
end

rule left_vip
    when left vip
    then
        send webhook "left"
end

test "segments follow the condition, whatever an identify says"
    at 2026-11-20T10:00:00Z c1 identify { spent: 200, segments: ["vip"] }
    expect c1 webhook "entered"
    at 2026-11-20T11:00:00Z c1 identify { segments: [] }
    expect c1 has contact in vip
    at 2026-11-20T11:00:00Z c2 identify { segments: ["vip"] }
    expect no webhook "left"
end

test "a given segments list is not membership"
    given contact c3 { segments: ["vip"] }
    at 2026-11-20T10:00:00Z c3 view { }
    expect no webhook "left"
end

test "score stays a number and stage a string"
    at 2026-11-20T10:00:00Z c1 identify { score: "zz", stage: 5 }
    expect c1 has contact.score == 0 and contact.stage == "prospect"
    at 2026-11-20T11:00:00Z c1 identify { score: 7, stage: "lead" }
    expect c1 has contact.score == 7 and contact.stage == "lead"
end
"""
    )
    assert t.code == 0, t.stdout
