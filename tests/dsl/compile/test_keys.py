"""Index keys of event matches (`plan.MatchKey`): which `where`s give one, and which not."""

from __future__ import annotations

import pytest

from nudge.dsl import Source, load_sources
from nudge.dsl.plan import MatchKey

HEAD = """\
event order_completed { order_id: string, value: number, at: time, flag: bool }
let big = 100
let sku = "p-1"
"""


def key_of(where: str, *, alias: str = "") -> MatchKey | None:
    source = f"{HEAD}rule r\n    when order_completed{alias} where {where}\n    then\n        score += 1\nend\n"
    loaded = load_sources([Source("k.rules", source)])
    assert loaded.ruleset is not None, [str(d) for d in loaded.diagnostics]
    first = loaded.ruleset.rules[0].trigger.first
    assert first is not None
    return first.key


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ('order_completed.order_id == "o-1"', MatchKey("order_id", "==", "o-1")),
        ('"o-1" == event.order_id', MatchKey("order_id", "==", "o-1")),
        ("order_completed.value > 10", MatchKey("value", ">", 10)),
        ("10 < order_completed.value", MatchKey("value", ">", 10)),
        ("order_completed.value <= big * 2", MatchKey("value", "<=", 200)),
        ("order_completed.value == 2.5", MatchKey("value", "==", 2.5)),
        ("order_completed.order_id == sku and contact.vip", MatchKey("order_id", "==", "p-1")),
        # equality wins over an order, whatever the position of the terms
        (
            'order_completed.value >= 5 and (contact.vip and order_completed.order_id == "x")',
            MatchKey("order_id", "==", "x"),
        ),
    ],
)
def test_terms_that_give_a_key(where: str, expected: MatchKey) -> None:
    assert key_of(where) == expected


@pytest.mark.parametrize(
    "where",
    [
        'order_completed.order_id != "o-1"',  # not a look-up by value
        'order_completed.order_id == "o-1" or contact.vip',  # not required
        'not (order_completed.order_id == "o-1")',
        'order_completed.order_id == "2026-11-20T10:00:00Z"',  # may equal a time
        "order_completed.flag == true",  # identity, not a value
        'order_completed.order_id > "m"',  # string order: not indexed
        'order_completed.at > "2026-11-20T10:00:00Z"',  # compared as instants
        'order_completed.id == "evt-1"',  # an envelope field may fall back to the envelope
        "contact.score > 10",  # not the event
        "order_completed.value > contact.score",  # no constant
    ],
)
def test_terms_that_give_no_key(where: str) -> None:
    assert key_of(where) is None


def test_an_alias_names_the_event_too() -> None:
    assert key_of('o.order_id == "x"', alias=" as o") == MatchKey("order_id", "==", "x")


def test_the_module_doctest() -> None:
    import doctest

    from nudge.dsl.compile import keys

    result = doctest.testmod(keys)
    assert result.attempted > 0 and result.failed == 0
