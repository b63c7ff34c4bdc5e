"""Open, click and unsubscribe tracking: signed tokens, link rewriting, and the HTTP routes.

A token is `<payload>.<mac>`, both urlsafe base64 without padding: the payload is the
compact JSON array `[kind, action_id, contact_id, rule]` (plus the target URL for a click),
the MAC an HMAC-SHA256 of it under the tracking secret. A token of one kind is never
accepted as another, and a click redirects only to the URL inside its own signed payload.

Routes (`add_tracking_routes`):

- `GET /t/o/{token}`: a 1x1 GIF; emits `email_opened`.
- `GET /t/c/{token}`: 302 to the signed URL; emits `email_clicked` with the `url`.
- `GET /t/u/{token}`: a page asking to confirm; `POST /t/u/{token}` (the page's button,
  or a mail client's RFC 8058 one-click) emits `unsubscribed`.

Bad tokens get 403 and emit nothing. Event ids derive from the action id, so a second
open of the same email, or a second click on the same link, is the same event (the engine
processes an id once). These events are the contact's own activity: they carry no
`origin`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape, unescape
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
import structlog
from aiohttp import web

from nudge.connectors.base import Action, EmitEvent, format_timestamp

__all__ = [
    "PIXEL_GIF",
    "InvalidToken",
    "TokenClaims",
    "TokenKind",
    "Tracker",
    "add_tracking_routes",
    "sign_token",
    "verify_token",
]

TokenKind = Literal["open", "click", "unsubscribe"]

_CODES: dict[str, str] = {"open": "o", "click": "c", "unsubscribe": "u"}
_KINDS: dict[str, TokenKind] = {"o": "open", "c": "click", "u": "unsubscribe"}
_DOMAIN = b"nudge.tracking.v1:"
_MAX_TOKEN = 4096

# The smallest transparent GIF: 1x1, one colour, fully transparent.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")

_log = structlog.get_logger("nudge.connectors.tracking")


class InvalidToken(ValueError):
    """A token that was not signed with our secret, was altered, or is of another kind."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    kind: TokenKind
    action_id: str
    contact_id: str
    rule: str
    url: str | None = None


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str | bytes, payload: bytes) -> bytes:
    return hmac.new(_key(secret), _DOMAIN + payload, hashlib.sha256).digest()


def sign_token(secret: str | bytes, claims: TokenClaims) -> str:
    """A urlsafe token carrying `claims`, verifiable only with `secret`."""
    fields: list[str] = [_CODES[claims.kind], claims.action_id, claims.contact_id, claims.rule]
    if claims.kind == "click":
        if claims.url is None or not _is_web_url(claims.url):
            raise ValueError(f"a click token needs an http(s) URL, got {claims.url!r}")
        fields.append(claims.url)
    payload = orjson.dumps(fields)
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def verify_token(secret: str | bytes, token: str, kind: TokenKind) -> TokenClaims:
    """The claims of a genuine token of `kind`; raises `InvalidToken` otherwise."""
    if len(token) > _MAX_TOKEN or token.count(".") != 1:
        raise InvalidToken("malformed token")
    payload_text, mac_text = token.split(".")
    try:
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed token") from None
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        raise InvalidToken("bad signature")
    try:
        fields = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise InvalidToken("malformed payload") from None
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise InvalidToken("malformed payload")
    if not fields or _KINDS.get(fields[0]) != kind:
        raise InvalidToken(f"not a {kind} token")
    expected = 5 if kind == "click" else 4
    if len(fields) != expected:
        raise InvalidToken("malformed payload")
    url = fields[4] if kind == "click" else None
    if url is not None and not _is_web_url(url):
        raise InvalidToken("click target is not an http(s) URL")
    return TokenClaims(kind, fields[1], fields[2], fields[3], url)


def _is_web_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


_HREF = re.compile(
    r"""(?P<head><a\b[^>]*?\bhref\s*=\s*)(?P<quote>["'])(?P<url>.*?)(?P=quote)""",
    re.IGNORECASE | re.DOTALL,
)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


class Tracker:
    """Builds the tracking URLs of one action under `base_url` (where the routes are served)."""

    def __init__(self, secret: str | bytes, base_url: str) -> None:
        self.secret = secret
        self.base_url = base_url.rstrip("/")

    def _url(self, kind: TokenKind, action: Action, url: str | None = None) -> str:
        claims = TokenClaims(
            kind,
            str(action.get("id", "")),
            str(action.get("contact_id", "")),
            str(action.get("rule", "")),
            url,
        )
        return f"{self.base_url}/t/{_CODES[kind]}/{sign_token(self.secret, claims)}"

    def open_url(self, action: Action) -> str:
        return self._url("open", action)

    def click_url(self, action: Action, url: str) -> str:
        return self._url("click", action, url)

    def unsubscribe_url(self, action: Action) -> str:
        return self._url("unsubscribe", action)

    def rewrite_html(self, html: str, action: Action) -> str:
        """Route each http(s) link through the click endpoint and append an open pixel.

        Links already under the tracking base (the unsubscribe link) and `<a>` tags marked
        `data-nudge-notrack` are left alone.
        """

        def replace(match: re.Match[str]) -> str:
            url = unescape(match["url"]).strip()
            if (
                "data-nudge-notrack" in match["head"].lower()
                or not _is_web_url(url)
                or url.startswith(self.base_url + "/t/")
            ):
                return match.group(0)
            tracked = escape(self.click_url(action, url), quote=True)
            return f"{match['head']}{match['quote']}{tracked}{match['quote']}"

        rewritten = _HREF.sub(replace, html)
        pixel = (
            f'<img src="{escape(self.open_url(action), quote=True)}" width="1" height="1" '
            'alt="" style="display:block;border:0;width:1px;height:1px">'
        )
        ends = list(_BODY_END.finditer(rewritten))
        if ends:
            at = ends[-1].start()
            return rewritten[:at] + pixel + rewritten[at:]
        return rewritten + pixel


def _event(
    name: str, claims: TokenClaims, event_id: str, when: datetime, **extra: Any
) -> dict[str, Any]:
    return {
        "id": event_id,
        "event": name,
        "contact_id": claims.contact_id,
        "timestamp": format_timestamp(when),
        "properties": {"action_id": claims.action_id, "rule": claims.rule, **extra},
    }


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{title}</title></head>
<body style="font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em">
<h1 style="font-size:1.4em">{title}</h1>{body}</body></html>
"""


def _page(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=_PAGE.format(title=title, body=body),
        status=status,
        content_type="text/html",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _forbidden() -> web.Response:
    return web.Response(
        status=403, text="invalid or altered link\n", headers={"Cache-Control": "no-store"}
    )


def add_tracking_routes(
    app: web.Application,
    secret: str | bytes,
    emit: EmitEvent,
    *,
    clock: Callable[[], datetime] | None = None,
) -> None:
    """Serve the open pixel, click redirect and unsubscribe endpoints on `app`.

    Events go to `emit` (an async callable taking the event dict). A HEAD request is
    answered but emits nothing (link scanners probe links that way).
    """
    now = clock or (lambda: datetime.now(UTC))

    def claims_of(request: web.Request, kind: TokenKind) -> TokenClaims | None:
        try:
            return verify_token(secret, request.match_info["token"], kind)
        except InvalidToken as exc:
            _log.warning("tracking.bad_token", kind=kind, path=request.path, reason=str(exc))
            return None

    async def emit_quietly(event: dict[str, Any]) -> None:
        try:
            await emit(event)
        except Exception:
            _log.exception("tracking.emit_failed", name=event["event"], id=event["id"])

    async def opened(request: web.Request) -> web.StreamResponse:
        claims = claims_of(request, "open")
        if claims is None:
            return _forbidden()
        if request.method == "GET":
            await emit_quietly(
                _event("email_opened", claims, f"{claims.action_id}.email_opened", now())
            )
        return web.Response(
            body=PIXEL_GIF,
            content_type="image/gif",
            headers={"Cache-Control": "no-store, no-cache, must-revalidate, private"},
        )

    async def clicked(request: web.Request) -> web.StreamResponse:
        claims = claims_of(request, "click")
        if claims is None or claims.url is None:
            return _forbidden()
        if request.method == "GET":
            digest = hashlib.sha256(claims.url.encode()).hexdigest()[:16]
            event_id = f"{claims.action_id}.email_clicked.{digest}"
            await emit_quietly(_event("email_clicked", claims, event_id, now(), url=claims.url))
        raise web.HTTPFound(
            claims.url, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        )

    async def unsubscribe_page(request: web.Request) -> web.StreamResponse:
        if claims_of(request, "unsubscribe") is None:
            return _forbidden()
        return _page(
            "Unsubscribe",
            '<p>Stop receiving these emails?</p><form method="post">'
            '<button type="submit" style="font-size:1em;padding:.5em 1em">Unsubscribe</button>'
            "</form>",
        )

    async def unsubscribe(request: web.Request) -> web.StreamResponse:
        claims = claims_of(request, "unsubscribe")
        if claims is None:
            return _forbidden()
        one_click = "List-Unsubscribe=One-Click" in (await request.text())
        event = _event(
            "unsubscribed",
            claims,
            f"{claims.action_id}.unsubscribed",
            now(),
            channel="email",
            method="one_click" if one_click else "page",
        )
        try:
            await emit(event)
        except Exception:
            # Unsubscribing must not be lost silently: ask the person to try again.
            _log.exception("tracking.unsubscribe_failed", action_id=claims.action_id)
            return _page(
                "Please try again",
                "<p>We could not record your request just now. Please try again in a minute.</p>",
                status=503,
            )
        _log.info("tracking.unsubscribed", contact_id=claims.contact_id, rule=claims.rule)
        return _page("You are unsubscribed", "<p>You will not receive these emails any more.</p>")

    app.router.add_get("/t/o/{token}", opened)
    app.router.add_get("/t/c/{token}", clicked)
    app.router.add_get("/t/u/{token}", unsubscribe_page)
    app.router.add_post("/t/u/{token}", unsubscribe)
