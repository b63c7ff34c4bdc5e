"""The store contract, on MemoryStore."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from store_contract import StoreContract

from nudge.engine.state import ContactStore
from nudge.engine.stores.memory import MemoryStore


class TestMemoryStore(StoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[ContactStore]:
        s = MemoryStore(partitions=4)
        yield s
        await s.close()


def test_partitions_must_be_positive() -> None:
    with pytest.raises(ValueError, match="partitions"):
        MemoryStore(partitions=0)
