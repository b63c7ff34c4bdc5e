"""Event intake: raw input (LANGUAGE.md section 1) to a normalised `Event`, or a `Rejected`.

Parsing never raises on bad input. Anything that is not a valid event comes back as a
`Rejected` carrying a stable reason code, a sentence for people, and the bytes as received,
so the caller can set it aside (dead-letter topic, rejects file) and count it.

Rules beyond LANGUAGE.md, kept here so the language reference can quote them:

- `id`, `contact_id` (and `anonymous_id`) are non-empty strings; an integer is accepted and
  turned into its decimal string (`42` -> `"42"`). Floats, booleans, empty or all-blank
  strings are `bad_field`. A required field that is `null` counts as missing.
- `event` matches `[A-Za-z0-9_]+`, otherwise `bad_event_type`.
- `timestamp` is an ISO 8601 string with an offset (`Z`, `+02:00`, `+0200`, `+02`); one
  without an offset, or not a string, is `bad_timestamp`. It is normalised to UTC with `Z`
  (see `format_time`).
- `properties` absent or `null` is `{}`; anything but an object is `bad_field`. `traits`
  likewise, and they are kept on `identify` events only (an `identify` without traits has
  `{}`); on other events they are checked and dropped.
- `anonymous_id` is kept on `identify` events only, and dropped when equal to `contact_id`.
- `inbound`, optional boolean: `false` marks an event the engine or a connector emitted
  (it does not reset `inactive for`). It defaults to false for the types only the engine
  and the connectors emit (`NOT_INBOUND_TYPES`: `stage_changed`, `email_sent`, ...) and to
  true for the others; `Event.to_json` writes it when false, or when true against that
  default, so such events survive a trip through the events topic. A top-level `origin` field
  (e.g. `"origin": "connector"`) marks an event as not inbound too.
- Unknown top-level fields are ignored.
- An object without `contact_id` whose `type` is one of Segment's track, identify, page,
  screen or alias is a Segment-spec message (see `nudge.engine.segment_spec`).
- Size: at most 64 KiB per event, measured on the bytes received (for an event inside a
  JSON array or a Segment batch, on its compact re-serialisation).
"""

from __future__ import annotations

import re
from codecs import BOM_UTF8
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import msgspec
import orjson

from nudge.dsl.compile.runtime import utc_text as _format

__all__ = [
    "LAST_TIME",
    "MAX_EVENT_BYTES",
    "MAX_EVENT_DEPTH",
    "NOT_INBOUND_TYPES",
    "REJECT_REASONS",
    "Event",
    "Rejected",
    "event_from_dict",
    "format_time",
    "identify_fields",
    "iter_jsonl",
    "not_json",
    "parse_event",
    "parse_record",
    "parse_time",
]

MAX_EVENT_BYTES = 64 * 1024
# Objects and lists inside one event, at most: deeper ones cannot be stored as JSON again.
MAX_EVENT_DEPTH = 64

REJECT_REASONS = (
    "not_json",
    "not_object",
    "missing_field",
    "bad_field",
    "bad_timestamp",
    "bad_event_type",
    "too_large",
    "too_deep",
)

SEGMENT_TYPES = frozenset({"track", "identify", "page", "screen", "alias"})
_SEGMENT_IDS = frozenset({"messageId", "userId", "anonymousId"})  # what marks a Segment message

# Event types that only the engine (LANGUAGE.md section 4) or the connectors' delivery
# emit: never the contact's own activity unless the event says `"inbound": true`. Tracking
# events (`email_opened`, `email_clicked`, `unsubscribed`) are the contact's own doing.
NOT_INBOUND_TYPES = frozenset(
    {
        "stage_changed",
        "score_changed",
        "segment_entered",
        "segment_left",
        "email_sent",
        "email_delivered",
        "email_bounced",
        "email_failed",
        "sms_sent",
        "sms_delivered",
        "sms_failed",
        "webhook_delivered",
        "webhook_failed",
    }
)

_EVENT_TYPE = re.compile(r"[A-Za-z0-9_]+")
_NAIVE_EPOCH = datetime(1970, 1, 1)
LAST_TIME = 253402300799.999999  # 9999-12-31T23:59:59.999999Z, the latest time there is
_LAST_INSTANT = "9999-12-31T23:59:59.999999Z"
_FIRST_INSTANT = "0001-01-01T00:00:00Z"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Event types seen valid that take the plain path (not `identify`, inbound by default);
# bounded by _GOOD_TYPES_MAX.
_GOOD_TYPES: set[str] = set()
_GOOD_TYPES_MAX = 4096
_TIMES: dict[str, tuple[float, str]] = {}  # timestamp text -> `_parse_time` result
_TIMES_MAX = 4096
# "YYYY-MM-DDTHH" of normalised timestamps parsed whole -> epoch seconds of that hour: a
# timestamp of a known hour needs no `datetime` (most events of a stream are in hours seen).
_HOURS: dict[str, float] = {}
_SIXTY = {f"{i:02d}": i for i in range(60)}  # minutes and seconds, as written
_fromisoformat = datetime.fromisoformat
_orjson_loads = orjson.loads


@dataclass(slots=True)
class Event:
    """One normalised event. `type` is the JSON `event` field."""

    id: str
    type: str
    contact_id: str
    ts: float
    timestamp: str
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] | None = None
    anonymous_id: str | None = None
    inbound: bool = True

    def to_json(self) -> dict[str, Any]:
        """The LANGUAGE.md section 1 shape; parses back to an equal `Event`."""
        out: dict[str, Any] = {
            "id": self.id,
            "event": self.type,
            "contact_id": self.contact_id,
            "timestamp": self.timestamp,
            # an identify's traits are its fields too (`identify_fields`): written once
            "properties": {} if self.properties is self.traits else self.properties,
        }
        if self.traits is not None:
            out["traits"] = self.traits
        if self.anonymous_id is not None:
            out["anonymous_id"] = self.anonymous_id
        if not self.inbound:
            out["inbound"] = False
        elif self.type in NOT_INBOUND_TYPES:  # against its type's default
            out["inbound"] = True
        return out


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input set aside: a stable `reason` code, a human `detail`, and the raw input."""

    reason: str
    detail: str
    raw: bytes
    line: int | None = None  # in a file of JSON lines (`iter_jsonl`), counted from 1

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reason": self.reason, "detail": self.detail}
        if self.line is not None:
            out["line"] = self.line
        out["raw"] = self.raw.decode("utf-8", "replace")
        return out


# ---------------------------------------------------------------------------- time


def parse_time(value: str) -> float:
    """ISO 8601 with an offset to epoch seconds; `ValueError` when malformed or offset-less."""
    return _parse_time(value)[0]


def format_time(ts: float) -> str:
    """Epoch seconds to `YYYY-MM-DDTHH:MM:SSZ`, in UTC.

    A fraction is written only when non-zero, rounded to the microsecond: three digits
    when whole milliseconds (`.500`), otherwise six (`.123456`). A time past the year 9999,
    which no timestamp reaches but a very long wait may, is written as that year's last
    instant (and one before the year 1 as its first).
    """
    try:
        return _format(_NAIVE_EPOCH + timedelta(microseconds=round(ts * 1_000_000)))
    except OverflowError:
        return _LAST_INSTANT if ts > 0 else _FIRST_INSTANT


def _parse_time(value: str) -> tuple[float, str]:
    """(epoch seconds, normalised text). Raises `ValueError` with a readable message.

    Remembers recent results: events close in time share their timestamps (a busy stream
    has many events per second), and a look-up is far cheaper than parsing.
    """
    hit = _TIMES.get(value)
    if hit is not None:
        return hit
    result = _in_known_hour(value) or _parse_new_time(value)
    if len(_TIMES) >= _TIMES_MAX:
        _TIMES.clear()
    _TIMES[value] = result
    return result


def _in_known_hour(value: str) -> tuple[float, str] | None:
    """`_parse_time` of a normalised timestamp whose hour was parsed whole before, without
    `datetime`; None for any other text."""
    if len(value) != 20 or value[19] != "Z" or value[13] != ":" or value[16] != ":":
        return None
    hour = _HOURS.get(value[:13])
    minute = _SIXTY.get(value[14:16])
    second = _SIXTY.get(value[17:19])
    if hour is None or minute is None or second is None:
        return None
    return hour + (minute * 60 + second), value


def _parse_new_time(value: str) -> tuple[float, str]:
    try:
        # RFC 3339 allows `z` for `Z` (and `t` for `T`, which `fromisoformat` takes already)
        dt = _fromisoformat(value[:-1] + "Z" if value[-1:] == "z" else value)
    except ValueError:
        raise ValueError(f"`{_clip(value)}` is not an ISO 8601 date and time") from None
    offset = dt.utcoffset()
    if offset is None:
        raise ValueError(f"`{_clip(value)}` has no offset: add `Z` for UTC or one like `+02:00`")
    n = len(value)
    if (  # already normalised: YYYY-MM-DDTHH:MM:SSZ, or with a millisecond fraction
        (n == 20 or (n == 24 and value[19] == "." and value[20:23] != "000"))
        and value[-1] == "Z"
        and value[10] == "T"
        and value[13:17:3] == "::"
        and value[4:8:3] == "--"
    ):
        ts = (dt - _EPOCH).total_seconds()
        if n == 20:
            if len(_HOURS) >= _TIMES_MAX:
                _HOURS.clear()
            _HOURS[value[:13]] = ts - (dt.minute * 60 + dt.second)
        return ts, value
    try:
        shifted = dt - offset  # the same instant's wall clock in UTC (tzinfo left as is)
        ts = (dt - _EPOCH).total_seconds()
    except OverflowError:
        raise ValueError(f"`{_clip(value)}` is out of range once in UTC") from None
    head = shifted.isoformat()[:19]
    micro = dt.microsecond
    if micro == 0:
        return ts, head + "Z"
    if micro % 1000 == 0:
        return ts, f"{head}.{micro // 1000:03d}Z"
    return ts, f"{head}.{micro:06d}Z"


def _plain_type(event_type: str) -> bool:
    """Whether the event type is valid, not `identify` and inbound by default, remembering
    a bounded number of such types."""
    if (
        event_type == "identify"
        or event_type in NOT_INBOUND_TYPES
        or _EVENT_TYPE.fullmatch(event_type) is None
    ):
        return False
    if len(_GOOD_TYPES) >= _GOOD_TYPES_MAX:
        _GOOD_TYPES.clear()
    _GOOD_TYPES.add(event_type)
    return True


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------- fields


# Fields naming a contact: their text becomes part of store keys, so no control characters.
_CONTACT_ID_FIELDS = frozenset(
    {"contact_id", "anonymous_id", "userId", "anonymousId", "previousId"}
)


def id_field(obj: dict[str, Any], name: str) -> str | Rejected:
    value = obj.get(name)
    if type(value) is str:
        if not value or value.isspace():
            return rejection("bad_field", f"`{name}` must not be empty")
        if name in _CONTACT_ID_FIELDS and not value.isprintable():  # they become keys
            return rejection(
                "bad_field", f"`{name}` must not hold control characters, got {value!r}"[:200]
            )
        return value
    if value is None:
        return rejection("missing_field", f"missing required field `{name}`")
    if type(value) is int:
        return str(value)
    return rejection("bad_field", f"`{name}` must be a string, got {kind_of(value)}")


def object_field(obj: dict[str, Any], name: str) -> dict[str, Any] | Rejected | None:
    value = obj.get(name)
    if value is None or type(value) is dict:
        return value
    return rejection("bad_field", f"`{name}` must be an object, got {kind_of(value)}")


def kind_of(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


def rejection(reason: str, detail: str) -> Rejected:
    """A rejection without its raw bytes yet; `event_from_dict` attaches them."""
    return Rejected(reason, detail, b"")


def _with_raw(rejected: Rejected, obj: object, raw: bytes) -> Rejected:
    if not raw:
        try:
            raw = orjson.dumps(obj)
        except TypeError:
            raw = repr(obj).encode("utf-8", "replace")
    return Rejected(rejected.reason, rejected.detail, raw[:MAX_EVENT_BYTES])


def timestamp_field(value: object) -> tuple[float, str] | Rejected:
    """The `timestamp` as received to (epoch seconds, normalised text), or a rejection."""
    if type(value) is not str:
        if value is None:
            return rejection("missing_field", "missing required field `timestamp`")
        return rejection(
            "bad_timestamp",
            f"`timestamp` must be an ISO 8601 string with an offset, got {kind_of(value)}",
        )
    try:
        return _parse_time(value)
    except ValueError as exc:
        return rejection("bad_timestamp", f"bad `timestamp`: {exc}")


def event_type_field(value: str) -> Rejected | None:
    if _EVENT_TYPE.fullmatch(value):
        return None
    return rejection(
        "bad_event_type",
        f"event type `{_clip(value)}` may hold only ASCII letters, digits and underscores",
    )


# ---------------------------------------------------------------------------- parsing


def event_from_dict(obj: dict[str, Any], raw: bytes = b"") -> Event | Rejected:
    """Validate one decoded JSON object (LANGUAGE.md section 1, or a Segment-spec message).

    `raw` is kept on a rejection; when not given, the object's JSON is kept instead.
    """
    result = _from_dict(obj)
    if isinstance(result, Rejected):
        return _with_raw(result, obj, raw)
    return result


def _from_dict(obj: dict[str, Any]) -> Event | Rejected:
    """The hot path: accept the common, well-formed shape at once, else check in full.

    Whatever this accepts, `_checked` accepts identically (a test holds them to that).
    """
    get = obj.get
    event_id = get("id")
    event_type = get("event")
    contact_id = get("contact_id")
    properties = get("properties")
    timestamp = get("timestamp")
    if (
        type(event_id) is str
        and type(contact_id) is str
        and type(event_type) is str
        and type(timestamp) is str
        and (properties is None or type(properties) is dict)
        # no other field: with all five, none (else no `traits`, `inbound` or `origin`)
        and (
            (len(obj) == 5 and properties is not None)
            or ("traits" not in obj and "inbound" not in obj and "origin" not in obj)
        )
    ):
        if properties:
            for value in properties.values():
                kind = type(value)
                if kind is dict or kind is list:  # nested: how deep?
                    deep = _too_deep(obj)
                    if deep is not None:
                        return deep
                    break
        event = _plain(event_id, event_type, contact_id, timestamp, properties)
        if event is not None:
            return event
    return _checked(obj)


def _plain(
    event_id: str,
    event_type: str,
    contact_id: str,
    timestamp: str,
    properties: dict[str, Any] | None,
) -> Event | None:
    """The event of these fields (of the right types) when they pass as they are (ids not
    blank, a plain event type, a timestamp that reads); None when they need the full check."""
    if not (
        event_id
        and contact_id
        and (event_type in _GOOD_TYPES or _plain_type(event_type))
        and not event_id.isspace()
        and not contact_id.isspace()
        and contact_id.isprintable()
    ):
        return None
    when = _TIMES.get(timestamp)
    if when is None:
        try:
            when = _parse_time(timestamp)
        except ValueError:
            return None
    return Event(
        event_id,
        event_type,
        contact_id,
        when[0],
        when[1],
        {} if properties is None else properties,
    )


def _checked(obj: dict[str, Any]) -> Event | Rejected:
    deep = _too_deep(obj)
    if deep is not None:
        return deep
    if "contact_id" not in obj and obj.get("type") in SEGMENT_TYPES:
        from nudge.engine.segment_spec import event_from_segment

        return event_from_segment(obj)
    if "contact_id" not in obj and type(obj.get("type")) is str and _SEGMENT_IDS & obj.keys():
        kinds = ", ".join(sorted(SEGMENT_TYPES))
        detail = f"a Segment message of type {obj['type']!r}: only {kinds} are taken"
        return rejection("bad_field", detail[:300])
    event_id = id_field(obj, "id")
    if isinstance(event_id, Rejected):
        return event_id
    event_type = obj.get("event")
    if type(event_type) is not str:
        if event_type is None:
            return rejection("missing_field", "missing required field `event`")
        return rejection("bad_event_type", f"`event` must be a string, got {kind_of(event_type)}")
    contact_id = id_field(obj, "contact_id")
    if isinstance(contact_id, Rejected):
        return contact_id
    when = timestamp_field(obj.get("timestamp"))
    if isinstance(when, Rejected):
        return when
    bad_type = event_type_field(event_type)
    if bad_type is not None:
        return bad_type
    properties = object_field(obj, "properties")
    if isinstance(properties, Rejected):
        return properties
    traits = object_field(obj, "traits")
    if isinstance(traits, Rejected):
        return traits
    anonymous_id: str | None = None
    if event_type == "identify":
        if traits is None:
            traits = {}
        properties = identify_fields(traits, properties)
        if obj.get("anonymous_id") is not None:
            checked = id_field(obj, "anonymous_id")
            if isinstance(checked, Rejected):
                return checked
            if checked != contact_id:
                anonymous_id = checked
    else:
        traits = None
    inbound = obj.get("inbound", event_type not in NOT_INBOUND_TYPES)
    if obj.get("origin") is not None:  # "engine" / "connector": not the contact's own activity
        inbound = False
    if type(inbound) is not bool:
        return rejection("bad_field", f"`inbound` must be true or false, got {kind_of(inbound)}")
    return Event(
        event_id,
        event_type,
        contact_id,
        when[0],
        when[1],
        {} if properties is None else properties,
        traits,
        anonymous_id,
        inbound,
    )


def identify_fields(traits: dict[str, Any], properties: dict[str, Any] | None) -> dict[str, Any]:
    """What rules read as an `identify` event's fields (`identify.email`, `event.email`): its
    traits, and its properties, if it has any, over them."""
    return {**traits, **properties} if properties else traits


def not_json(exc: Exception, raw: bytes | str) -> Rejected:
    """The rejection of what the JSON decoder refused: `too_deep` when it refused the nesting
    (its limit, 1,024 levels, is past ours, so it is nesting ours refuses too)."""
    if str(exc).startswith("depth limit exceeded"):
        detail = f"objects and lists nest more than {MAX_EVENT_DEPTH} deep"
        return Rejected("too_deep", detail, _as_bytes(raw))
    return Rejected("not_json", f"not valid JSON: {exc}", _as_bytes(raw))


def _as_bytes(raw: bytes | str) -> bytes:
    if isinstance(raw, str):
        return raw[:MAX_EVENT_BYTES].encode("utf-8", "replace")[:MAX_EVENT_BYTES]
    return raw[:MAX_EVENT_BYTES]


def _too_large(size: int, raw: bytes | str) -> Rejected:
    return Rejected(
        "too_large",
        f"event is {size} bytes, over the limit of {MAX_EVENT_BYTES}",
        _as_bytes(raw),
    )


def _size(raw: bytes | str) -> int:
    if isinstance(raw, bytes):
        return len(raw)
    if len(raw) * 4 <= MAX_EVENT_BYTES or len(raw) > MAX_EVENT_BYTES:
        return len(raw)  # exact enough: the verdict cannot change
    return len(raw.encode("utf-8", "surrogatepass"))


def _too_deep(obj: Any) -> Rejected | None:
    """A rejection (without its raw bytes) when `obj` nests objects and lists more than
    `MAX_EVENT_DEPTH` deep."""
    level: list[Any] = [obj]  # the containers at one depth (the event itself is the first)
    for _ in range(MAX_EVENT_DEPTH):
        level = [
            v
            for x in level
            for v in (x.values() if type(x) is dict else x)
            if type(v) is dict or type(v) is list
        ]
        if not level:
            return None
    detail = f"objects and lists nest more than {MAX_EVENT_DEPTH} deep"
    return Rejected("too_deep", detail, b"")


class _Plain(msgspec.Struct, gc=False):
    """The common shape of an event, decoded straight into its fields (no dict of them).
    Present `traits`, `inbound` or `origin` (any value) send it the full way."""

    id: str
    event: str
    contact_id: str
    timestamp: str
    properties: dict[str, Any] | None = None
    traits: Any = msgspec.UNSET
    inbound: Any = msgspec.UNSET
    origin: Any = msgspec.UNSET


_decode_plain = msgspec.json.Decoder(_Plain).decode
_UNSET = msgspec.UNSET
_INT_RANGE = range(-(2**63), 2**64)  # what orjson decodes as an int: a bigger one, as a float


def _plain_event(raw: bytes | str) -> Event | None:
    """The hot path of `parse_event`: an event of the common shape, accepted exactly as the
    full way accepts it; None for anything else (rejections are all made the full way, so
    they read the same). Properties holding objects or lists go the full way too, as do
    integers past 64 bits (the full way's decoder reads them as floats)."""
    try:
        wire = _decode_plain(raw)
    except (msgspec.DecodeError, UnicodeError, RecursionError):
        return None  # malformed (bad UTF-8 too), another shape, types to reject: the full way
    if wire.traits is not _UNSET or wire.inbound is not _UNSET or wire.origin is not _UNSET:
        return None
    properties = wire.properties
    if properties:
        for value in properties.values():
            kind = type(value)
            if kind is dict or kind is list or (kind is int and value not in _INT_RANGE):
                return None
    return _plain(wire.id, wire.event, wire.contact_id, wire.timestamp, properties)


def parse_event(raw: bytes | str) -> Event | Rejected:
    """One JSON object (LANGUAGE.md section 1 or a Segment-spec message) to an `Event`."""
    size = len(raw) if type(raw) is bytes else _size(raw)
    if size > MAX_EVENT_BYTES:
        return _too_large(size, raw)
    plain = _plain_event(raw)
    if plain is not None:
        return plain
    try:
        obj = _orjson_loads(raw)
    except orjson.JSONDecodeError as exc:
        return not_json(exc, raw)
    if type(obj) is not dict:
        return Rejected("not_object", f"expected a JSON object, got {kind_of(obj)}", _as_bytes(raw))
    result = _from_dict(obj)
    if isinstance(result, Rejected):
        return Rejected(result.reason, result.detail, _as_bytes(raw))
    return result


def parse_record(raw: bytes) -> list[Event | Rejected]:
    """A Kafka record: one JSON object, a JSON array of objects, or a Segment batch.

    Each element is validated on its own, and the 64 KiB limit applies to each event:
    a single object is measured as received, an element of an array or batch on its
    compact re-serialisation.
    """
    try:
        obj = _orjson_loads(raw)
    except orjson.JSONDecodeError as exc:
        return [not_json(exc, raw)]
    if type(obj) is dict:
        batch = obj.get("batch")
        if type(batch) is list and "event" not in obj and "type" not in obj:
            return [_element(item) for item in batch]
        if len(raw) > MAX_EVENT_BYTES:
            return [_too_large(len(raw), raw)]
        result = _from_dict(obj)
        if isinstance(result, Rejected):
            return [Rejected(result.reason, result.detail, raw[:MAX_EVENT_BYTES])]
        return [result]
    if type(obj) is list:
        return [_element(item) for item in obj]
    detail = f"expected a JSON object or array, got {kind_of(obj)}"
    return [Rejected("not_object", detail, raw[:MAX_EVENT_BYTES])]


def _element(item: Any) -> Event | Rejected:
    try:
        data = orjson.dumps(item)
    except orjson.JSONEncodeError:  # nested past what JSON encoding allows
        return _too_deep(item) or Rejected("not_object", "cannot be encoded", b"")
    if len(data) > MAX_EVENT_BYTES:
        return _too_large(len(data), data)
    if type(item) is not dict:
        return Rejected("not_object", f"expected a JSON object, got {kind_of(item)}", data)
    result = _from_dict(item)
    if isinstance(result, Rejected):
        return Rejected(result.reason, result.detail, data)
    return result


def iter_jsonl(stream: BinaryIO) -> Iterator[Event | Rejected]:
    """JSON Lines, one event per line; blank lines are skipped.

    A line over 64 KiB is rejected as `too_large` without being parsed or held whole in
    memory. Line ends (`\\n`, `\\r\\n`) are not counted. A rejection carries its line number.
    A UTF-8 byte order mark before the first line (files saved by some Windows tools) is no
    part of it.
    """
    limit = MAX_EVENT_BYTES + 2  # room for "\r\n"
    number = 0
    while True:
        line = stream.readline(limit)
        if not line:
            return
        number += 1
        if number == 1 and line.startswith(BOM_UTF8):
            line = line[len(BOM_UTF8) :]
        if not line.endswith(b"\n") and len(line) == limit:
            size = len(line)
            while True:  # skip to the end of this line
                more = stream.readline(limit)
                size += len(more)
                if not more or more.endswith(b"\n"):
                    break
            yield replace(
                _too_large(size - (len(more) - len(more.rstrip(b"\r\n"))), line), line=number
            )
            continue
        line = line.rstrip(b"\r\n")
        if not line or line.isspace():
            continue
        item = parse_event(line)
        yield replace(item, line=number) if type(item) is Rejected else item
