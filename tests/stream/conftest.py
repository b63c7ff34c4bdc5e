"""Streaming tests: one broker and one Redis for the session, unique topic names per test."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture
def topic_prefix() -> str:
    """A prefix no other test uses, for topic names and the consumer group."""
    return f"t{uuid.uuid4().hex[:10]}"
