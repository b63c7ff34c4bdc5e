"""The store contract, on MemoryStore."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from store_contract import StoreContract, _claims

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


async def test_a_claim_is_kept_for_at_least_its_ttl_and_then_let_go() -> None:
    store = MemoryStore()
    day = 86400.0
    assert await store.claim_ids(_claims(("e1", "c-1")), day, 0.0) == set()
    assert await store.claim_ids(_claims(("e2", "c-1")), day, 0.9 * day) == set()
    # e1 is a day old: still held, though by now in the older generation
    assert await store.claim_ids(_claims(("e1", "c-2")), day, 1.0 * day) == {0}
    assert await store.claim_ids(_claims(("e2", "c-2")), day, 1.8 * day) == {0}
    # long past their ttl: the ids are free again
    assert await store.claim_ids(_claims(("e1", "c-2"), ("e2", "c-2")), day, 5 * day) == set()


async def test_the_live_mapping_keeps_a_fresh_state_for_a_contact_looked_up() -> None:
    store = MemoryStore()
    live = store.live()
    state = live["c-9"]
    assert state.contact_id == "c-9" and not state.holds_anything()
    assert (await store.load(["c-9"]))["c-9"] is state
    assert "c-1" not in live  # `load` creates nothing
    await store.load(["c-1"])
    assert "c-1" not in live
