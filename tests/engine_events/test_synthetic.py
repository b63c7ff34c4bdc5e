"""The synthetic shop: deterministic, ordered, parseable, and shaped like a shop."""

from __future__ import annotations

import io
import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from nudge.cli import main
from nudge.engine.events import Event, Rejected, iter_jsonl, parse_time
from nudge.engine.synthetic import DEFAULT_START, MALFORMED_KINDS, generate, generate_lines


@pytest.fixture(scope="module")
def shop() -> list[dict[str, Any]]:
    return list(generate(300, 30_000, seed=11))


def as_bytes(contacts: int, events: int, **kwargs: Any) -> bytes:
    return b"".join(generate_lines(contacts, events, **kwargs))


def test_same_seed_same_bytes() -> None:
    assert as_bytes(50, 3000, seed=4) == as_bytes(50, 3000, seed=4)


def test_different_seed_different_bytes() -> None:
    assert as_bytes(50, 3000, seed=4) != as_bytes(50, 3000, seed=5)


def test_exactly_the_events_asked_for() -> None:
    assert len(as_bytes(20, 777).splitlines()) == 777
    assert list(generate(20, 0)) == []


def test_a_prefix_is_the_shorter_run() -> None:
    """Streaming: asking for fewer events gives the start of the same stream."""
    long = list(generate(40, 2000, seed=2))
    assert list(generate(40, 2000, seed=2)) == long
    assert list(itertools.islice(generate(40, 2000, seed=2), 500)) == long[:500]


def test_timestamps_never_decrease_and_start_at_start(shop: list[dict[str, Any]]) -> None:
    times = [parse_time(e["timestamp"]) for e in shop]
    assert times == sorted(times)
    assert times[0] >= DEFAULT_START
    assert times[-1] - times[0] > 7 * 86_400  # spread over days, not seconds


def test_start_moves_the_timeline() -> None:
    later = DEFAULT_START + 30 * 86_400
    first = next(iter(generate(10, 1, seed=1, start=later)))
    assert parse_time(first["timestamp"]) >= later


def test_ids_are_unique_and_numbered(shop: list[dict[str, Any]]) -> None:
    assert [e["id"] for e in shop] == [f"evt-{n}" for n in range(1, len(shop) + 1)]


def test_every_line_parses_to_an_event() -> None:
    results = list(iter_jsonl(io.BytesIO(as_bytes(100, 5000, seed=3))))
    assert len(results) == 5000
    assert all(isinstance(r, Event) for r in results)


def test_contacts_and_visitors_are_numbered(shop: list[dict[str, Any]]) -> None:
    ids = {e["contact_id"] for e in shop}
    assert all(i[:2] in ("c-", "a-") and i[2:].isdigit() for i in ids)
    assert max(int(i[2:]) for i in ids) == 300


def test_anonymous_visitors_browse_first_then_merge(shop: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    merged: set[str] = set()
    for event in shop:
        contact = event["contact_id"]
        if contact.startswith("a-"):
            assert contact not in merged, "no events as a visitor after the merge"
            seen.add(contact)
        if "anonymous_id" in event:
            anonymous = event["anonymous_id"]
            assert event["event"] == "identify"
            assert anonymous in seen, "a visitor browses before signing up"
            assert contact == "c-" + anonymous[2:]
            merged.add(anonymous)
    assert len(merged) >= len(seen) * 0.8


def test_sessions_are_minutes_and_gaps_hours_or_more(shop: list[dict[str, Any]]) -> None:
    by_contact: dict[str, list[float]] = {}
    for event in shop:
        person = "c-" + event["contact_id"][2:]
        by_contact.setdefault(person, []).append(parse_time(event["timestamp"]))
    steps = [b - a for times in by_contact.values() for a, b in itertools.pairwise(times)]
    short = sorted(s for s in steps if s < 15 * 60)
    long = sorted(s for s in steps if s >= 15 * 60)
    assert short[len(short) // 2] < 3 * 60  # pages a minute or two apart
    assert len(long) > len(by_contact)  # contacts come back
    assert long[len(long) // 2] > 3600  # the typical gap is hours
    assert long[-1] > 20 * 86_400  # and some go quiet for weeks


def test_event_types_and_their_properties(shop: list[dict[str, Any]]) -> None:
    kinds = Counter(e["event"] for e in shop)
    assert set(kinds) == {
        "identify",
        "signed_up",
        "page_viewed",
        "product_viewed",
        "cart_updated",
        "order_completed",
        "email_opened",
        "email_clicked",
        "demo_requested",
    }
    fields = {
        "signed_up": {"source"},
        "page_viewed": {"url", "path", "title"},
        "product_viewed": {"product_id", "category", "price"},
        "cart_updated": {"cart_id", "value", "items"},
        "order_completed": {"order_id", "cart_id", "value"},
        "email_opened": {"message_id"},
        "email_clicked": {"message_id", "url"},
        "demo_requested": {"plan"},
    }
    for event in shop:
        if event["event"] in fields:
            assert set(event["properties"]) == fields[event["event"]], event
    paths = {e["properties"]["path"] for e in shop if e["event"] == "page_viewed"}
    assert {"/", "/pricing"} <= paths
    assert any(p.startswith("/blog/") for p in paths)
    assert any(p.startswith("/products/") for p in paths)


def test_sign_up_traits(shop: list[dict[str, Any]]) -> None:
    signups = [e for e in shop if e["event"] == "identify" and "email" in e["traits"]]
    assert signups
    for event in signups:
        traits = event["traits"]
        assert set(traits) >= {
            "email",
            "first_name",
            "country",
            "consent_email",
            "consent_sms",
            "consent_ads",
            "phone",
            "timezone",
            "signed_up_at",
        }
        assert traits["email"].partition("@")[2].startswith("example.")
        assert traits["email"].split("@")[0].endswith(event["contact_id"][2:])
        assert traits["phone"].startswith("+")
        assert "/" in traits["timezone"]
        assert parse_time(traits["signed_up_at"]) == parse_time(event["timestamp"])
    consent = Counter(e["traits"]["consent_email"] for e in signups)
    assert consent[True] > consent[False] > 0
    assert len({e["traits"]["country"] for e in signups}) >= 5


def test_most_carts_are_abandoned_some_bought(shop: list[dict[str, Any]]) -> None:
    carts = {e["properties"]["cart_id"] for e in shop if e["event"] == "cart_updated"}
    bought = [e["properties"]["cart_id"] for e in shop if e["event"] == "order_completed"]
    assert len(bought) == len(set(bought)) > 0
    assert set(bought) <= carts
    assert len(bought) < len(carts) / 2


def test_an_order_is_worth_its_cart(shop: list[dict[str, Any]]) -> None:
    last_value: dict[str, float] = {}
    for event in shop:
        props = event.get("properties", {})
        if event["event"] == "cart_updated":
            last_value[props["cart_id"]] = props["value"]
            assert len(props["items"]) >= 1
        elif event["event"] == "order_completed":
            assert props["value"] == last_value[props["cart_id"]]


def test_malformed_lines_cover_every_rejection_and_leave_the_rest_alone() -> None:
    clean = as_bytes(50, 4000, seed=9).splitlines()
    mixed = as_bytes(50, 4000, seed=9, malformed_rate=0.01).splitlines()
    results = list(iter_jsonl(io.BytesIO(b"\n".join(mixed))))
    reasons = Counter(r.reason for r in results if isinstance(r, Rejected))
    assert set(reasons) == set(MALFORMED_KINDS)
    assert len(mixed) - len(clean) == sum(reasons.values())
    good = [line for line, r in zip(mixed, results, strict=True) if isinstance(r, Event)]
    assert good == clean


@pytest.mark.parametrize("seed", [3, 9])
def test_every_malformed_line_is_rejected_whatever_event_it_was_made_from(seed: int) -> None:
    clean = as_bytes(200, 10_000, seed=seed).splitlines()
    mixed = as_bytes(200, 10_000, seed=seed, malformed_rate=0.02).splitlines()
    results = list(iter_jsonl(io.BytesIO(b"\n".join(mixed))))
    assert sum(isinstance(r, Rejected) for r in results) == len(mixed) - len(clean)


def test_no_malformed_lines_by_default() -> None:
    results = list(iter_jsonl(io.BytesIO(as_bytes(30, 3000, seed=1))))
    assert not [r for r in results if isinstance(r, Rejected)]


# ---------------------------------------------------------------------------- the command


def test_the_command_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    args = ["generate", "--contacts", "20", "--events", "300", "--seed", "5", "--output", str(out)]
    assert main(args) == 0
    assert out.read_bytes() == as_bytes(20, 300, seed=5)


def test_the_command_writes_stdout(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    start = "2026-12-01T08:00:00+01:00"
    assert main(["generate", "--contacts", "5", "--events", "40", "--start", start]) == 0
    data = capsysbinary.readouterr().out
    assert data == as_bytes(5, 40, start=parse_time(start))
    assert orjson.loads(data.splitlines()[0])["timestamp"] >= "2026-12-01T07:00:00Z"


@pytest.mark.parametrize(
    "bad",
    [
        ["--contacts", "0"],
        ["--events", "-1"],
        ["--malformed-rate", "2"],
        ["--start", "2026-11-02T00:00:00"],
        ["--seed", "x"],
    ],
)
def test_the_command_refuses_bad_arguments(bad: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", *bad])
    assert exit_info.value.code == 2
