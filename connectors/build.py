"""Wire a Dispatcher from Settings: a real connector per configured channel, the outbox
for the others, the Redis ledger and content store when `redis_url` is set (else memory).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import structlog

from nudge.config import ConfigError, Settings, parse_smtp_url
from nudge.connectors.audiences import AudienceConnector, hashed_identifiers
from nudge.connectors.base import Action, Connector, EmitEvent
from nudge.connectors.content import (
    ContentStore,
    MemoryContentStore,
    RedisContentStore,
    ShowConnector,
)
from nudge.connectors.dispatch import Clock, DeadLetter, Dispatcher, RetryPolicy
from nudge.connectors.email import EmailConnector, compose_email
from nudge.connectors.ledger import DeliveryLedger, MemoryLedger, RedisLedger
from nudge.connectors.outbox import OutboxConnector
from nudge.connectors.redis_client import AnyRedis, redis_from_url
from nudge.connectors.sms import SmsConnector
from nudge.connectors.templates import Templates, template_context
from nudge.connectors.tracking import Tracker
from nudge.connectors.webhook import WebhookConnector

__all__ = [
    "DEV_TRACKING_SECRET",
    "build_connectors",
    "build_content_store",
    "build_dispatcher",
    "check_delivery_settings",
    "retry_policy",
    "tracking_secret",
]

DEV_TRACKING_SECRET = "nudge-development-only-tracking-secret"
_DEV_FROM = "Nudge <nudge@localhost>"

_log = structlog.get_logger("nudge.connectors.build")


def check_delivery_settings(settings: Settings) -> None:
    """Raise `ConfigError` for a channel configured without what it needs."""
    if settings.smtp_url:
        if not settings.tracking_secret:
            raise ConfigError(
                "tracking_secret is required to send email (set NUDGE_TRACKING_SECRET): "
                "it signs the unsubscribe, click and open links"
            )
        if not settings.smtp_from:
            raise ConfigError("smtp_from is required with smtp_url (set NUDGE_SMTP_FROM)")
    if settings.webhooks and not settings.webhook_secret:
        raise ConfigError("webhook_secret is required with webhooks (set NUDGE_WEBHOOK_SECRET)")


def tracking_secret(settings: Settings) -> str:
    """The secret that signs tracking links; the collector must use the same one.

    Required once email really goes out (`smtp_url` set); otherwise a fixed development
    secret stands in, with a warning.
    """
    check_delivery_settings(settings)
    if settings.tracking_secret:
        return settings.tracking_secret
    if not _warned:
        _warned.append(True)
        _log.warning(
            "tracking.dev_secret",
            note="tracking links use a development secret; set NUDGE_TRACKING_SECRET",
        )
    return DEV_TRACKING_SECRET


_warned: list[bool] = []  # the development secret is announced once per process


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.retry_max_attempts,
        base_delay=settings.retry_base_delay,
        max_delay=settings.retry_max_delay,
    )


def build_content_store(settings: Settings, redis: AnyRedis | None = None) -> ContentStore:
    """Where `show` content lives: Redis when given or configured, else memory."""
    if redis is None and settings.redis_url:
        redis = redis_from_url(settings.redis_url)
    if redis is None:
        return MemoryContentStore()
    return RedisContentStore(redis, prefix=settings.redis_key_prefix)


def _outbox(settings: Settings, channel: str, setting: str, **kwargs: Any) -> OutboxConnector:
    outbox = OutboxConnector(channel, Path(settings.outbox), **kwargs)
    _log.warning(
        "delivery.outbox",
        channel=channel,
        path=str(outbox.path),
        enable_with=f"NUDGE_{setting.upper()} (`{setting}` in nudge.toml)",
    )
    return outbox


def build_connectors(
    settings: Settings,
    *,
    http_client: httpx.AsyncClient,
    content_store: ContentStore,
    templates: Templates | None = None,
) -> dict[str, Connector]:
    """A connector for every action kind."""
    check_delivery_settings(settings)
    if templates is None:
        folder = settings.templates_dir
        if not folder.is_dir():
            _log.warning(
                "delivery.no_templates",
                path=str(folder),
                note="every email and sms will fail (missing template): set `templates`, or "
                "`rules` to the folder beside which `templates/` lies",
            )
        templates = Templates(folder)
    tracker = Tracker(tracking_secret(settings), settings.tracking_url)
    connectors: dict[str, Connector] = {"show": ShowConnector(content_store)}

    if settings.smtp_url and settings.smtp_from:
        connectors["email"] = EmailConnector(
            parse_smtp_url(settings.smtp_url, settings.smtp_starttls),
            settings.smtp_from,
            templates,
            tracker,
            timeout=settings.smtp_timeout,
            connections=settings.smtp_connections,
        )
    else:
        from_addr = settings.smtp_from or _DEV_FROM

        def render_email(action: Action) -> dict[str, Any]:
            message = compose_email(
                action, templates=templates, tracker=tracker, from_addr=from_addr
            )
            text = message.get_body(("plain",))
            html = message.get_body(("html",))
            return {
                "from": str(message["From"]),
                "to": str(message["To"]),
                "subject": str(message["Subject"]),
                "message_id": str(message["Message-ID"]),
                "list_unsubscribe": str(message["List-Unsubscribe"]),
                "text": text.get_content() if text is not None else None,
                "html": html.get_content() if html is not None else None,
            }

        connectors["email"] = _outbox(settings, "email", "smtp_url", render=render_email)

    if settings.sms_url:
        connectors["sms"] = SmsConnector(
            http_client,
            settings.sms_url,
            templates,
            token=settings.sms_token,
            sender=settings.sms_from,
        )
    else:

        def render_sms(action: Action) -> dict[str, Any]:
            name = str(action.get("template"))
            return {
                "to": action.get("to"),
                "body": templates.render_sms(name, template_context(action)),
            }

        connectors["sms"] = _outbox(settings, "sms", "sms_url", render=render_sms)

    if settings.webhooks and settings.webhook_secret:
        connectors["webhook"] = WebhookConnector(
            http_client, settings.webhooks, settings.webhook_secret
        )
    else:
        connectors["webhook"] = _outbox(settings, "webhook", "webhooks")

    if settings.audience_url:
        audiences: Connector = AudienceConnector(
            http_client, settings.audience_url, token=settings.audience_token
        )
    else:

        def render_audience(action: Action) -> dict[str, Any]:
            return {"members": [hashed_identifiers(action.get("contact") or {})]}

        audiences = _outbox(settings, "audience", "audience_url", render=render_audience)
    connectors["audience_add"] = connectors["audience_remove"] = audiences
    return connectors


def build_dispatcher(
    settings: Settings,
    *,
    on_outcome: EmitEvent | None = None,
    on_dead_letter: DeadLetter | None = None,
    redis: AnyRedis | None = None,
    http_client: httpx.AsyncClient | None = None,
    ledger: DeliveryLedger | None = None,
    content_store: ContentStore | None = None,
    templates: Templates | None = None,
    clock: Clock | None = None,
) -> Dispatcher:
    """A Dispatcher for `settings`. What it creates (Redis, HTTP client) `aclose()` closes.

    Pass `content_store` to share it with the collector's content route (needed in one
    process without Redis); pass `redis` to share a connection pool.
    """
    check_delivery_settings(settings)
    closers: list[Callable[[], Awaitable[Any]]] = []
    if redis is None and settings.redis_url:
        redis = redis_from_url(settings.redis_url)
        closers.append(redis.aclose)
    if http_client is None:
        http_client = httpx.AsyncClient(timeout=settings.http_timeout)
        closers.append(http_client.aclose)
    if ledger is None:
        ledger = (
            RedisLedger(redis, ttl=settings.ledger_ttl, prefix=settings.redis_key_prefix)
            if redis is not None
            else MemoryLedger()
        )
        if redis is None:
            _log.info(
                "delivery.memory_ledger", note="without redis_url, a restart forgets what was sent"
            )
    if content_store is None:
        content_store = build_content_store(settings, redis)
    connectors = build_connectors(
        settings, http_client=http_client, content_store=content_store, templates=templates
    )
    mail = connectors.get("email")
    if isinstance(mail, EmailConnector):
        closers.append(mail.aclose)  # its open SMTP sessions
    return Dispatcher(
        connectors,
        ledger,
        retry_policy(settings),
        on_outcome,
        on_dead_letter,
        rate_limits=settings.rate_limits,
        clock=clock,
        on_close=closers,
    )
