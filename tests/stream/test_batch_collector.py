"""The worker's garbage-collection policy: survivors of a batch frozen, a full collection
every `full_every` batches."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from nudge.engine.stream import BatchCollector


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_survivors_of_a_batch_are_frozen() -> None:
    collector = BatchCollector(full_every=100)
    keep = [_Node() for _ in range(10)]
    collector.after_batch()
    assert gc.get_freeze_count() >= len(keep)


def test_cycles_frozen_meanwhile_are_freed_by_the_periodic_full_collection() -> None:
    collector = BatchCollector(full_every=3)
    node = _Node()
    alive = weakref.ref(node)
    collector.after_batch()  # frozen while still referenced
    del node
    gc.collect()
    assert alive() is not None  # out of the collector's sight
    collector.after_batch()
    assert alive() is not None
    collector.after_batch()  # the third: everything handed back and collected
    assert alive() is None
