"""Each policy carries the whole contract, in memory too; a store picks the registered variant."""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall import Bulkhead, CircuitBreaker, KeyedRateLimiter, RateLimiter
from seawall._store_variant import StoreBacked

pytestmark = pytest.mark.anyio


def _policies(store: str | None) -> list[StoreBacked]:
    return [
        CircuitBreaker(name="b", store=store),
        RateLimiter(5, name="l", store=store),
        KeyedRateLimiter(5, name="k", store=store),
        Bulkhead(2, name="h", store=store),
    ]


def test_in_memory_policies_say_so() -> None:
    """In memory, store is None and degraded_decisions is 0 on every policy."""
    assert [(p.store, p.degraded_decisions) for p in _policies(None)] == [(None, 0)] * 4


def test_a_store_builds_the_registered_variant(tmp_path: Path) -> None:
    """Given a store, each policy class builds its variant: a subclass that names the store."""
    url = f"file://{tmp_path}"
    built = _policies(url)
    kinds = (CircuitBreaker, RateLimiter, KeyedRateLimiter, Bulkhead)
    variant = [
        type(p) is not kind and isinstance(p, kind) for p, kind in zip(built, kinds, strict=True)
    ]
    assert variant == [True] * 4
    assert [p.store.url if p.store else None for p in built] == [url] * 4
    assert [p.degraded_decisions for p in built] == [0] * 4


def test_a_subclass_of_a_policy_cannot_be_kept_in_a_store(tmp_path: Path) -> None:
    """A user's subclass given a store is refused loudly instead of silently kept in memory."""

    class MyLimiter(RateLimiter):
        pass

    with pytest.raises(TypeError, match="MyLimiter subclasses RateLimiter"):
        MyLimiter(5, name="mine", store=f"file://{tmp_path}")
    assert MyLimiter(5).store is None


def test_a_variant_registers_once() -> None:
    """A second store variant for the same policy is refused at class creation."""
    with pytest.raises(TypeError, match="cannot be the store variant"):

        class Another(Bulkhead, variant_of=Bulkhead):
            pass


async def test_arelease_frees_an_in_memory_slot() -> None:
    """Bulkhead.arelease works in memory: the slot taken is free again."""
    bulkhead = Bulkhead(1)
    await bulkhead.acquire_async()
    assert bulkhead.try_acquire() is False
    await bulkhead.arelease()
    assert bulkhead.try_acquire() is True
