"""FileStore from tasks: every async operation, on asyncio and trio, never blocking the loop."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest

from _procs.file_store_common import KEYED, LIMITER, POOL, breaker
from seawall._core.breaker import FAILURE, CircuitState
from seawall.stores._base import Reservation, StoreUnavailableError
from seawall.stores._file.files import base_name
from seawall.stores._file.store import FileStore
from seawall.testing import FakeClock

pytestmark = pytest.mark.anyio

WALL = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> FileStore:
    """A file store in a fresh directory on the fake clock."""
    return FileStore(tmp_path / "state", clock=clock)


async def test_async_limiter_operations(store: FileStore) -> None:
    """areserve, acancel and ablock give the same answers as their sync twins."""
    assert await store.areserve(LIMITER, None, 1, 0.0) == Reservation(0.0, WALL + 0.5, 1, 0.5)
    second = await store.areserve(LIMITER, None, 1, 0.0)
    assert await store.acancel(LIMITER, None, second.ticket, 1) is True
    assert await store.ablock(KEYED, "k", 2.0) is True
    assert (await store.areserve(KEYED, "k", 1, 0.0)).wait == 2.0
    assert store.peek(LIMITER, None) == (1.0, 0.5)


async def test_async_breaker_operations(store: FileStore) -> None:
    """aadmit and arecord trip the breaker after two failures."""
    spec = breaker()
    assert await store.aadmit(spec) == ((0, 0), None)
    assert await store.arecord(spec, (0, 0), FAILURE, 0.0) is None
    moved = await store.arecord(spec, (0, 0), FAILURE, 0.0)
    assert moved is not None
    assert (moved.new, moved.at) == (CircuitState.OPEN, WALL)
    assert await store.aadmit(spec) == (10.0, None)


async def test_async_holds(store: FileStore) -> None:
    """atry_hold takes both slots, refuses a third, and arelease frees one."""
    first = await store.atry_hold(POOL)
    second = await store.atry_hold(POOL)
    assert first is not None
    assert second is not None
    assert await store.atry_hold(POOL) is None
    await first.arelease()
    await first.arelease()
    assert store.holders(POOL) == 1
    await second.arelease()
    await store.aclose()


async def test_a_task_waiting_for_the_lock_leaves_the_loop_free(
    store: FileStore, clock: FakeClock
) -> None:
    """While one task polls a held lock, the test task runs, releases it, and the task wins."""
    store.reserve(LIMITER, None, 1, 0.0)
    lock = store._files.table(base_name("lim", "api")).lock
    held = lock.acquire(clock, 0.0)
    results: list[Reservation] = []

    async def reserve() -> None:
        results.append(await store.areserve(LIMITER, None, 1, 0.0))

    async with anyio.create_task_group() as tg:
        tg.start_soon(reserve)
        await anyio.wait_all_tasks_blocked()
        assert clock.sleepers == 1  # polling through the clock, not blocked in flock
        lock.release(held)
        clock.advance(0.5)
    assert results == [Reservation(0.0, WALL + 1.0, 1, 0.5)]


async def test_an_async_wait_for_the_lock_times_out(store: FileStore, clock: FakeClock) -> None:
    """A lock held past timeout makes areserve raise StoreUnavailableError."""
    store.reserve(LIMITER, None, 1, 0.0)
    lock = store._files.table(base_name("lim", "api")).lock
    held = lock.acquire(clock, 0.0)
    failures: list[BaseException] = []

    async def reserve() -> None:
        try:
            await store.areserve(LIMITER, None, 1, 0.0)
        except StoreUnavailableError as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(reserve)
        for _ in range(200):
            await anyio.wait_all_tasks_blocked()
            if failures:
                break
            clock.advance(0.005)
    assert len(failures) == 1
    assert clock.monotonic() == pytest.approx(0.1, abs=0.0051)
    lock.release(held)


async def test_a_cancelled_waiter_leaves_no_lock_behind(store: FileStore, clock: FakeClock) -> None:
    """Cancelling a task that polls the lock leaves the lock free for the next caller."""
    store.reserve(LIMITER, None, 1, 0.0)
    lock = store._files.table(base_name("lim", "api")).lock
    held = lock.acquire(clock, 0.0)
    with anyio.move_on_after(0):
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.areserve, LIMITER, None, 1, 0.0)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    lock.release(held)
    assert (await store.areserve(LIMITER, None, 1, 0.0)).remaining == 0


def test_threads_of_one_process_exclude_each_other(tmp_path: Path) -> None:
    """Eight threads reserving 250 tokens each from one bucket grant exactly the burst."""
    store = FileStore(tmp_path / "s", timeout=30.0)
    spec = LIMITER.__class__("threads", 3600.0, 1000.0)
    granted: list[int] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        granted.append(sum(store.reserve(spec, None, 1, 0.0).wait == 0.0 for _ in range(250)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 1000
    assert store.reserve(spec, None, 1, 0.0).wait > 0.0
