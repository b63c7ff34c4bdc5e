"""Delivery: turn the engine's actions into real messages (email, sms, webhooks, audiences,
website content), with tracking, idempotence and retries.

Start with `build_dispatcher(settings)`; the pieces are in one module each.
"""

from nudge.connectors.base import (
    BounceError,
    Connector,
    DeliveryError,
    Outcome,
    PermanentError,
    RetryableError,
)
from nudge.connectors.build import build_content_store, build_dispatcher, tracking_secret
from nudge.connectors.content import ContentStore, add_content_routes
from nudge.connectors.dispatch import Dispatcher, RetryPolicy
from nudge.connectors.ledger import DeliveryLedger, MemoryLedger, RedisLedger
from nudge.connectors.templates import check_templates
from nudge.connectors.tracking import add_tracking_routes

__all__ = [
    "BounceError",
    "Connector",
    "ContentStore",
    "DeliveryError",
    "DeliveryLedger",
    "Dispatcher",
    "MemoryLedger",
    "Outcome",
    "PermanentError",
    "RedisLedger",
    "RetryPolicy",
    "RetryableError",
    "add_content_routes",
    "add_tracking_routes",
    "build_content_store",
    "build_dispatcher",
    "check_templates",
    "tracking_secret",
]
