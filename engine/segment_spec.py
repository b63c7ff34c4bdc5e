"""Segment-spec messages mapped to Nudge events (LANGUAGE.md section 1).

- track: the `event` name in snake_case (`Order Completed` -> `order_completed`).
- page: `page_viewed`; screen: `screen_viewed`. A top-level `name` (and `category`) is
  copied into the properties unless they already hold one.
- identify: `identify` with the `traits`; carrying both `userId` and `anonymousId`, it
  merges the anonymous contact into the user (`Event.anonymous_id`).
- alias: `identify` of `userId` with traits `{}`, merging `previousId`.

The contact is `userId`, else `anonymousId`; `messageId` is the event id. The time is
`timestamp`, else `originalTimestamp`, else `receivedAt`, else `sentAt`. Other fields
(`context`, `integrations`, ...) are ignored.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from nudge.engine.events import (
    NOT_INBOUND_TYPES,
    Event,
    Rejected,
    event_type_field,
    id_field,
    identify_fields,
    kind_of,
    object_field,
    rejection,
    timestamp_field,
)

__all__ = ["event_from_segment", "snake_case"]

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_TIME_FIELDS = ("timestamp", "originalTimestamp", "receivedAt", "sentAt")
_RENAMED = {"page": "page_viewed", "screen": "screen_viewed", "identify": "identify"}


def snake_case(name: str) -> str:
    """An event name as a Nudge event type: `Order Completed` -> `order_completed`.

    Accents are dropped (`Köp` -> `kop`), letters lower-cased, and each run of other
    characters becomes one underscore, trimmed at both ends. May return "".
    """
    if not name.isascii():
        name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return _NON_ALNUM.sub("_", name.lower()).strip("_")


def event_from_segment(msg: dict[str, Any]) -> Event | Rejected:
    """One Segment message (its `type` is track, identify, page, screen or alias)."""
    kind = msg["type"]
    event_id = id_field(msg, "messageId")
    if isinstance(event_id, Rejected):
        return event_id
    user_id: str | None = None
    anonymous_id: str | None = None
    if msg.get("userId") not in (None, ""):  # an empty one is none: `anonymousId` then
        checked = id_field(msg, "userId")
        if isinstance(checked, Rejected):
            return checked
        user_id = checked
    if msg.get("anonymousId") not in (None, ""):
        checked = id_field(msg, "anonymousId")
        if isinstance(checked, Rejected):
            return checked
        anonymous_id = checked

    merge_from: str | None = None
    if kind == "alias":
        if user_id is None:
            return rejection("missing_field", "missing required field `userId` (alias)")
        previous = id_field(msg, "previousId")
        if isinstance(previous, Rejected):
            return previous
        contact_id = user_id
        merge_from = previous
    elif user_id is not None:
        contact_id = user_id
        if kind == "identify":
            merge_from = anonymous_id
    elif anonymous_id is not None:
        contact_id = anonymous_id
    else:
        return rejection("missing_field", "missing required field `userId` or `anonymousId`")

    when = timestamp_field(next((msg[f] for f in _TIME_FIELDS if msg.get(f) is not None), None))
    if isinstance(when, Rejected):
        return when

    if kind == "track":
        name = msg.get("event")
        if type(name) is not str:
            if name is None:
                return rejection("missing_field", "missing required field `event` (track)")
            return rejection("bad_event_type", f"`event` must be a string, got {kind_of(name)}")
        event_type = snake_case(name)
        bad_type = event_type_field(event_type)
        if bad_type is not None:
            return rejection("bad_event_type", f"event name `{name[:60]}` has no letters or digits")
    else:
        event_type = _RENAMED.get(kind, "identify")

    traits: dict[str, Any] | None = None
    properties: dict[str, Any] = {}
    if event_type == "identify":
        found = {} if kind == "alias" else object_field(msg, "traits")
        if isinstance(found, Rejected):
            return found
        traits = found or {}
        properties = identify_fields(traits, None)
    else:
        given = object_field(msg, "properties")
        if isinstance(given, Rejected):
            return given
        properties = given or {}
        if kind in ("page", "screen"):
            properties = _with_page_name(properties, msg)

    if merge_from == contact_id:
        merge_from = None
    inbound = event_type not in NOT_INBOUND_TYPES
    return Event(
        event_id, event_type, contact_id, when[0], when[1], properties, traits, merge_from, inbound
    )


def _with_page_name(properties: dict[str, Any], msg: dict[str, Any]) -> dict[str, Any]:
    """Copy top-level `name` (and `category`) into the properties, unless already there."""
    extra = {
        key: msg[key]
        for key in ("name", "category")
        if msg.get(key) is not None and key not in properties
    }
    return {**properties, **extra} if extra else properties
