"""RetryBudget kept in a store: one token bucket per name, calls deposit, retries withdraw."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _redis_server import RedisServer
from seawall import Retry, RetryBudget
from seawall.stores import FileStore, MemoryStore, RedisStore, Store, StoreUnavailableError
from seawall.testing import FakeClock

_prefixes = itertools.count()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """One redis-server for the module; every store gets its own key prefix."""
    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(params=["memory", "file", "redis"])
def store(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path, redis_url: str
) -> Iterator[Store]:
    """Each store, on the fake clock (Redis in client-time mode)."""
    made: Store
    if request.param == "memory":
        made = MemoryStore(clock=clock)
    elif request.param == "file":
        made = FileStore(tmp_path / "state", clock=clock)
    else:
        prefix = f"rb{next(_prefixes)}"
        made = RedisStore(redis_url, time_source="client", clock=clock, timeout=5, prefix=prefix)
    yield made
    made.close()


def budget(store: Store, clock: FakeClock, name: str = "api", **options: Any) -> RetryBudget:
    settings: dict[str, Any] = {"ratio": 0.5, "minimum_per_second": 1.0, "window": 2}
    settings.update(options)
    return RetryBudget(store=store, name=name, clock=clock, **settings)


def test_a_fresh_budget_holds_minimum_per_second_times_window(
    store: Store, clock: FakeClock
) -> None:
    """1/s over a 2 s window: two retries, then a refusal."""
    b = budget(store, clock)
    assert [b.try_retry() for _ in range(3)] == [True, True, False]


def test_calls_deposit_ratio_tokens_each(store: Store, clock: FakeClock) -> None:
    """Drained, four calls at ratio 0.5 fund exactly two retries."""
    b = budget(store, clock)
    assert [b.try_retry() for _ in range(3)] == [True, True, False]
    for _ in range(4):
        b.record_call()
    assert [b.try_retry() for _ in range(3)] == [True, True, False]


def test_the_floor_refills_per_second(store: Store, clock: FakeClock) -> None:
    """Drained, 0.999 s later nothing is back; at 1 s one retry is."""
    b = budget(store, clock)
    assert [b.try_retry() for _ in range(3)] == [True, True, False]
    clock.advance(0.999)
    assert b.try_retry() is False
    clock.advance(0.001)
    assert [b.try_retry(), b.try_retry()] == [True, False]


def test_saved_tokens_are_capped_at_the_window(store: Store, clock: FakeClock) -> None:
    """A hundred calls into a full budget add nothing: still two retries."""
    b = budget(store, clock)
    for _ in range(100):
        b.record_call()
    assert [b.try_retry() for _ in range(3)] == [True, True, False]


def test_two_budgets_with_one_name_share_the_tokens(store: Store, clock: FakeClock) -> None:
    """What one process's budget withdrew, the other's cannot; another name is apart."""
    a, b, other = budget(store, clock), budget(store, clock), budget(store, clock, name="other")
    assert a.try_retry() is True
    assert b.try_retry() is True
    assert (a.try_retry(), b.try_retry()) == (False, False)
    assert other.try_retry() is True


@pytest.mark.anyio
async def test_atry_retry_shares_the_same_tokens(store: Store, clock: FakeClock) -> None:
    """The async path withdraws from the same bucket: two awaited grants, then a refusal."""
    b = budget(store, clock)
    assert [await b.atry_retry() for _ in range(3)] == [True, True, False]
    b.record_call()
    b.record_call()
    assert [await b.atry_retry(), b.try_retry()] == [True, False]
    await store.aclose()


def test_a_shared_budget_reports_its_store(clock: FakeClock) -> None:
    """store and degraded_decisions are the policy contract; the repr names the store."""
    store = MemoryStore(clock=clock)
    b = budget(store, clock)
    assert (b.store, b.degraded_decisions) == (store, 0)
    assert repr(b) == (
        "RetryBudget(ratio=0.5, minimum_per_second=1.0, window=2, name='api', store='memory://')"
    )
    assert RetryBudget().store is None


# -- degraded --------------------------------------------------------------------------------


class DownStore(MemoryStore):
    """A memory store whose retry-budget operations fail while ``down``."""

    down = True
    withdrawals = 0

    def withdraw(self, spec: Any, key: str | None, deposit: float) -> Any:
        self.withdrawals += 1
        if self.down:
            raise StoreUnavailableError("down")
        return super().withdraw(spec, key, deposit)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("allow", [True] * 4), ("deny", [False] * 4), ("local", [True, True, False, False])],
)
def test_degraded_modes_decide_without_the_store(
    clock: FakeClock, mode: str, expected: list[bool]
) -> None:
    """While the store is down: allow grants, deny refuses, local uses this process's window."""
    store = DownStore(clock=clock)
    b = budget(store, clock, degraded=mode)
    assert [b.try_retry() for _ in range(4)] == expected
    assert b.degraded_decisions == 4


def test_deposits_wait_while_the_store_is_not_asked(clock: FakeClock) -> None:
    """Calls made while backing off are deposited with the first answered withdrawal."""
    store = DownStore(clock=clock)
    store.down = False
    b = budget(store, clock, degraded="deny")
    assert [b.try_retry(), b.try_retry()] == [True, True]  # drained
    store.down = True
    assert b.try_retry() is False  # fails: the guard backs off for 0.1 s
    for _ in range(2):
        b.record_call()
    assert b.try_retry() is False  # backing off: not asked, the deposit waits
    assert store.withdrawals == 3
    store.down = False
    clock.advance(0.1)
    assert [b.try_retry(), b.try_retry()] == [True, False]  # the one token the calls earned


def test_a_bad_shared_shape_is_refused_with_its_values(clock: FakeClock) -> None:
    """A shared budget must refill and hold one retry; the error names both values."""
    with pytest.raises(ValueError, match=r"minimum_per_second=0\.0, window=10"):
        RetryBudget(minimum_per_second=0.0, store=MemoryStore(), name="x")
    with pytest.raises(ValueError, match=r"minimum_per_second=0\.05, window=10"):
        RetryBudget(minimum_per_second=0.05, store=MemoryStore(), name="x")


def test_a_store_without_a_name_is_refused() -> None:
    """The name is the key the budget is shared under: a store without one is an error."""
    with pytest.raises(ValueError, match="needs name="):
        RetryBudget(store=MemoryStore())


# -- Retry awaits the budget ------------------------------------------------------------------


class AsyncOnlyBudget:
    """A budget whose sync check must not be used from acall."""

    def __init__(self) -> None:
        self.asked = 0

    def record_call(self) -> None:
        pass

    def try_retry(self) -> bool:
        raise AssertionError("the sync check ran inside acall")

    async def atry_retry(self) -> bool:
        self.asked += 1
        return self.asked < 2


@pytest.mark.anyio
async def test_acall_awaits_the_budget(clock: FakeClock) -> None:
    """Retry.acall asks atry_retry (never the blocking try_retry): one retry, then it stops."""
    budget_ = AsyncOnlyBudget()
    policy = Retry(attempts=5, budget=budget_, clock=clock, wait=False)
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise OSError("down")

    with pytest.raises(OSError):
        await policy.acall(failing)
    assert (calls, budget_.asked) == (2, 2)


def test_retry_with_a_shared_budget_stops_when_it_is_spent(clock: FakeClock) -> None:
    """A Retry of 5 attempts on a drained shared budget makes one attempt."""
    store = MemoryStore(clock=clock)
    shared = budget(store, clock, name=f"r-{uuid.uuid4().hex}")
    assert [shared.try_retry(), shared.try_retry()] == [True, True]
    policy = Retry(attempts=5, budget=shared, clock=clock, wait=False)
    calls = 0

    def failing() -> None:
        nonlocal calls
        calls += 1
        raise OSError("down")

    with pytest.raises(OSError):
        policy.call(failing)
    assert calls == 1  # its one call deposited 0.5: not a whole retry
