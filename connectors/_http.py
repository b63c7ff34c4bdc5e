"""One HTTP request with delivery semantics: which failures are worth another attempt.

Timeouts, connection failures, 408, 429 and 5xx are retryable (429 and 503 honour
`Retry-After`); redirects and other 4xx are permanent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from nudge.connectors.base import PermanentError, RetryableError

__all__ = ["request"]

_BODY_LIMIT = 300


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    content: bytes,
    headers: Mapping[str, str],
) -> httpx.Response:
    """Send the request; return a 2xx response, raise `RetryableError` or `PermanentError`.

    `what` names the delivery in error messages, e.g. "webhook `crm`".
    """
    try:
        response = await client.request(method, url, content=content, headers=dict(headers))
    except httpx.TimeoutException as exc:
        raise RetryableError(f"{what}: timed out", detail=type(exc).__name__) from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise PermanentError(f"{what}: bad URL", detail=str(exc)) from exc
    except httpx.TransportError as exc:
        raise RetryableError(f"{what}: {type(exc).__name__}", detail=str(exc)) from exc
    status = response.status_code
    if 200 <= status < 300:
        return response
    detail = f"HTTP {status}: {_body(response)}"
    if status in (408, 429) or status >= 500:
        raise RetryableError(
            f"{what}: HTTP {status}", detail=detail, retry_after=_retry_after(response)
        )
    raise PermanentError(f"{what}: HTTP {status}", detail=detail)


def _body(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text if len(text) <= _BODY_LIMIT else text[: _BODY_LIMIT - 1] + "…"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
