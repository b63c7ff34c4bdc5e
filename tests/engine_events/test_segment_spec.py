"""Segment-spec messages mapped to Nudge events (LANGUAGE.md section 1)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from nudge.engine.events import Event, Rejected, parse_event, parse_record, parse_time
from nudge.engine.segment_spec import snake_case

WHEN = "2026-11-20T10:00:00.250Z"


def message(kind: str, **fields: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": kind, "messageId": "m-1", "timestamp": WHEN}
    for key, value in fields.items():
        if value is ...:
            msg.pop(key, None)
        else:
            msg[key] = value
    return msg


def parsed(kind: str, **fields: Any) -> Event:
    result = parse_event(orjson.dumps(message(kind, **fields)))
    assert isinstance(result, Event), result
    return result


def rejected(kind: str, reason: str, **fields: Any) -> Rejected:
    result = parse_event(orjson.dumps(message(kind, **fields)))
    assert isinstance(result, Rejected), result
    assert result.reason == reason, result
    return result


def test_track() -> None:
    event = parsed(
        "track",
        event="Order Completed",
        userId="u-1",
        anonymousId="anon-1",
        properties={"order_id": "o-1", "revenue": 99.5},
        context={"ip": "203.0.113.9"},
    )
    assert event == Event(
        id="m-1",
        type="order_completed",
        contact_id="u-1",
        ts=parse_time(WHEN),
        timestamp=WHEN,
        properties={"order_id": "o-1", "revenue": 99.5},
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Order Completed", "order_completed"),
        ("Product Viewed", "product_viewed"),
        ("  Signed-Up!! (web) ", "signed_up_web"),
        ("order_completed", "order_completed"),
        ("Köp Genomfört", "kop_genomfort"),
        ("Step 2 Done", "step_2_done"),
    ],
)
def test_track_names_become_snake_case(name: str, expected: str) -> None:
    assert snake_case(name) == expected
    assert parsed("track", event=name, userId="u-1").type == expected


def test_a_track_name_with_no_letters_or_digits_is_a_bad_event_type() -> None:
    rejected("track", "bad_event_type", event="!!!", userId="u-1")
    rejected("track", "bad_event_type", event=5, userId="u-1")


def test_track_needs_an_event_name() -> None:
    assert "`event`" in rejected("track", "missing_field", userId="u-1").detail


def test_the_anonymous_id_is_the_contact_without_a_user_id() -> None:
    event = parsed("track", event="Product Viewed", anonymousId="anon-1")
    assert event.contact_id == "anon-1"
    assert event.anonymous_id is None


def test_an_empty_user_id_is_none_and_the_anonymous_id_the_contact() -> None:
    event = parsed("track", event="Product Viewed", userId="", anonymousId="anon-1")
    assert event.contact_id == "anon-1"
    rejected("track", "missing_field", event="X", userId="", anonymousId="")


@pytest.mark.parametrize("kind", ["group", "TRACK", "bogus"])
def test_a_message_of_another_segment_type_says_so(kind: str) -> None:
    detail = rejected(kind, "bad_field", userId="u-1").detail
    assert repr(kind) in detail and "track" in detail


def test_page() -> None:
    event = parsed(
        "page",
        userId="u-1",
        name="Pricing",
        properties={"path": "/pricing", "url": "https://shop.example.com/pricing"},
    )
    assert event.type == "page_viewed"
    assert event.properties == {
        "path": "/pricing",
        "url": "https://shop.example.com/pricing",
        "name": "Pricing",
    }


def test_page_keeps_a_name_already_in_the_properties() -> None:
    event = parsed("page", userId="u-1", name="Top", properties={"name": "Own"})
    assert event.properties == {"name": "Own"}


def test_screen() -> None:
    event = parsed("screen", anonymousId="anon-1", name="Basket")
    assert (event.type, event.contact_id, event.properties) == (
        "screen_viewed",
        "anon-1",
        {"name": "Basket"},
    )


def test_identify_sets_traits() -> None:
    event = parsed("identify", userId="u-1", traits={"email": "ann@example.se"})
    assert (event.type, event.contact_id, event.traits) == (
        "identify",
        "u-1",
        {"email": "ann@example.se"},
    )
    assert event.anonymous_id is None


def test_identify_with_both_ids_merges_the_anonymous_contact() -> None:
    event = parsed("identify", userId="u-1", anonymousId="anon-1", traits={"first_name": "Ann"})
    assert event.contact_id == "u-1"
    assert event.anonymous_id == "anon-1"
    assert event.traits == {"first_name": "Ann"}


def test_identify_of_an_anonymous_visitor_alone_sets_its_traits() -> None:
    event = parsed("identify", anonymousId="anon-1", traits={"country": "SE"})
    assert (event.contact_id, event.anonymous_id, event.traits) == (
        "anon-1",
        None,
        {"country": "SE"},
    )


def test_alias_merges_the_previous_id() -> None:
    event = parsed("alias", userId="u-1", previousId="anon-1")
    assert (event.type, event.contact_id, event.anonymous_id, event.traits) == (
        "identify",
        "u-1",
        "anon-1",
        {},
    )


def test_alias_needs_both_ids() -> None:
    rejected("alias", "missing_field", previousId="anon-1", anonymousId="x")
    rejected("alias", "missing_field", userId="u-1")


def test_a_message_without_either_id_is_missing_its_contact() -> None:
    detail = rejected("track", "missing_field", event="Order Completed").detail
    assert "`userId`" in detail


def test_the_message_id_is_required() -> None:
    rejected("track", "missing_field", event="X", userId="u-1", messageId=...)


def test_integer_user_ids_become_strings() -> None:
    assert parsed("track", event="X", userId=42).contact_id == "42"


def test_the_time_falls_back_to_original_timestamp_then_received_at() -> None:
    event = parsed(
        "track", event="X", userId="u", timestamp=..., originalTimestamp="2026-11-20T11:00:00+01:00"
    )
    assert event.timestamp == "2026-11-20T10:00:00Z"
    event = parsed("track", event="X", userId="u", timestamp=..., receivedAt=WHEN)
    assert event.timestamp == WHEN
    rejected("track", "missing_field", event="X", userId="u", timestamp=...)
    rejected("track", "bad_timestamp", event="X", userId="u", timestamp="2026-11-20T10:00:00")


def test_bad_properties_or_traits() -> None:
    rejected("track", "bad_field", event="X", userId="u", properties=[1])
    rejected("identify", "bad_field", userId="u", traits="ann")


def test_a_native_event_with_a_type_property_is_not_segment() -> None:
    raw = {
        "id": "e1",
        "event": "page_viewed",
        "contact_id": "c-1",
        "timestamp": WHEN,
        "type": "page",
    }
    result = parse_event(orjson.dumps(raw))
    assert isinstance(result, Event)
    assert (result.type, result.contact_id) == ("page_viewed", "c-1")


def test_a_batch_is_a_list_of_events() -> None:
    batch = {
        "batch": [
            message("identify", messageId="m-1", userId="u-1", anonymousId="anon-1", traits={}),
            message("track", messageId="m-2", event="Cart Updated", userId="u-1"),
            message("track", messageId="m-3", userId="u-1"),  # no event name
            message("page", messageId="m-4", anonymousId="anon-2"),
        ],
        "sentAt": WHEN,
    }
    results = parse_record(orjson.dumps(batch))
    summary = [(r.id, r.type) if isinstance(r, Event) else r.reason for r in results]
    assert summary == [
        ("m-1", "identify"),
        ("m-2", "cart_updated"),
        "missing_field",
        ("m-4", "page_viewed"),
    ]
