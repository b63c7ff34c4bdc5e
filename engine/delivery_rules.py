"""Delivery rules: consent, channel caps and quiet hours (LANGUAGE.md section 5).

Plain functions over a contact's traits and history; the engine calls them when a send,
audience or show step runs.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "CONSENT_TRAIT",
    "allowed_by_cap",
    "best_channel",
    "fits_channel_cap",
    "give_back",
    "is_address",
    "quiet_until",
    "zone",
]

# The trait that must be exactly `true` for an action of the kind to go out.
CONSENT_TRAIT = {"email": "consent_email", "sms": "consent_sms", "audience_add": "consent_ads"}

_ZONES: dict[str, tzinfo] = {}
_NEG_INF = float("-inf")


def best_channel(traits: dict[str, Any], engagement: dict[str, float]) -> str | None:
    """`send best`: the channel consented to; with both, the one the contact has an address
    for (`email`, `phone`), and with both addresses too the one engaged with last, email on a
    tie; None when neither is consented to."""
    email = traits.get("consent_email") is True
    sms = traits.get("consent_sms") is True
    if email and sms:
        reach_email = is_address(traits.get("email"))
        if reach_email != is_address(traits.get("phone")):
            return "email" if reach_email else "sms"
        return (
            "sms"
            if engagement.get("sms", _NEG_INF) > engagement.get("email", _NEG_INF)
            else "email"
        )
    if email:
        return "email"
    if sms:
        return "sms"
    return None


def is_address(value: Any) -> bool:
    """Whether a value can be sent to: text that is not blank."""
    return type(value) is str and value.strip() != ""


def allowed_by_cap(sent: list[float], count: int, per: float, now: float) -> bool:
    """Whether one more firing fits a rule's `limit count per per` now (its earlier firings all
    lie at or before now): the window is `(now - per, now]`, so a firing exactly `per` after an
    earlier one no longer counts it. Prunes `sent` in place."""
    return fits_channel_cap(sent, count, per, now, now)


def give_back(sent: list[float] | None, at: float) -> None:
    """An action counted under its channel's cap at `at` will not go out after all (a
    deferred send cancelled, or its consent withdrawn): it no longer counts."""
    if sent and at in sent:
        sent.remove(at)


def fits_channel_cap(sent: list[float], count: int, per: float, at: float, now: float) -> bool:
    """Whether an action going out at `at` keeps every window of length `per` to at most
    `count` actions, `sent` holding the times the channel's earlier actions go out (sorted;
    deferred ones may lie ahead of `now`). Windows are `(x - per, x]`; the fullest one holding
    `at` ends at `at` or at an action after it. Prunes what no later action can meet."""
    cutoff = now - per
    if sent and sent[0] <= cutoff:
        del sent[: bisect_right(sent, cutoff)]
    if not sent:
        return count > 0
    if sent[-1] <= at:  # the usual case: nothing ahead of it
        return len(sent) - bisect_right(sent, at - per) < count
    ends = [at, *sent[bisect_right(sent, at) : bisect_left(sent, at + per)]]
    return all(bisect_right(sent, end) - bisect_right(sent, end - per) < count for end in ends)


def zone(name: Any) -> tzinfo:
    """The IANA zone named by a contact's `timezone` trait; UTC when missing or unknown."""
    if type(name) is not str:
        return UTC
    found = _ZONES.get(name)
    if found is None:
        try:
            found = ZoneInfo(name)
        except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
            found = UTC
        if len(_ZONES) < 4096:
            _ZONES[name] = found
    return found


def _inside(minute: int, start: int, end: int) -> bool:
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end


def quiet_until(ts: float, start: int, end: int, tz: tzinfo) -> float | None:
    """When an action due at `ts` may go out under quiet hours `[start, end)` (minutes after
    local midnight, wrapping midnight when start > end) in zone `tz`: None when `ts` is
    outside the period, else the end of the period as epoch seconds.

    Local wall times are resolved with zoneinfo, so a period spanning a daylight-saving change
    still ends at the written local time; an end that falls in a skipped hour resolves to the
    first instant after it whose local time is past the period.
    """
    if start == end:
        return None
    if tz is UTC:
        minute = int(ts // 60) % 1440
        if not _inside(minute, start, end):
            return None
        midnight = ts - ts % 86400
        if start > end and minute >= start:
            midnight += 86400
        return midnight + end * 60
    local = datetime.fromtimestamp(ts, tz)
    minute = local.hour * 60 + local.minute
    if not _inside(minute, start, end):
        return None
    day = local.date()
    if start > end and minute >= start:
        day += timedelta(days=1)
    wall = datetime(day.year, day.month, day.day, end // 60, end % 60, tzinfo=tz)
    first, second = sorted((wall.timestamp(), wall.replace(fold=1).timestamp()))
    if first >= ts and not _inside_at(first, start, end, tz):
        return first
    if _inside_at(second, start, end, tz):  # cannot happen with real zones; be safe
        return max(second, ts)
    # The end falls in a skipped hour: find the jump, the first second past the period.
    lo, hi = max(first, ts), second
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _inside_at(mid, start, end, tz):
            lo = mid
        else:
            hi = mid
    return hi


def _inside_at(ts: float, start: int, end: int, tz: tzinfo) -> bool:
    there = datetime.fromtimestamp(ts, tz)
    return _inside(there.hour * 60 + there.minute, start, end)
