"""Which segments change as time passes, and the offsets and windows the engine watches."""

from __future__ import annotations

from nudge.dsl import ast, plan
from nudge.dsl.check import check
from nudge.dsl.compile import compile_ruleset
from nudge.dsl.parse import parse
from nudge.dsl.source import Source

DAY = 86400.0


def segments(text: str) -> tuple[plan.Segment, ...]:
    rule_file, diagnostics = parse(Source("t.rules", text))
    assert rule_file is not None and not diagnostics
    return compile_ruleset(check(ast.Ruleset((rule_file,))), {"t.rules": text}).segments


def timings(text: str) -> dict[str, plan.SegmentTiming | None]:
    return {s.name: s.timing for s in segments(text)}


def test_segments_on_traits_alone_do_not_change_with_time() -> None:
    found = timings('segment vip = contact.total_spent > 1000 and contact.country == "SE"\n')
    assert found == {"vip": None}


def test_days_since_watches_the_trait_at_the_number_of_days() -> None:
    found = timings("segment lapsed = days_since(contact.last_order_at) > 30\n")
    timing = found["lapsed"]
    assert timing is not None
    assert timing.traits == ("last_order_at",)
    assert 30 * DAY in timing.offsets and 0.0 in timing.offsets
    assert timing.windows == ()


def test_now_arithmetic_through_a_let_and_another_segment() -> None:
    text = (
        "let grace = 14d\n"
        "segment overdue = now - contact.due_at > grace\n"
        'segment chase = contact in overdue and contact.plan == "pro"\n'
    )
    found = timings(text)
    for name in ("overdue", "chase"):
        timing = found[name]
        assert timing is not None, name
        assert "due_at" in timing.traits
        assert 14 * DAY in timing.offsets


def test_count_windows_are_watched_by_id_and_length() -> None:
    found = timings("segment active = count(page_viewed within 1d) >= 2\n")
    timing = found["active"]
    assert timing is not None
    assert timing.traits == ()
    [(window, seconds)] = timing.windows
    assert window.startswith("w:page_viewed:")
    assert seconds == DAY


def test_which_segments_the_engine_evaluates_at_every_event() -> None:
    found = segments(
        "segment big = contact.total_spent > 1000\n"
        "segment loyal = count(order_completed within 365d) >= 3\n"
        "segment lapsed = days_since(contact.last_order_at) > 30\n"
        "segment returning = contact.last_seen != contact.first_seen\n"
        "let cutoff = now - 7d\n"
        "segment recent = contact.signed_up_at > cutoff\n"
        "segment lapsed_big = contact in lapsed and contact in big\n"
    )
    each_event = {s.name: s.each_event for s in found}
    # data alone (windows are kept on time by the segment timer): only when it changes
    assert each_event == {
        "big": False,
        "loyal": False,
        "lapsed": True,
        "returning": True,
        "recent": True,
        "lapsed_big": True,
    }


def test_the_fields_a_segment_reads_through_constants_and_other_segments() -> None:
    found = segments(
        'let home = "SE"\n'
        "segment big = contact.total_spent > 1000\n"
        "segment local_big = contact in big and contact.country == home\n"
        "segment loyal = count(order_completed within 365d) >= 3\n"
    )
    reads = {s.name: s.reads for s in found}
    assert reads == {
        "big": frozenset({"total_spent"}),
        "local_big": frozenset({"total_spent", "country"}),
        "loyal": frozenset(),
    }
