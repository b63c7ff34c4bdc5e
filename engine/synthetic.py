"""A synthetic web shop's event stream, for demos, load tests and rule tests.

`generate` streams events (LANGUAGE.md section 1 dicts) for a shop with a few
thousand visitors: browsing sessions of a few minutes, gaps of hours to weeks, carts
(most abandoned, some bought, some bought on a later visit), sign-ups, email opens and
clicks, and the occasional demo request from a business lead. Output is deterministic
for a seed, timestamps never decrease, and ids are `evt-1`, `evt-2`, ...

Contacts are `c-<n>`. About a third start as anonymous visitors `a-<n>` who browse,
then sign up with an `identify` carrying `"anonymous_id": "a-<n>"` (merging into `c-<n>`).

Each contact lives as a small generator on one shared timeline (a heap ordered by the
time of its next event), so memory grows with the contacts that have arrived, never
with the number of events. Contacts arrive over the first part of the run (a Poisson
process sized so that all have arrived by about half of the events).

`generate_lines` serialises to JSON lines and can mix in deliberately malformed lines,
one of each rejection kind in turn, for testing the rejects path.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Generator, Iterator
from typing import Any

import orjson

from nudge.engine.events import format_time, parse_time

__all__ = ["DEFAULT_START", "MALFORMED_KINDS", "generate", "generate_lines"]

DEFAULT_START = parse_time("2026-11-02T00:00:00Z")  # a Monday

MALFORMED_KINDS = (
    "not_json",
    "not_object",
    "missing_field",
    "bad_field",
    "bad_timestamp",
    "bad_event_type",
    "too_large",
)

SITE = "https://shop.example.com"
_DAY = 86_400
# Measured activity, used to pace arrivals: a contact's first visit brings about
# _FIRST_VISIT_EVENTS events, then about _EVENTS_PER_CONTACT_DAY a day.
_FIRST_VISIT_EVENTS = 8.0
_EVENTS_PER_CONTACT_DAY = 5.0

# country: (domain, phone prefix, time zone, UTC offset in hours (standard time), names)
_COUNTRIES: dict[str, tuple[str, str, str, int, tuple[str, ...]]] = {
    "SE": ("example.se", "+4670", "Europe/Stockholm", 1, ("Ann", "Erik", "Sara", "Lars", "Maja")),
    "NO": ("example.no", "+4791", "Europe/Oslo", 1, ("Ingrid", "Ola", "Nora", "Jonas")),
    "DK": ("example.dk", "+4520", "Europe/Copenhagen", 1, ("Freja", "Mads", "Ida", "Søren")),
    "FI": ("example.fi", "+35840", "Europe/Helsinki", 2, ("Aino", "Juha", "Emilia", "Mikko")),
    "DE": ("example.de", "+49151", "Europe/Berlin", 1, ("Anna", "Lukas", "Lena", "Jürgen")),
    "GB": ("example.co.uk", "+447700", "Europe/London", 0, ("Olivia", "Jack", "Amelia", "Harry")),
    "US": ("example.com", "+1555", "America/New_York", -5, ("Emma", "Liam", "Ava", "Noah")),
    "NL": ("example.nl", "+316", "Europe/Amsterdam", 1, ("Sanne", "Daan", "Fleur", "Bram")),
}
_COUNTRY_CODES = tuple(_COUNTRIES)
_ASCII = str.maketrans({"ø": "o", "ü": "u", "å": "a", "ä": "a", "ö": "o"})
_COUNTRY_WEIGHTS = (30, 12, 10, 8, 14, 10, 12, 4)

_CATEGORIES = ("shoes", "jackets", "bags", "accessories", "outdoor", "kids", "home")
_BLOG = (
    "winter-layering-guide",
    "how-to-choose-hiking-boots",
    "care-for-leather",
    "gift-ideas",
    "behind-the-seams",
    "sustainable-materials",
)
_PAGES = {
    "/": "Home",
    "/pricing": "Pricing for business",
    "/sale": "Sale",
    "/about": "About us",
    "/faq": "Questions and answers",
    "/cart": "Your cart",
    "/checkout": "Checkout",
    "/demo": "Book a demo",
}
_LANDINGS = ("/", "/", "/", "/sale", "/blog", "/product", "/product", "/pricing")
_SIGNUP_SOURCES = ("organic", "google_ads", "facebook_ads", "instagram", "referral")
_PLANS = ("starter", "team", "enterprise")

Step = tuple[int, str, str, dict[str, Any]]  # (time, event type, contact id, the rest)


class _Shop:
    """Shared, deterministic parts: the catalogue and the id counters."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.products: list[tuple[str, str, float]] = [
            (f"p-{i}", rng.choice(_CATEGORIES), round(rng.randrange(9, 300) - 0.05, 2))
            for i in range(1, 121)
        ]
        self.carts = 0
        self.orders = 0
        self.messages = 0

    def next_cart(self) -> str:
        self.carts += 1
        return f"cart-{self.carts}"

    def next_order(self) -> str:
        self.orders += 1
        return f"ord-{self.orders}"

    def next_message(self) -> str:
        self.messages += 1
        return f"msg-{self.messages}"


class _Person:
    """What one contact's life needs to remember between events."""

    __slots__ = (
        "anonymous",
        "b2b",
        "cart",
        "consent_email",
        "contact_id",
        "country",
        "demo_requested",
        "first_name",
        "identify_on_visit",
        "mean_gap",
        "n",
        "orders",
        "spent",
        "tz_offset",
        "visits",
    )

    def __init__(self, n: int, rng: random.Random) -> None:
        self.n = n
        self.country = rng.choices(_COUNTRY_CODES, _COUNTRY_WEIGHTS)[0]
        self.first_name = rng.choice(_COUNTRIES[self.country][4])
        self.tz_offset = _COUNTRIES[self.country][3] * 3600
        self.anonymous = rng.random() < 0.35
        self.contact_id = f"a-{n}" if self.anonymous else f"c-{n}"
        self.identify_on_visit = rng.randint(2, 4) if self.anonymous else 0
        self.b2b = rng.random() < 0.12
        self.consent_email = rng.random() < 0.85
        self.mean_gap = rng.lognormvariate(11.5, 0.9)  # seconds; median about 1.1 days
        self.cart: tuple[str, list[str], float, int] | None = None  # id, items, value, since
        self.demo_requested = False
        self.orders = 0
        self.spent = 0.0
        self.visits = 0


def generate(
    contacts: int, events: int, seed: int = 0, start: float = DEFAULT_START
) -> Iterator[dict[str, Any]]:
    """Yield `events` shop events for up to `contacts` contacts, deterministic for `seed`.

    `start` is floored to a whole second; every timestamp is whole seconds, in UTC.
    """
    if contacts < 1 or events < 1:
        return
    rng = random.Random(seed)
    shop = _Shop(rng)
    base = int(start // 1)
    # arrivals spread over `window` so that all have come by about half of the events
    per_contact = events / contacts - 2 * _FIRST_VISIT_EVENTS
    window = max(3600.0, min(180.0 * _DAY, per_contact / _EVENTS_PER_CONTACT_DAY * _DAY))
    arrival_gap = window / contacts
    clock = _Clock()

    # (time, tie-breaker, life or None for "next arrival", pending step)
    heap: list[tuple[int, int, Iterator[Step] | None, Step | None]] = [(base, 0, None, None)]
    seq = 1
    arrived = 0
    emitted = 0
    while emitted < events:
        t, _, life, step = heapq.heappop(heap)
        if life is None:  # a new contact arrives
            arrived += 1
            life = _life(shop, _Person(arrived, rng), t)
            step = next(life)
            heapq.heappush(heap, (step[0], seq, life, step))
            seq += 1
            if arrived < contacts:
                nxt = t + int(rng.expovariate(1.0 / arrival_gap))
                heapq.heappush(heap, (nxt, seq, None, None))
                seq += 1
            continue
        assert step is not None
        emitted += 1
        event: dict[str, Any] = {
            "id": f"evt-{emitted}",
            "event": step[1],
            "contact_id": step[2],
            "timestamp": clock.format(t),
        }
        event.update(step[3])
        yield event
        step = next(life)
        heapq.heappush(heap, (step[0], seq, life, step))
        seq += 1


class _Clock:
    """Formats whole-second epoch times fast, remembering only the current day."""

    __slots__ = ("day", "prefix")

    def __init__(self) -> None:
        self.day = -1
        self.prefix = ""

    def format(self, t: int) -> str:
        day, second = divmod(t, _DAY)
        if day != self.day:
            self.day = day
            self.prefix = format_time(day * _DAY)[:11]
        hour, rest = divmod(second, 3600)
        minute, sec = divmod(rest, 60)
        return f"{self.prefix}{hour:02d}:{minute:02d}:{sec:02d}Z"


# ---------------------------------------------------------------------------- a life


def _life(shop: _Shop, p: _Person, t: int) -> Iterator[Step]:
    """One contact from arrival on: visits, email touches, gaps. Never ends."""
    rng = shop.rng
    t = _daytime(p, t, rng)
    if not p.anonymous:
        yield from _identify(shop, p, t, rng.choice(_SIGNUP_SOURCES), merge=False)
        t += rng.randint(1, 20)
    landing: str | None = None
    while True:
        p.visits += 1
        end = yield from _visit(shop, p, t, landing)
        landing = None
        t = _next_visit(p, end, rng)
        if not p.anonymous and p.consent_email and rng.random() < 0.35:
            # an email arrives before the next visit; a click brings the contact back sooner
            message_id = shop.next_message()
            opened = end + int(rng.uniform(0.2, 0.9) * (t - end))
            yield (opened, "email_opened", p.contact_id, {"properties": {"message_id": message_id}})
            if rng.random() < 0.3:
                clicked = opened + rng.randint(5, 180)
                landing = _email_target(shop, p, rng)
                url = f"{SITE}{landing}?utm_source=email&utm_campaign={message_id}"
                props = {"message_id": message_id, "url": url}
                yield (clicked, "email_clicked", p.contact_id, {"properties": props})
                t = clicked + rng.randint(2, 15)


def _next_visit(p: _Person, t: int, rng: random.Random) -> int:
    """When the contact comes back: hours to weeks later, mostly in their daytime."""
    gap = rng.expovariate(1.0 / p.mean_gap)
    if rng.random() < 0.04:
        gap += rng.uniform(25, 60) * _DAY  # gone quiet for a month or two
    return _daytime(p, t + 1800 + int(gap), rng)


def _daytime(p: _Person, t: int, rng: random.Random) -> int:
    """Mostly move a time in the contact's night (00-07 local) to the morning."""
    local_hour = (t + p.tz_offset) // 3600 % 24
    if local_hour < 7 and rng.random() < 0.85:
        t += (7 - local_hour) * 3600 + rng.randint(0, 3 * 3600)
    return t


def _email_target(shop: _Shop, p: _Person, rng: random.Random) -> str:
    if p.cart is not None and rng.random() < 0.5:
        return "/cart"
    if p.b2b and rng.random() < 0.5:
        return "/pricing"
    return f"/products/{rng.choice(shop.products)[0]}"


def _identify(shop: _Shop, p: _Person, t: int, source: str, *, merge: bool) -> Iterator[Step]:
    """Sign-up: `identify` (merging the anonymous visitor when `merge`), then `signed_up`."""
    rng = shop.rng
    domain, phone, tz, _offset, _names = _COUNTRIES[p.country]
    traits = {
        "email": f"{p.first_name.lower().translate(_ASCII)}{p.n}@{domain}",
        "first_name": p.first_name,
        "country": p.country,
        "consent_email": p.consent_email,
        "consent_sms": rng.random() < 0.4,
        "consent_ads": rng.random() < 0.55,
        "phone": f"{phone}{rng.randrange(10**6, 10**7)}",
        "timezone": tz,
        "signed_up_at": format_time(t),
    }
    rest: dict[str, Any] = {"traits": traits}
    p.contact_id = f"c-{p.n}"
    if merge:
        rest = {"anonymous_id": f"a-{p.n}", "traits": traits}
        p.anonymous = False
    yield (t, "identify", p.contact_id, rest)
    yield (t, "signed_up", p.contact_id, {"properties": {"source": source}})


def _page(p: _Person, t: int, path: str, title: str) -> Step:
    props = {"url": SITE + path, "path": path, "title": title}
    return (t, "page_viewed", p.contact_id, {"properties": props})


def _visit(shop: _Shop, p: _Person, t: int, landing: str | None) -> Generator[Step, None, int]:
    """One session of a few minutes. Returns the time it ended."""
    rng = shop.rng
    if p.cart is not None and t - p.cart[3] > 14 * _DAY:
        p.cart = None  # an old abandoned cart is forgotten
    path = landing or rng.choice(_LANDINGS)
    pages = 1 + int(rng.expovariate(0.3))
    for i in range(pages):
        if i:
            t += rng.randint(8, 150)
            path = _next_path(p, rng)
        if path == "/product":
            path = f"/products/{rng.choice(shop.products)[0]}"
        elif path == "/blog":
            path = f"/blog/{rng.choice(_BLOG)}"

        if path.startswith("/products/"):
            t = yield from _product_page(shop, p, t, path)
        elif path == "/cart" and p.cart is not None:
            yield _page(p, t, path, _PAGES[path])
            if rng.random() < 0.3:
                t = yield from _checkout(shop, p, t + rng.randint(20, 240))
                break
        elif path.startswith("/blog/"):
            yield _page(p, t, path, path[6:].replace("-", " ").capitalize())
        else:
            path = path if path in _PAGES else "/"
            yield _page(p, t, path, _PAGES[path])
            if path == "/pricing" and p.b2b and not p.demo_requested and rng.random() < 0.35:
                t += rng.randint(30, 300)
                yield from _demo(shop, p, t)

        if p.anonymous and p.visits >= p.identify_on_visit and rng.random() < 0.3:
            t += rng.randint(10, 90)
            source = rng.choice(("newsletter", "account"))
            yield from _identify(shop, p, t, source, merge=True)

    if p.cart is not None:
        roll = rng.random()
        if roll < 0.15:
            t = yield from _checkout(shop, p, t + rng.randint(30, 400))
        elif roll < 0.75:
            p.cart = None  # abandoned for good; a later visit starts a new cart
    return t


def _next_path(p: _Person, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.55:
        return "/product"
    if roll < 0.65 and p.cart is not None:
        return "/cart"
    if roll < 0.75:
        return "/pricing" if p.b2b else "/sale"
    if roll < 0.85:
        return "/blog"
    return rng.choice(("/", "/about", "/faq"))


def _product_page(shop: _Shop, p: _Person, t: int, path: str) -> Generator[Step, None, int]:
    """A product page, sometimes added to the cart. Returns the time it ended."""
    rng = shop.rng
    product_id = path[10:]
    _pid, category, price = shop.products[int(product_id[2:]) - 1]
    yield _page(p, t, path, f"{category.capitalize()} {product_id}")
    props = {"product_id": product_id, "category": category, "price": price}
    yield (t, "product_viewed", p.contact_id, {"properties": props})
    if rng.random() < 0.22:  # added to the cart
        if p.cart is None:
            cart_id, items, value = shop.next_cart(), [product_id], price
        else:
            cart_id, items, value = p.cart[0], [*p.cart[1], product_id], p.cart[2] + price
        value = round(value, 2)
        t += rng.randint(3, 40)
        p.cart = (cart_id, items, value, t)
        props = {"cart_id": cart_id, "value": value, "items": items}
        yield (t, "cart_updated", p.contact_id, {"properties": props})
    return t


def _checkout(shop: _Shop, p: _Person, t: int) -> Generator[Step, None, int]:
    """Pay for the open cart; an anonymous visitor signs up first. Returns the end time."""
    assert p.cart is not None
    rng = shop.rng
    yield _page(p, t, "/checkout", _PAGES["/checkout"])
    t += rng.randint(40, 300)
    if p.anonymous:
        yield from _identify(shop, p, t, "checkout", merge=True)
        t += rng.randint(1, 5)
    cart_id, _items, value, _since = p.cart
    props = {"order_id": shop.next_order(), "cart_id": cart_id, "value": value}
    yield (t, "order_completed", p.contact_id, {"properties": props})
    p.cart = None
    p.orders += 1
    p.spent = round(p.spent + value, 2)
    traits = {"total_spent": p.spent, "orders": p.orders, "last_order_at": format_time(t)}
    yield (t, "identify", p.contact_id, {"traits": traits})
    return t


def _demo(shop: _Shop, p: _Person, t: int) -> Iterator[Step]:
    """A business lead books a demo (signing up first if still anonymous)."""
    if p.anonymous:
        yield from _identify(shop, p, t, "demo_form", merge=True)
    p.demo_requested = True
    plan = shop.rng.choice(_PLANS)
    yield (t, "demo_requested", p.contact_id, {"properties": {"plan": plan}})


# ---------------------------------------------------------------------------- lines


def generate_lines(
    contacts: int,
    events: int,
    seed: int = 0,
    start: float = DEFAULT_START,
    malformed_rate: float = 0.0,
) -> Iterator[bytes]:
    """`generate` as JSON lines (each ending in a newline).

    With `malformed_rate` > 0, that share of extra lines is mixed in, each broken in one
    of the `MALFORMED_KINDS` ways (taken in turn) and carrying an id `bad-<n>` where it
    has one. The well-formed events are the same whatever the rate.
    """
    dumps = orjson.dumps
    if malformed_rate <= 0:
        for event in generate(contacts, events, seed, start):
            yield dumps(event) + b"\n"
        return
    chance = random.Random(f"malformed:{seed}").random
    broken = 0
    for event in generate(contacts, events, seed, start):
        if chance() < malformed_rate:
            broken += 1
            yield _malformed(event, broken) + b"\n"
        yield dumps(event) + b"\n"


def _malformed(event: dict[str, Any], n: int) -> bytes:
    kind = MALFORMED_KINDS[(n - 1) % len(MALFORMED_KINDS)]
    bad = {**event, "id": f"bad-{n}"}
    if kind == "not_json":
        text = orjson.dumps(bad)
        return text[: len(text) // 2]
    if kind == "not_object":
        return orjson.dumps([bad["id"], bad["event"]])
    if kind == "missing_field":
        del bad["contact_id"]
    elif kind == "bad_field":
        bad["properties"] = "not an object"
    elif kind == "bad_timestamp":
        bad["timestamp"] = bad["timestamp"].rstrip("Z")  # no offset
    elif kind == "bad_event_type":
        bad["event"] = "web-" + bad["event"].replace("_", "-")  # a hyphen is never allowed
    else:  # too_large
        bad["properties"] = {"note": "x" * (64 * 1024)}
    return orjson.dumps(bad)
