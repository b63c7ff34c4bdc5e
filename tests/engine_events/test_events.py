"""Event intake (LANGUAGE.md section 1): parsing, normalisation and every rejection."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nudge.engine.events import (
    MAX_EVENT_BYTES,
    MAX_EVENT_DEPTH,
    REJECT_REASONS,
    Event,
    Rejected,
    event_from_dict,
    format_time,
    iter_jsonl,
    parse_event,
    parse_record,
    parse_time,
)


def raw_event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": "evt-9",
        "event": "cart_updated",
        "contact_id": "c-42",
        "timestamp": "2026-11-20T10:00:00Z",
        "properties": {"cart_id": "k1", "value": 120.5},
    }
    for key, value in changes.items():
        if value is ...:
            del event[key]
        else:
            event[key] = value
    return event


def parsed(**changes: Any) -> Event | Rejected:
    return parse_event(orjson.dumps(raw_event(**changes)))


def accepted(result: Event | Rejected) -> Event:
    assert isinstance(result, Event), result
    return result


def rejected(result: Event | Rejected, reason: str) -> Rejected:
    assert isinstance(result, Rejected), result
    assert result.reason == reason, result
    return result


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.upper()).timestamp()


# ---------------------------------------------------------------------------- accepted


def test_the_language_reference_example() -> None:
    event = accepted(parsed())
    assert event == Event(
        id="evt-9",
        type="cart_updated",
        contact_id="c-42",
        ts=epoch("2026-11-20T10:00:00+00:00"),
        timestamp="2026-11-20T10:00:00Z",
        properties={"cart_id": "k1", "value": 120.5},
    )
    assert event.inbound is True
    assert event.traits is None
    assert event.anonymous_id is None


def test_text_input_is_accepted_like_bytes() -> None:
    assert parse_event(orjson.dumps(raw_event()).decode()) == parsed()


def test_properties_absent_or_null_become_empty() -> None:
    assert accepted(parsed(properties=...)).properties == {}
    assert accepted(parsed(properties=None)).properties == {}


def test_unknown_top_level_fields_are_ignored() -> None:
    assert accepted(parsed(source="web", version=2)) == accepted(parsed())


def test_integer_ids_become_strings() -> None:
    event = accepted(parsed(id=17, contact_id=42))
    assert (event.id, event.contact_id) == ("17", "42")


def test_identify_carries_traits_and_merge_source() -> None:
    traits = {"email": "ann@example.se", "consent_email": True, "phone": None}
    event = accepted(parsed(event="identify", properties=..., traits=traits, anonymous_id="a-7"))
    assert event.type == "identify"
    assert event.traits == traits
    assert event.anonymous_id == "a-7"
    assert event.properties == traits  # rules read an identify's traits as its fields
    assert event.to_json()["properties"] == {}  # written once, as traits
    assert parse_event(orjson.dumps(event.to_json())) == event


def test_an_identify_s_own_properties_win_over_its_traits_as_fields() -> None:
    event = accepted(
        parsed(event="identify", properties={"email": "p@x", "page": "/"}, traits={"email": "t@x"})
    )
    assert event.properties == {"email": "p@x", "page": "/"}
    assert event.traits == {"email": "t@x"}
    assert parse_event(orjson.dumps(event.to_json())) == event


def test_identify_without_traits_has_empty_traits() -> None:
    event = accepted(parsed(event="identify", properties=..., anonymous_id="a-7"))
    assert event.traits == {}
    assert event.anonymous_id == "a-7"


def test_identify_merging_a_contact_into_itself_is_no_merge() -> None:
    event = accepted(parsed(event="identify", anonymous_id="c-42"))
    assert event.anonymous_id is None


def test_traits_and_anonymous_id_are_kept_on_identify_only() -> None:
    event = accepted(parsed(traits={"email": "x@example.se"}, anonymous_id="a-7"))
    assert event.traits is None
    assert event.anonymous_id is None


def test_inbound_false_marks_an_emitted_event_and_round_trips() -> None:
    event = accepted(parsed(event="email_opened", inbound=False))
    assert event.inbound is False
    again = accepted(event_from_dict(event.to_json()))
    assert again == event
    assert "inbound" not in accepted(parsed()).to_json()


@pytest.mark.parametrize(
    ("event_type", "given", "inbound"),
    [
        ("email_sent", None, False),
        ("stage_changed", None, False),
        ("email_sent", True, True),
        ("email_opened", None, True),
        ("page_viewed", False, False),
    ],
)
def test_engine_and_delivery_event_types_default_to_not_inbound(
    event_type: str, given: bool | None, inbound: bool
) -> None:
    changes: dict[str, Any] = {"event": event_type}
    if given is not None:
        changes["inbound"] = given
    event = accepted(parsed(**changes))
    assert event.inbound is inbound
    assert accepted(parse_event(orjson.dumps(event.to_json()))) == event


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"event": "identify", "traits": {"email": "a@example.se"}, "anonymous_id": "a-1"},
        {"properties": ..., "timestamp": "2026-11-20T12:00:00.25+02:00"},
        {"inbound": False},
    ],
)
def test_to_json_parses_back_to_the_same_event(changes: dict[str, Any]) -> None:
    event = accepted(parsed(**changes))
    assert accepted(parse_event(orjson.dumps(event.to_json()))) == event


def test_to_json_has_the_section_1_keys() -> None:
    assert list(accepted(parsed()).to_json()) == [
        "id",
        "event",
        "contact_id",
        "timestamp",
        "properties",
    ]


# ---------------------------------------------------------------------------- time


@pytest.mark.parametrize(
    ("given_text", "normalised"),
    [
        ("2026-11-20T10:00:00Z", "2026-11-20T10:00:00Z"),
        ("2026-11-20T12:00:00+02:00", "2026-11-20T10:00:00Z"),
        ("2026-11-20T05:00:00-05:00", "2026-11-20T10:00:00Z"),
        ("2026-11-20T10:00:00+00:00", "2026-11-20T10:00:00Z"),
        ("2026-11-20T12:00:00+0200", "2026-11-20T10:00:00Z"),
        ("2026-11-21T01:30:00+15:30", "2026-11-20T10:00:00Z"),
        ("2026-11-20T10:00:00.5Z", "2026-11-20T10:00:00.500Z"),
        ("2026-11-20T10:00:00.250Z", "2026-11-20T10:00:00.250Z"),
        ("2026-11-20T10:00:00.000Z", "2026-11-20T10:00:00Z"),
        ("2026-11-20T11:00:00.123456+01:00", "2026-11-20T10:00:00.123456Z"),
        ("2026-11-20 10:00:00Z", "2026-11-20T10:00:00Z"),
        ("2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00Z"),
        ("2026-11-20t10:00:00z", "2026-11-20T10:00:00Z"),
    ],
)
def test_timestamps_are_normalised_to_utc(given_text: str, normalised: str) -> None:
    event = accepted(parsed(timestamp=given_text))
    assert event.timestamp == normalised
    assert event.ts == pytest.approx(epoch(given_text), abs=1e-6)
    assert event.ts == pytest.approx(epoch(normalised.replace("Z", "+00:00")), abs=1e-6)


def test_an_offset_changes_the_epoch() -> None:
    utc = parse_time("2026-11-20T10:00:00Z")
    assert parse_time("2026-11-20T10:00:00+02:00") == utc - 7200
    assert parse_time("2026-11-20T10:00:00-05:00") == utc + 5 * 3600
    assert utc == datetime(2026, 11, 20, 10, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    "text", ["2026-11-20T10:00:00", "2026-11-20", "nonsense", "2026-11-20T25:00:00Z", ""]
)
def test_parse_time_refuses_malformed_or_offsetless(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (0.0, "1970-01-01T00:00:00Z"),
        (1795168800.0, "2026-11-20T10:00:00Z"),
        (1795168800.5, "2026-11-20T10:00:00.500Z"),
        (1795168800.123456, "2026-11-20T10:00:00.123456Z"),
        (-1.0, "1969-12-31T23:59:59Z"),
    ],
)
def test_format_time(ts: float, text: str) -> None:
    assert format_time(ts) == text
    assert parse_time(text) == pytest.approx(ts, abs=1e-6)


def test_a_time_past_the_year_9999_is_written_as_its_last_instant() -> None:
    # no timestamp gets there; a wait of thousands of years does, and must not crash
    assert format_time(1e12) == "9999-12-31T23:59:59.999999Z"
    assert format_time(-1e12) == "0001-01-01T00:00:00Z"


@given(
    st.datetimes(  # where an epoch float still holds every microsecond
        min_value=datetime(1902, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
)
def test_format_and_parse_time_agree(moment: datetime) -> None:
    text = format_time(moment.timestamp())
    assert text.endswith("Z")
    assert parse_time(text) == pytest.approx(moment.timestamp(), abs=1e-6)
    event = accepted(parsed(timestamp=moment.isoformat()))
    assert event.timestamp == text


@given(st.integers(min_value=0, max_value=3599), st.integers(min_value=0, max_value=23))
def test_timestamps_of_an_hour_already_seen_parse_as_the_first(offset: int, hour: int) -> None:
    first = f"2026-11-20T{hour:02d}:00:00Z"
    text = format_time(parse_time(first) + offset)  # the same hour, any minute and second
    assert parse_time(text) == datetime.fromisoformat(text).timestamp()
    assert accepted(parsed(timestamp=text)).timestamp == text


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-20T10:60:00Z",
        "2026-11-20T10:00:60Z",
        "2026-11-20T10:0a:00Z",
        "2026-11-20T10:00:-1Z",
        "2026-11-20T10:00:\u0661\u0662Z",  # digits, but not ASCII ones
    ],
)
def test_minutes_and_seconds_are_checked_in_an_hour_already_seen(text: str) -> None:
    assert (
        accepted(parsed(timestamp="2026-11-20T10:59:59Z")).ts
        == parse_time("2026-11-20T10:00:00Z") + 3599
    )
    rejected(parsed(timestamp=text), "bad_timestamp")


# ---------------------------------------------------------------------------- rejected


@pytest.mark.parametrize("field", ["id", "event", "contact_id", "timestamp"])
def test_each_required_field_missing(field: str) -> None:
    result = rejected(parsed(**{field: ...}), "missing_field")
    assert f"`{field}`" in result.detail


@pytest.mark.parametrize("field", ["id", "event", "contact_id", "timestamp"])
def test_a_null_required_field_counts_as_missing(field: str) -> None:
    rejected(parsed(**{field: None}), "missing_field")


@pytest.mark.parametrize(
    "changes",
    [
        {"id": ""},
        {"id": "   "},
        {"contact_id": ""},
        {"id": 1.5},
        {"contact_id": True},
        {"contact_id": ["c-1"]},
        {"properties": "k1"},
        {"properties": [1, 2]},
        {"event": "identify", "traits": "ann"},
        {"event": "identify", "anonymous_id": ""},
        {"event": "identify", "anonymous_id": {"id": 1}},
        {"traits": 3},
        {"inbound": "no"},
    ],
)
def test_bad_fields(changes: dict[str, Any]) -> None:
    result = rejected(parsed(**changes), "bad_field")
    assert any(f"`{name}`" in result.detail for name in changes)


@pytest.mark.parametrize(
    "name", ["Order Completed", "order-completed", "köp", "a.b", "", "x\n", 12, ["x"]]
)
def test_bad_event_types(name: object) -> None:
    rejected(parsed(event=name), "bad_event_type")


def test_event_types_may_hold_letters_digits_and_underscores() -> None:
    for name in ["Order_Completed", "step2", "_", "9"]:
        assert accepted(parsed(event=name)).type == name


def test_a_timestamp_without_offset_says_so() -> None:
    result = rejected(parsed(timestamp="2026-11-20T10:00:00"), "bad_timestamp")
    assert "offset" in result.detail


@pytest.mark.parametrize(
    "value", ["yesterday", "2026-13-01T00:00:00Z", 1795168800, "0001-01-01T00:00:00+01:00"]
)
def test_bad_timestamps(value: object) -> None:
    rejected(parsed(timestamp=value), "bad_timestamp")


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b"\xff\xfe", b'{"id": 1,}'])
def test_not_json(raw: bytes) -> None:
    result = rejected(parse_event(raw), "not_json")
    assert result.raw == raw


@pytest.mark.parametrize("raw", [b"[]", b"[{}]", b"42", b'"evt"', b"null", b"true"])
def test_not_object(raw: bytes) -> None:
    assert rejected(parse_event(raw), "not_object").raw == raw


def test_too_large() -> None:
    big = orjson.dumps(raw_event(properties={"note": "x" * MAX_EVENT_BYTES}))
    result = rejected(parse_event(big), "too_large")
    assert result.raw == big[:MAX_EVENT_BYTES]
    assert str(len(big)) in result.detail


def test_the_limit_is_inclusive() -> None:
    base = orjson.dumps(raw_event(properties={"note": ""}))
    exact = orjson.dumps(raw_event(properties={"note": "x" * (MAX_EVENT_BYTES - len(base))}))
    assert len(exact) == MAX_EVENT_BYTES
    accepted(parse_event(exact))
    over = orjson.dumps(raw_event(properties={"note": "x" * (MAX_EVENT_BYTES - len(base) + 1)}))
    rejected(parse_event(over), "too_large")


def test_the_limit_counts_utf8_bytes_of_text_input() -> None:
    base = orjson.dumps(raw_event(properties={"note": ""}))
    text = orjson.dumps(raw_event(properties={"note": "å" * (MAX_EVENT_BYTES // 2)})).decode()
    assert len(text) < MAX_EVENT_BYTES < len(base) + MAX_EVENT_BYTES
    rejected(parse_event(text), "too_large")


def test_every_reason_is_listed_and_serialisable() -> None:
    results = [
        parse_event(b"{"),
        parse_event(b"[]"),
        parsed(id=...),
        parsed(properties=1),
        parsed(timestamp="2026-11-20T10:00:00"),
        parsed(event="a b"),
        parse_event(b" " * (MAX_EVENT_BYTES + 1)),
        parsed(properties={"x": _lists_in_lists(MAX_EVENT_DEPTH)}),
    ]
    reasons = [r.reason for r in results if isinstance(r, Rejected)]
    assert tuple(reasons) == REJECT_REASONS
    for result in results:
        assert isinstance(result, Rejected)
        doc = result.to_json()
        assert set(doc) == {"reason", "detail", "raw"}
        assert isinstance(doc["raw"], str)
        orjson.dumps(doc)


def test_rejected_keeps_the_raw_input() -> None:
    raw = orjson.dumps(raw_event(id=...))
    assert rejected(parse_event(raw), "missing_field").raw == raw


def test_event_from_dict_keeps_the_object_as_raw_when_none_given() -> None:
    obj = raw_event(contact_id=...)
    result = rejected(event_from_dict(obj), "missing_field")
    assert orjson.loads(result.raw) == obj
    given_raw = b"as received"
    assert rejected(event_from_dict(obj, given_raw), "missing_field").raw == given_raw


def test_raw_of_undecodable_bytes_serialises_lossily() -> None:
    doc = rejected(parse_event(b"\xff{"), "not_json").to_json()
    assert "\ufffd" in doc["raw"]


# ---------------------------------------------------------------------------- records


def test_a_record_may_hold_one_object() -> None:
    assert parse_record(orjson.dumps(raw_event())) == [parsed()]


def test_a_record_may_hold_an_array_each_validated_alone() -> None:
    good = raw_event()
    bad = raw_event(id="evt-10", contact_id=...)
    results = parse_record(orjson.dumps([good, bad, 7, {**good, "id": "evt-11"}]))
    assert [type(r) for r in results] == [Event, Rejected, Rejected, Event]
    assert isinstance(results[1], Rejected)
    assert results[1].reason == "missing_field"
    assert orjson.loads(results[1].raw) == bad
    assert isinstance(results[2], Rejected)
    assert results[2].reason == "not_object"
    assert isinstance(results[3], Event)
    assert results[3].id == "evt-11"


def test_the_size_limit_applies_per_event_in_an_array() -> None:
    small = raw_event(properties={"note": "x" * (MAX_EVENT_BYTES // 2)})
    big = raw_event(id="evt-10", properties={"note": "x" * MAX_EVENT_BYTES})
    results = parse_record(orjson.dumps([small, small, big]))
    assert [r.reason if isinstance(r, Rejected) else "ok" for r in results] == [
        "ok",
        "ok",
        "too_large",
    ]


def test_a_single_object_record_over_the_limit_is_rejected() -> None:
    big = orjson.dumps(raw_event(properties={"note": "x" * MAX_EVENT_BYTES}))
    [result] = parse_record(big)
    rejected(result, "too_large")


@pytest.mark.parametrize(
    ("raw", "reason"), [(b"{", "not_json"), (b"3", "not_object"), (b'"x"', "not_object")]
)
def test_a_broken_record_is_one_rejection(raw: bytes, reason: str) -> None:
    [result] = parse_record(raw)
    rejected(result, reason)


def test_an_empty_array_holds_no_events() -> None:
    assert parse_record(b"[]") == []


# ---------------------------------------------------------------------------- JSON lines


def test_iter_jsonl_skips_blank_lines_and_keeps_order() -> None:
    lines = [
        orjson.dumps(raw_event(id="e1")),
        b"",
        b"   ",
        b"{broken",
        orjson.dumps(raw_event(id="e2")) + b"\r",
        orjson.dumps(raw_event(id="e3")),
    ]
    results = list(iter_jsonl(io.BytesIO(b"\n".join(lines))))  # no final newline
    assert [r.id if isinstance(r, Event) else r.reason for r in results] == [
        "e1",
        "not_json",
        "e2",
        "e3",
    ]


def test_iter_jsonl_rejects_long_lines_and_carries_on() -> None:
    big = orjson.dumps(raw_event(id="big", properties={"note": "x" * (3 * MAX_EVENT_BYTES)}))
    data = b"\n".join([orjson.dumps(raw_event(id="e1")), big, orjson.dumps(raw_event(id="e2"))])
    results = list(iter_jsonl(io.BytesIO(data + b"\n")))
    assert [r.id if isinstance(r, Event) else r.reason for r in results] == [
        "e1",
        "too_large",
        "e2",
    ]
    too_large = results[1]
    assert isinstance(too_large, Rejected)
    assert len(too_large.raw) <= MAX_EVENT_BYTES
    assert str(len(big)) in too_large.detail


@pytest.mark.parametrize("extra", [0, 1, 2, 3])
def test_iter_jsonl_limit_is_on_the_line_without_its_end(extra: int) -> None:
    base = orjson.dumps(raw_event(properties={"note": ""}))
    line = orjson.dumps(raw_event(properties={"note": "x" * (MAX_EVENT_BYTES - len(base) + extra)}))
    [result] = list(iter_jsonl(io.BytesIO(line + b"\r\n")))
    assert isinstance(result, Event) == (extra == 0)


# ---------------------------------------------------------------------------- robustness

int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | int64 | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)

event_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=5), int64, json_values),
        "event": st.one_of(
            st.sampled_from(["identify", "cart_updated", "a b", "email_sent"]), json_values
        ),
        "contact_id": st.one_of(st.text(max_size=5), int64, json_values),
        "timestamp": st.one_of(
            st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
            st.datetimes().map(lambda d: d.isoformat()),
            json_values,
        ),
        "properties": json_values,
        "traits": json_values,
        "anonymous_id": st.one_of(st.text(max_size=3), json_values),
        "inbound": json_values,
        "type": st.sampled_from(["track", "page", "identify", "other"]),
        "userId": st.one_of(st.text(max_size=3), json_values),
        "messageId": st.one_of(st.text(max_size=3), json_values),
    },
)


@given(st.binary(max_size=300))
def test_parse_event_never_raises_on_bytes(raw: bytes) -> None:
    assert isinstance(parse_event(raw), Event | Rejected)
    assert all(isinstance(r, Event | Rejected) for r in parse_record(raw))


@given(st.text(max_size=300))
def test_parse_event_never_raises_on_text(raw: str) -> None:
    assert isinstance(parse_event(raw), Event | Rejected)


@given(event_like)
def test_event_like_objects_parse_or_reject(obj: dict[str, Any]) -> None:
    result = parse_event(orjson.dumps(obj))
    if isinstance(result, Rejected):
        assert result.reason in REJECT_REASONS
        assert result.raw == orjson.dumps(obj)
    else:
        assert accepted(parse_event(orjson.dumps(result.to_json()))) == result


@given(event_like)
def test_a_null_traits_field_changes_nothing(obj: dict[str, Any]) -> None:
    """`"traits": null` is ignorable, and it sends the object down the full check."""
    if "traits" in obj:
        obj = {key: value for key, value in obj.items() if key != "traits"}
    plain = parse_event(orjson.dumps(obj))
    with_null = parse_event(orjson.dumps({**obj, "traits": None}))
    if isinstance(plain, Rejected):
        assert isinstance(with_null, Rejected)
        assert (with_null.reason, with_null.detail) == (plain.reason, plain.detail)
    else:
        assert with_null == plain


def test_a_contact_id_with_a_control_character_is_set_aside() -> None:
    for field in ("contact_id", "anonymous_id"):
        obj = {
            "id": "e1",
            "event": "identify",
            "contact_id": "c1",
            "timestamp": "2026-11-20T10:00:00Z",
        }
        obj[field] = "c\x1f2"
        got = parse_event(orjson.dumps(obj))
        assert isinstance(got, Rejected) and got.reason == "bad_field", field
        assert field in got.detail
    ok = parse_event(orjson.dumps({**obj, "anonymous_id": "Jürgen Å", "contact_id": "c 1"}))
    assert isinstance(ok, Event)


def test_events_nested_past_the_limit_are_set_aside_wherever_they_come_from() -> None:
    def nested(depth: int) -> dict[str, object]:
        inner: dict[str, object] = {"leaf": 1}
        for _ in range(depth):
            inner = {"x": inner}
        return {
            "id": "e1",
            "event": "ping",
            "contact_id": "c1",
            "timestamp": "2026-11-20T10:00:00Z",
            "properties": inner,
        }

    fits = nested(MAX_EVENT_DEPTH - 3)  # the event, its properties and the leaf's object
    assert isinstance(parse_event(orjson.dumps(fits)), Event)
    deep = nested(MAX_EVENT_DEPTH)
    raw = orjson.dumps(deep)
    assert _reason(parse_event(raw)) == "too_deep"
    assert [_reason(x) for x in parse_record(raw)] == ["too_deep"]
    assert [_reason(x) for x in parse_record(orjson.dumps([fits, deep]))] == [None, "too_deep"]
    assert _reason(event_from_dict(deep)) == "too_deep"


def _lists_in_lists(depth: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(depth):
        out = [out]
    return out


def _reason(x: Event | Rejected) -> str | None:
    return x.reason if isinstance(x, Rejected) else None


def test_nesting_past_what_the_json_decoder_takes_is_too_deep_too() -> None:
    raw = b'{"id":"e1","event":"ping","contact_id":"c1","timestamp":"2026-11-20T10:00:00Z",'
    raw += b'"properties":{"a":' + b"[" * 5000 + b"]" * 5000 + b"}}"
    assert rejected(parse_event(raw), "too_deep").raw == raw[:MAX_EVENT_BYTES]
    assert [r.reason for r in parse_record(raw)] == ["too_deep"]


def _the_full_way(raw: bytes) -> Event | Rejected:
    """What `parse_event` gives without its plain path: the object decoded whole, checked."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Rejected("not_json", "", raw)
    if not isinstance(obj, dict):
        return Rejected("not_object", "", raw)
    return event_from_dict(obj, raw)


def _same(got: Event | Rejected, want: Event | Rejected) -> bool:
    if isinstance(want, Rejected):
        return isinstance(got, Rejected) and got.reason == want.reason
    return got == want


@given(event_like)
def test_events_of_any_shape_read_as_the_full_way_reads_them(obj: dict[str, Any]) -> None:
    raw = orjson.dumps(obj)
    assert _same(parse_event(raw), _the_full_way(raw))


@pytest.mark.parametrize(
    "properties",
    [
        '{"n": 123456789012345678901234567890}',  # past 64 bits: a float, as the decoder reads it
        '{"n": -9223372036854775809}',
        '{"n": 18446744073709551615, "m": -9223372036854775808}',
        '{"a": 1, "a": 2}',  # the last one holds
        '{"items": [{"sku": "s1"}], "n": 1}',
        "null",
        '{"s": "\\u00e5\\ud83d\\ude00"}',
    ],
)
def test_the_plain_path_reads_what_the_decoder_reads(properties: str) -> None:
    raw = (
        '{"id":"e1","event":"cart_updated","contact_id":"c1",'
        f'"timestamp":"2026-11-20T10:00:00Z","properties":{properties}}}'
    ).encode()
    got = parse_event(raw)
    assert isinstance(got, Event)
    assert got == _the_full_way(raw)
    assert {k: type(v) for k, v in got.properties.items()} == {
        k: type(v) for k, v in (orjson.loads(raw)["properties"] or {}).items()
    }


def test_a_byte_order_mark_before_the_first_line_is_no_part_of_it() -> None:
    line = orjson.dumps(raw_event())
    results = list(iter_jsonl(io.BytesIO(b"\xef\xbb\xbf" + line + b"\n" + line + b"\n")))
    assert [type(r) for r in results] == [Event, Event]
    # only there: elsewhere it is what it is, not JSON
    (second,) = [
        r for r in iter_jsonl(io.BytesIO(line + b"\n\xef\xbb\xbf" + line)) if r is not None
    ][1:]
    assert isinstance(second, Rejected) and second.reason == "not_json"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id":"e1","event":"ping","contact_id":"c1","timestamp":"2026-11-20T10:00:00Z",'
        b'"properties":{"x":"\xff"}}',
        b'{"id":"e\xc3","event":"ping","contact_id":"c1","timestamp":"2026-11-20T10:00:00Z"}',
        '{"id":"e1","event":"ping","contact_id":"c1","timestamp":"2026-11-20T10:00:00Z",'
        '"properties":{"x":"\ud800"}}',  # text with a lone surrogate
    ],
)
def test_bad_unicode_is_not_json(raw: bytes | str) -> None:
    assert rejected(parse_event(raw), "not_json")
    assert [r.reason for r in iter_jsonl(io.BytesIO(raw if isinstance(raw, bytes) else b""))] in (
        ["not_json"],
        [],
    )


@given(st.binary(max_size=200))
def test_bytes_around_a_valid_event_read_as_the_full_way_reads_them(noise: bytes) -> None:
    raw = b'{"id":"e1","event":"ping","contact_id":"c1","timestamp":"2026-11-20T10:00:00Z",'
    raw += b'"properties":{"x":"' + noise.replace(b'"', b"").replace(b"\\", b"") + b'"}}'
    assert _same(parse_event(raw), _the_full_way(raw))
