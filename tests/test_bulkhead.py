"""Bulkhead: slots, FIFO hand-over, max_wait, max_queue, cancellation, threads with tasks."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
from tests._slot_pool import AppendHook

import seawall
from seawall import Bulkhead, BulkheadFullError, BulkheadStats, bulkhead
from seawall.httpx import ResilientTransport
from seawall.testing import FakeClock


def _start(target: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def _join(*threads: threading.Thread) -> None:
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()


class Peak:
    """Counts how many holders are inside at once, from threads or tasks."""

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()

    def enter(self) -> None:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)

    def leave(self) -> None:
        with self.lock:
            self.active -= 1


# -- concurrency cap ---------------------------------------------------------------------------


def test_eight_threads_on_three_slots_peak_at_exactly_three(clock: FakeClock) -> None:
    """8 threads on max_concurrent=3: 3 run, 5 queue, the peak observed is exactly 3."""
    bh = Bulkhead(3, max_wait=60, clock=clock)
    peak, go = Peak(), threading.Event()

    def worker() -> None:
        with bh:
            peak.enter()
            go.wait(10)
            peak.leave()

    threads = [_start(worker) for _ in range(8)]
    clock.wait_for_sleepers(5)
    assert (bh.stats.in_flight, bh.stats.queued) == (3, 5)
    go.set()
    _join(*threads)
    assert peak.peak == 3
    assert bh.stats == BulkheadStats(3, 0, 0, 8, 0, 5)


@pytest.mark.anyio
async def test_eight_tasks_on_three_slots_peak_at_exactly_three(clock: FakeClock) -> None:
    """8 tasks on max_concurrent=3: 3 run, 5 queue, the peak observed is exactly 3."""
    bh = Bulkhead(3, max_wait=60, clock=clock)
    peak, go = Peak(), anyio.Event()

    async def worker() -> None:
        async with bh:
            peak.enter()
            await go.wait()
            peak.leave()

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(worker)
        await anyio.wait_all_tasks_blocked()
        assert (bh.stats.in_flight, bh.stats.queued) == (3, 5)
        go.set()
    assert peak.peak == 3
    assert bh.stats == BulkheadStats(3, 0, 0, 8, 0, 5)


# -- FIFO hand-over ----------------------------------------------------------------------------


def test_threads_are_served_in_arrival_order(clock: FakeClock) -> None:
    """Four queued threads get the single slot in the order they queued."""
    bh = Bulkhead(1, max_wait=60, clock=clock)
    bh.acquire()
    order: list[int] = []

    def worker(i: int) -> None:
        with bh:
            order.append(i)

    threads = []
    for i in range(4):
        threads.append(_start(functools.partial(worker, i)))
        clock.wait_for_sleepers(i + 1)
    bh.release()
    _join(*threads)
    assert order == [0, 1, 2, 3]


@pytest.mark.anyio
async def test_tasks_are_served_in_arrival_order(clock: FakeClock) -> None:
    """Four queued tasks get the single slot in the order they queued."""
    bh = Bulkhead(1, max_wait=60, clock=clock)
    await bh.acquire_async()
    order: list[int] = []

    async def worker(i: int) -> None:
        async with bh:
            order.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(worker, i)
            await anyio.wait_all_tasks_blocked()
        bh.release()
    assert order == [0, 1, 2, 3]


@pytest.mark.anyio
async def test_a_newcomer_cannot_barge_past_a_granted_waiter(clock: FakeClock) -> None:
    """Right after a hand-over, before the waiter runs, try_acquire finds no free slot."""
    bh = Bulkhead(1, max_wait=60, clock=clock)
    await bh.acquire_async()
    async with anyio.create_task_group() as tg:
        tg.start_soon(bh.acquire_async)
        await anyio.wait_all_tasks_blocked()
        bh.release()
        assert bh.try_acquire() is False
    assert bh.stats == BulkheadStats(1, 1, 0, 2, 1, 1)


# -- max_wait and max_queue --------------------------------------------------------------------


@pytest.mark.anyio
async def test_max_wait_rejects_a_task_exactly_when_it_runs_out(clock: FakeClock) -> None:
    """With max_wait=5 the waiter is still queued at 4.999 s and rejected at 5 s."""
    bh = Bulkhead(1, max_wait=5, clock=clock)
    bh.acquire()
    errors: list[tuple[float, BulkheadFullError]] = []

    async def waiter() -> None:
        with pytest.raises(BulkheadFullError) as info:
            await bh.acquire_async()
        errors.append((clock.monotonic(), info.value))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        clock.advance(4.999)
        await anyio.wait_all_tasks_blocked()
        assert (bh.stats.queued, errors) == (1, [])
        clock.advance(0.001)
    assert [at for at, _ in errors] == [5.0]
    assert "no slot within 5 s" in str(errors[0][1])
    assert bh.stats == BulkheadStats(1, 1, 0, 1, 1, 0)


def test_max_wait_rejects_a_thread_exactly_when_it_runs_out(clock: FakeClock) -> None:
    """A thread queued with max_wait=5 is still waiting at 4.999 s and rejected at 5 s."""
    bh = Bulkhead(1, max_wait=5, clock=clock)
    bh.acquire()
    errors: list[BulkheadFullError] = []

    def waiter() -> None:
        try:
            bh.acquire()
        except BulkheadFullError as exc:
            errors.append(exc)

    thread = _start(waiter)
    clock.wait_for_sleepers(1)
    clock.advance(4.999)
    assert (bh.stats.queued, clock.sleepers, errors) == (1, 1, [])
    clock.advance(0.001)
    _join(thread)
    assert len(errors) == 1
    assert bh.stats == BulkheadStats(1, 1, 0, 1, 1, 0)


def test_timeout_argument_overrides_max_wait(clock: FakeClock) -> None:
    """acquire(timeout=0) rejects at once even though max_wait would queue."""
    bh = Bulkhead(1, max_wait=60, clock=clock)
    bh.acquire()
    with pytest.raises(BulkheadFullError, match="no free slot"):
        bh.acquire(timeout=0)
    assert bh.stats.queued == 0


def test_max_wait_zero_rejects_at_once(clock: FakeClock) -> None:
    """The default max_wait=0 rejects the caller that finds no slot, without waiting."""
    bh = Bulkhead(1, clock=clock)
    bh.acquire()
    with pytest.raises(BulkheadFullError):
        bh.acquire()
    assert (clock.monotonic(), clock.sleepers, bh.stats.total_rejected) == (0.0, 0, 1)


@pytest.mark.anyio
async def test_max_queue_rejects_at_once(clock: FakeClock) -> None:
    """With max_queue=1 and one waiter queued, the next caller is rejected with no wait."""
    bh = Bulkhead(1, max_wait=60, max_queue=1, clock=clock)
    await bh.acquire_async()
    async with anyio.create_task_group() as tg:
        tg.start_soon(bh.acquire_async)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(BulkheadFullError, match=r"queue full \(1 waiting\)"):
            await bh.acquire_async()
        assert (clock.monotonic(), bh.stats.queued, bh.stats.total_rejected) == (0.0, 1, 1)
        bh.release()
    assert bh.stats == BulkheadStats(1, 1, 0, 2, 1, 1)


def test_try_acquire_never_waits(clock: FakeClock) -> None:
    """try_acquire takes a free slot and returns False (counted as rejected) when full."""
    bh = Bulkhead(1, max_wait=60, clock=clock)
    assert (bh.try_acquire(), bh.try_acquire()) == (True, False)
    assert bh.stats == BulkheadStats(1, 1, 0, 1, 1, 0)


# -- cancellation and races --------------------------------------------------------------------


@pytest.mark.anyio
async def test_cancelling_a_queued_waiter_leaks_nothing(clock: FakeClock) -> None:
    """A cancelled waiter leaves the queue; after the holder releases, a slot is free at once."""
    bh = Bulkhead(1, max_wait=60, clock=clock)
    await bh.acquire_async()
    async with anyio.create_task_group() as tg:
        tg.start_soon(bh.acquire_async)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    assert (bh.stats.in_flight, bh.stats.queued) == (1, 0)
    bh.release()
    assert bh.stats.in_flight == 0
    with anyio.CancelScope() as scope:
        scope.cancel()  # proves the next acquire does not even checkpoint
        await bh.acquire_async()
    assert bh.stats == BulkheadStats(1, 1, 0, 2, 0, 0)


@pytest.mark.anyio
async def test_cancelling_a_holder_releases_its_slot(clock: FakeClock) -> None:
    """A task cancelled inside ``async with bulkhead`` gives its slot back."""
    bh = Bulkhead(2, clock=clock)

    async def holder() -> None:
        async with bh:
            await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder)
        tg.start_soon(holder)
        await anyio.wait_all_tasks_blocked()
        assert bh.stats.in_flight == 2
        tg.cancel_scope.cancel()
    assert bh.stats.in_flight == 0


@pytest.mark.anyio
async def test_a_grant_racing_the_timeout_keeps_the_slot(clock: FakeClock) -> None:
    """Handed the slot in the same tick its max_wait runs out, the waiter is admitted once."""
    bh = Bulkhead(1, max_wait=5, clock=clock)
    await bh.acquire_async()
    admitted: list[int] = []

    async def waiter() -> None:
        await bh.acquire_async()
        admitted.append(bh.stats.in_flight)
        bh.release()

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        bh.release()
        clock.advance(5)
        await anyio.wait_all_tasks_blocked()
        assert admitted == [1]
    assert bh.stats == BulkheadStats(1, 0, 0, 2, 0, 1)


@pytest.mark.anyio
async def test_a_grant_racing_a_cancellation_passes_the_slot_on(clock: FakeClock) -> None:
    """A waiter cancelled in the tick it was granted hands the slot to the next waiter."""
    bh = Bulkhead(1, max_wait=60, clock=clock)
    await bh.acquire_async()
    served: list[str] = []

    async def second() -> None:
        async with bh:
            served.append("second")

    first_scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_in_scope, first_scope, bh, served)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        # Cancel first, then grant: the waiter is granted before it can run its cleanup.
        first_scope.cancel()
        bh.release()
        await anyio.wait_all_tasks_blocked()
        assert served == ["second"]  # inside the group: a leaked slot fails, not hangs
    assert bh.stats == BulkheadStats(1, 0, 0, 2, 0, 1)


async def _in_scope(scope: anyio.CancelScope, bh: Bulkhead, served: list[str]) -> None:
    with scope:
        async with bh:
            served.append("first")


def test_a_grant_racing_a_thread_timeout_keeps_the_slot(clock: FakeClock) -> None:
    """A thread handed the slot at the instant its wait expires is admitted, not rejected."""
    bh = Bulkhead(1, max_wait=5, clock=clock)
    bh.acquire()
    results: list[str] = []

    def waiter() -> None:
        bh.acquire()
        results.append("admitted")
        bh.release()

    thread = _start(waiter)
    clock.wait_for_sleepers(1)
    bh.release()
    clock.advance(5)
    _join(thread)
    assert results == ["admitted"]
    assert bh.stats == BulkheadStats(1, 0, 0, 2, 0, 1)


# -- threads and tasks on one bulkhead ---------------------------------------------------------


@pytest.mark.anyio
async def test_threads_and_tasks_share_one_queue(clock: FakeClock) -> None:
    """A queued thread and a queued task are served FIFO, each waking the other across sides."""
    bh = Bulkhead(1, max_wait=60, clock=clock)
    bh.acquire()
    order: list[str] = []

    def thread_worker() -> None:
        with bh:
            order.append("thread")

    async def task_worker() -> None:
        async with bh:
            order.append("task")

    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, thread_worker)
        await anyio.to_thread.run_sync(clock.wait_for_sleepers, 1)
        tg.start_soon(task_worker)
        await anyio.wait_all_tasks_blocked()
        assert bh.stats.queued == 2
        bh.release()
    assert order == ["thread", "task"]
    assert bh.stats == BulkheadStats(1, 0, 0, 3, 0, 2)


@pytest.mark.anyio
async def test_peak_stays_at_the_limit_with_threads_and_tasks(clock: FakeClock) -> None:
    """4 threads and 4 tasks on 3 slots: all 8 run, never more than 3 at once."""
    bh = Bulkhead(3, max_wait=60, clock=clock)
    peak = Peak()

    def thread_worker() -> None:
        for _ in range(50):
            with bh:
                peak.enter()
                peak.leave()

    async def task_worker() -> None:
        for _ in range(50):
            async with bh:
                peak.enter()
                await anyio.lowlevel.checkpoint()
                peak.leave()

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(anyio.to_thread.run_sync, thread_worker)
            tg.start_soon(task_worker)
    assert peak.peak <= 3
    assert (bh.stats.in_flight, bh.stats.total_admitted, bh.stats.total_rejected) == (0, 400, 0)


@pytest.fixture
def switch_often() -> Iterator[None]:
    """Threads switch every microsecond, so lock-free steps interleave as much as they can."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_lock_free_slots_never_overshoot_or_strand_a_waiter(
    clock: FakeClock, switch_often: None
) -> None:
    """Queued threads and the httpx engine's inline slot, interleaved: at most 2 in, all served.

    Waiting threads queue with no time limit and every count must add up at the end. The two
    races of the lock-free release have deterministic tests of their own (below).
    """
    bh = Bulkhead(2, clock=clock)  # max_wait 0: the engine takes its slot inline
    peak = Peak()

    def handler(request: httpx.Request) -> httpx.Response:
        peak.enter()
        peak.leave()
        return httpx.Response(200)

    transport = ResilientTransport(
        httpx.MockTransport(handler), bulkhead=bh, breaker=None, retry=None, clock=clock
    )
    refused = [0] * 3

    def waiting_worker() -> None:
        for _ in range(300):
            bh.acquire(timeout=math.inf)
            peak.enter()
            peak.leave()
            bh.release()

    def request_worker(i: int) -> None:
        for _ in range(300):
            try:
                transport.handle_request(httpx.Request("GET", "http://a.test/"))
            except BulkheadFullError:
                refused[i] += 1

    threads = [_start(waiting_worker) for _ in range(3)]
    threads += [_start(functools.partial(request_worker, i)) for i in range(3)]
    _join(*threads)
    stats = bh.stats
    assert peak.peak <= 2
    assert (stats.in_flight, stats.queued) == (0, 0)
    assert (stats.total_admitted, stats.total_rejected) == (1800 - sum(refused), sum(refused))


class ReleaseOnRead(FakeClock):
    """A fake clock that runs a callback the next time it is read."""

    callback: Callable[[], object] | None = None

    def monotonic(self) -> float:
        callback, self.callback = self.callback, None
        if callback is not None:
            callback()
        return super().monotonic()


def test_a_slot_given_back_while_a_thread_queues_reaches_it() -> None:
    """Released without the lock after acquire found no slot, before it queued: it gets it."""
    clock = ReleaseOnRead()
    bh = Bulkhead(1, max_wait=60, clock=clock)
    bh.acquire()
    clock.callback = bh.release  # read once acquire has found no slot, to time its queueing
    _join(_start(bh.acquire))  # at once: no fake time passes
    assert bh.stats == BulkheadStats(1, 1, 0, 2, 0, 1)


def test_a_thread_queued_while_a_slot_is_given_back_gets_it() -> None:
    """A thread that queues between release's look at the bulkhead and its append gets the slot."""
    clock = FakeClock()
    bh = Bulkhead(1, max_wait=60, clock=clock)
    bh.acquire()
    pool = bh._core.free = AppendHook()
    threads = []

    def queue_a_thread() -> None:  # after release looked, before it appends
        threads.append(_start(bh.acquire))
        clock.wait_for_sleepers(1)

    pool.callback = queue_a_thread
    bh.release()
    _join(*threads)
    assert bh.stats == BulkheadStats(1, 1, 0, 2, 0, 1)


# -- errors ------------------------------------------------------------------------------------


def test_every_rejection_is_a_fresh_error_with_retry_after(clock: FakeClock) -> None:
    """Two rejections raise two distinct errors; retry_after is the observed release interval."""
    bh = Bulkhead(1, clock=clock)
    bh.acquire()
    errors = []
    for _ in range(2):
        with pytest.raises(BulkheadFullError) as info:
            bh.acquire()
        errors.append(info.value)
    assert errors[0] is not errors[1]
    assert [e.retry_after for e in errors] == [0.0, 0.0]
    clock.advance(2)
    bh.release()
    bh.acquire()
    with pytest.raises(BulkheadFullError) as info:
        bh.acquire()
    assert info.value.retry_after == 2.0
    assert isinstance(info.value, seawall.RejectedError)


def test_releasing_more_than_acquired_raises() -> None:
    """A release with no slot held is a RuntimeError and changes nothing."""
    bh = Bulkhead(2)
    bh.acquire()
    bh.release()
    with pytest.raises(RuntimeError, match="released more times than it was acquired"):
        bh.release()
    assert bh.stats.in_flight == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"max_concurrent": 0}, ValueError, "max_concurrent must be >= 1, got 0"),
        ({"max_concurrent": -3}, ValueError, "max_concurrent must be >= 1, got -3"),
        ({"max_concurrent": 2.5}, TypeError, "max_concurrent must be an int, got 2.5"),
        ({"max_concurrent": True}, TypeError, "max_concurrent must be an int, got True"),
        ({"max_concurrent": "3"}, TypeError, "max_concurrent must be an int, got '3'"),
        ({"max_wait": -1}, ValueError, "max_wait must be >= 0, got -1"),
        ({"max_wait": math.nan}, ValueError, "max_wait must be a number, got nan"),
        ({"max_wait": "1"}, TypeError, "max_wait must be a number, got '1'"),
        ({"max_queue": -1}, ValueError, "max_queue must be >= 0, got -1"),
        ({"max_queue": 1.0}, TypeError, "max_queue must be an int, got 1.0"),
        ({"name": 7}, TypeError, "name must be a str or None, got 7"),
    ],
)
def test_bad_settings_name_the_parameter(
    kwargs: dict[str, Any], error: type[Exception], needle: str
) -> None:
    """Each invalid setting raises the right error naming the parameter and the value."""
    with pytest.raises(error) as info:
        Bulkhead(**kwargs)
    assert needle in str(info.value)


@pytest.mark.anyio
async def test_bad_timeout_is_rejected_even_when_a_slot_is_free() -> None:
    """acquire(timeout=-1) and acquire_async(timeout=nan) raise ValueError naming timeout."""
    bh = Bulkhead(1)
    with pytest.raises(ValueError, match="timeout must be >= 0, got -1"):
        bh.acquire(timeout=-1)
    with pytest.raises(ValueError, match="timeout must be a number, got nan"):
        await bh.acquire_async(timeout=math.nan)
    assert bh.stats.in_flight == 0


# -- calls, decorators, context managers -------------------------------------------------------


def test_call_runs_the_function_and_releases_on_error() -> None:
    """call returns the result, and the slot comes back when the function raises."""
    bh = Bulkhead(1)
    assert bh.call(lambda a, b: a + b, 2, b=3) == 5

    def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        bh.call(boom)
    assert bh.stats == BulkheadStats(1, 0, 0, 2, 0, 0)


class AsyncCallable:
    """An object whose __call__ is async."""

    async def __call__(self) -> int:
        return 42


async def _coro_fn() -> int:
    return 1


@pytest.mark.parametrize("fn", [_coro_fn, AsyncCallable()])
def test_call_with_an_async_callable_is_a_type_error(fn: Callable[[], Any]) -> None:
    """call() refuses async functions and objects with an async __call__ before acquiring."""
    bh = Bulkhead(1)
    with pytest.raises(TypeError, match=r"is async: use 'await bulkhead.acall"):
        bh.call(fn)
    assert bh.stats.total_admitted == 0


def test_call_with_a_lambda_returning_a_coroutine_is_a_type_error() -> None:
    """A sync callable that returns a coroutine is caught after the call; no slot leaks."""
    bh = Bulkhead(1)
    with pytest.raises(TypeError, match="returned a coroutine"):
        bh.call(lambda: _coro_fn())  # type: ignore[unused-coroutine]
    assert bh.stats.in_flight == 0


@pytest.mark.anyio
async def test_acall_awaits_and_releases() -> None:
    """acall returns the awaited result, for functions and async callables, and releases."""
    bh = Bulkhead(1)
    assert await bh.acall(_coro_fn) == 1
    assert await bh.acall(AsyncCallable()) == 42
    assert bh.stats == BulkheadStats(1, 0, 0, 2, 0, 0)


def test_decorator_on_a_sync_function() -> None:
    """@bulkhead(1) keeps the name, holds a slot during the call and shares it across calls."""
    seen: list[int] = []
    db = bulkhead(1, name="db")

    @db
    def query(x: int) -> int:
        seen.append(db.stats.in_flight)
        with pytest.raises(BulkheadFullError):
            query(0)
        return x * 2

    assert (query(4), query.__name__, seen, db.stats.in_flight) == (8, "query", [1], 0)


def test_a_bulkhead_instance_decorates() -> None:
    """@Bulkhead(1) on a sync function holds that bulkhead's slot while the function runs."""
    bh = Bulkhead(1)
    seen: list[int] = []

    @bh
    def work() -> str:
        seen.append(bh.stats.in_flight)
        return "done"

    assert (work(), seen, bh.stats.in_flight) == ("done", [1], 0)


@pytest.mark.anyio
async def test_decorator_on_an_async_function(clock: FakeClock) -> None:
    """An async function decorated by a bulkhead holds a slot and rejects when full."""
    bh = Bulkhead(1, clock=clock)
    gate = anyio.Event()

    @bh
    async def slow() -> str:
        await gate.wait()
        return "ok"

    results: list[str] = []

    async def run() -> None:
        results.append(await slow())

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(BulkheadFullError):
            await slow()
        gate.set()
    assert (results, slow.__name__, bh.stats.in_flight) == (["ok"], "slow", 0)


def test_bare_decorator_uses_the_defaults() -> None:
    """@bulkhead with no arguments wraps the function with a default Bulkhead."""

    @bulkhead
    def ping() -> str:
        return "pong"

    assert ping() == "pong"


def test_stats_are_a_frozen_snapshot_and_repr_names_the_bulkhead() -> None:
    """stats does not change after it is taken and cannot be assigned; repr shows the name."""
    bh = Bulkhead(2, max_wait=1.5, max_queue=4, name="search")
    before = bh.stats
    bh.acquire()
    assert (before.in_flight, bh.stats.in_flight) == (0, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.in_flight = 3  # type: ignore[misc]
    assert repr(bh) == (
        "Bulkhead(name='search', max_concurrent=2, max_wait=1.5, max_queue=4, "
        "in_flight=1, queued=0)"
    )
    assert (bh.max_concurrent, bh.max_wait, bh.max_queue) == (2, 1.5, 4)


@pytest.mark.anyio
async def test_uncontended_async_acquire_does_not_checkpoint() -> None:
    """In an already-cancelled scope, async with on a free bulkhead still gets in."""
    bh = Bulkhead(1)
    entered = False
    with anyio.CancelScope() as scope:
        scope.cancel()
        async with bh:
            entered = True
    assert (entered, bh.stats.in_flight) == (True, 0)


@pytest.mark.anyio
async def test_works_with_async_exit_stack() -> None:
    """A bulkhead entered through AsyncExitStack holds its slot until the stack closes."""
    bh = Bulkhead(1)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(bh)
        assert bh.stats.in_flight == 1
    assert bh.stats.in_flight == 0


@pytest.mark.anyio
async def test_async_release_times_the_busy_period(clock: FakeClock) -> None:
    """Leaving ``async with`` while full is timed: 3 s later a rejection says retry_after 3."""
    bh = Bulkhead(1, clock=clock)
    async with bh:
        with pytest.raises(BulkheadFullError) as first:
            await bh.acquire_async()
        clock.advance(3)
    async with bh:
        with pytest.raises(BulkheadFullError) as second:
            await bh.acquire_async()
    assert (first.value.retry_after, second.value.retry_after) == (0.0, 3.0)


@pytest.mark.anyio
async def test_infinite_max_wait_waits_for_a_release(clock: FakeClock) -> None:
    """max_wait=math.inf queues without a deadline: a day later the waiter still gets the slot."""
    bh = Bulkhead(1, max_wait=math.inf, clock=clock)
    await bh.acquire_async()
    async with anyio.create_task_group() as tg:
        tg.start_soon(bh.acquire_async)
        await anyio.wait_all_tasks_blocked()
        clock.advance(86_400)
        await anyio.wait_all_tasks_blocked()
        assert (bh.stats.queued, clock.sleepers) == (1, 0)
        bh.release()
    assert bh.stats == BulkheadStats(1, 1, 0, 2, 0, 1)
