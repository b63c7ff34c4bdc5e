"""Valid rules that the checker's heuristics must leave alone, and slips they must name right."""

from __future__ import annotations

import pytest

from nudge.dsl import Source, load_sources


def diagnostics(text: str) -> list[tuple[str, str]]:
    return [(d.code, d.message) for d in load_sources([Source("x.rules", text)]).diagnostics]


@pytest.mark.parametrize("event", ["test", "show", "score", "stop", "limit", "wait", "policy"])
def test_a_keyword_that_can_be_meant_may_name_an_event_type(event: str) -> None:
    text = f"rule r\n    when {event}\n    if count({event} within 1d) > 1\n    then\n"
    assert diagnostics(text + '        send webhook "x"\nend\n') == []


def test_a_duration_turned_into_a_number_is_compared_with_numbers() -> None:
    text = "contact { t: time }\nrule r\n    when ping\n    if (now - contact.t) / 86400 > 30\n"
    assert diagnostics(text + '    then\n        send webhook "x"\nend\n') == []


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ("inactive 30d", "unexpected `30d`; expected `for`"),
        ('entered "vip"', 'unexpected string "vip"; expected a name'),
    ],
)
def test_a_trigger_gone_wrong_further_on_is_not_read_as_a_missing_trigger(
    trigger: str, message: str
) -> None:
    text = f'rule r\n    when {trigger}\n    then\n        send webhook "x"\nend\n'
    assert diagnostics(text) == [("syntax", message)]


def test_a_forgotten_then_is_no_misspelt_trigger_word() -> None:
    text = 'rule r\n    when active\n        send webhook "x"\nend\n'
    [(code, message)] = diagnostics(text)
    assert code == "syntax" and "did you mean" not in message


def test_not_where_it_cannot_go_suggests_no_not_followed_by() -> None:
    text = (
        'rule r\n    when ping where ping.url not null\n    then\n        send webhook "x"\nend\n'
    )
    [(code, message)] = diagnostics(text)
    assert code == "syntax" and "followed by" not in message.split(";")[0]


def test_a_zero_duration_written_with_leading_zeros_is_still_zero() -> None:
    text = 'rule r\n    when ping\n    then\n        send webhook "x"\n    limit 1 per 00000000000000000000000d\nend\n'
    assert [code for code, _ in diagnostics(text)] == ["bad-duration"]
