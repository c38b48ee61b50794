"""A stale or wrong ticket never gives a slot back twice: two grants never share one slot.

The shared scenario, at rate 1/s and burst 1, bucket emptied at t=0: A queues for t=1 and B
for t=2. At t=1 A's slot has come (its ticket is spent), but A is cancelled before it runs, so
it leaves holding a ticket that no longer describes the end of the line. B reserved after it,
so A must give nothing back: a newcomer D arriving at t=1 goes after B, at t=3. A limiter that
took A's tokens off the end of the line anyway would grant D at t=2, in B's slot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar

import anyio
import pytest

from seawall import KeyedRateLimiter, RateLimiter
from seawall._core.limiter import Bucket
from seawall._core.limiter_keyed import KeyedBuckets
from seawall._core.limiter_queue import KeyView, Slots, WaitQueue
from seawall.testing import FakeClock

EXPECTED = {"B": 2.0, "D": 3.0}


class Woken:
    """A stand-in waiter (the core only hands it back)."""

    def wake(self) -> None:
        pass


def _stale_leave_then_newcomer(slots: Slots) -> tuple[float, float]:
    """Run the shared scenario on the pure core: ``(B's end, D's wait)`` after A's leave."""
    queue = WaitQueue(slots)
    assert slots.reserve(0.0, 1, 0.0) == 0.0
    _, a = queue.join(0.0, 1, float("inf"))
    _, b = queue.join(0.0, 1, float("inf"))
    assert a is not None
    assert b is not None
    assert queue.follow(a, 1.0, Woken()) == (0.0, True)  # A's time has come: spent
    assert queue.leave(a, 1.0) == []
    wait, _ = queue.join(1.0, 1, float("inf"))
    return b.end, wait


def test_plain_stale_leave_gives_nothing_back_when_someone_queued_after() -> None:
    """Bucket: A leaving with its spent ticket leaves B at t=2, and D waits until t=3."""
    assert _stale_leave_then_newcomer(Bucket(interval=1.0, burst=1.0)) == (3.0, 2.0)


def test_keyed_stale_leave_gives_nothing_back_when_someone_queued_after() -> None:
    """KeyedBuckets: the same scenario on one key ends the same way: D waits until t=3."""
    buckets = KeyedBuckets(interval=1.0, burst=1.0, max_keys=10)
    assert _stale_leave_then_newcomer(KeyView(buckets, "k")) == (3.0, 2.0)


def test_keyed_cancel_with_a_ticket_of_another_key_changes_nothing() -> None:
    """A ticket that is not ``key``'s last reservation gives nothing back on ``key``."""
    buckets = KeyedBuckets(interval=1.0, burst=1.0, max_keys=10)
    buckets.reserve("k", 0.0, 1, 0.0)
    buckets.reserve("j", 0.5, 1, 0.0)
    assert buckets.cancel("k", buckets.full_at["j"], 1) is False
    assert buckets.full_at == {"k": 1.0, "j": 1.5}


@pytest.mark.parametrize("kind", ["plain", "keyed"])
def test_ticket_from_before_a_reset_gives_nothing_back(kind: str) -> None:
    """After a reset, an old ticket equal to the new line's end gives back nothing."""
    buckets = KeyedBuckets(interval=1.0, burst=1.0, max_keys=10)
    slots: Slots = Bucket(interval=1.0, burst=1.0) if kind == "plain" else KeyView(buckets, "k")
    queue = WaitQueue(slots)
    slots.reserve(0.0, 1, 0.0)
    _, old = queue.join(0.0, 1, float("inf"))
    assert old is not None
    queue.clear()
    if isinstance(slots, Bucket):
        slots.reset()
    else:
        buckets.clear()
    slots.reserve(0.0, 1, 0.0)
    _, new = queue.join(0.0, 1, float("inf"))
    assert new is not None
    assert old.end == new.end == slots.full_at == 2.0  # the same number, another reservation
    assert queue.leave(old, 0.5) == []
    assert (slots.full_at, queue.join(0.5, 1, float("inf"))[0]) == (2.0, 1.5)


# -- the drivers: a task cancelled at the instant its slot came ----------------------------------


# Whether the current task asked to be held. A context variable, not a set of task ids: anyio's
# task id is the id() of the task object, and a task started after a held one has ended can get
# the same id; on trio that parked a later waiter forever and its task group never exited (the
# hang that kept these scenarios on asyncio). A task's context ends with it.
_HELD: ContextVar[bool] = ContextVar("_HELD", default=False)

# A guard against a hang, not a timing assumption: the scenario never waits in real time.
HANG_GUARD = 10.0


class HoldingClock(FakeClock):
    """A fake clock on which a task that called :meth:`hold` stays parked once its wait ends.

    It stands for a task whose wait has ended but which has not run yet when it is cancelled:
    the test cancels it there, at the instant its slot came, with a real cancellation.
    """

    def __init__(self) -> None:
        super().__init__()
        self.parked = 0

    @staticmethod
    def hold() -> None:
        """Mark the current task (and only it) to be parked after its next wait."""
        _HELD.set(True)

    async def _park(self) -> None:
        if _HELD.get():
            self.parked += 1
            await anyio.Event().wait()  # until cancelled

    async def asleep(self, seconds: float) -> None:
        await super().asleep(seconds)
        await self._park()

    async def await_event(self, event: anyio.Event, timeout: float | None) -> bool:
        answer = await super().await_event(event, timeout)
        await self._park()
        return answer


async def _scenario(
    clock: HoldingClock, acquire: Callable[[], Awaitable[object]]
) -> dict[str, float]:
    """A, B queue at t=0; A is cancelled at t=1 as its slot comes; D arrives then."""
    granted: dict[str, float] = {}
    scope = anyio.CancelScope()

    async def waiter(name: str) -> None:
        await acquire()
        granted[name] = clock.monotonic()

    async def doomed() -> None:
        clock.hold()
        with scope:
            await acquire()
            granted["A"] = clock.monotonic()

    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(doomed)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(waiter, "B")
            await anyio.wait_all_tasks_blocked()
            clock.advance(1.0)
            await anyio.wait_all_tasks_blocked()
            assert clock.parked == 1  # A's wait is over, its slot has come
            scope.cancel()
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(waiter, "D")
            await anyio.wait_all_tasks_blocked()
            for _ in range(3):
                clock.advance(1.0)
                await anyio.wait_all_tasks_blocked()
    return granted


@pytest.mark.anyio
async def test_plain_limiter_never_grants_two_tasks_one_slot() -> None:
    """RateLimiter: after A's cancellation at its slot, B goes at t=2 and D at t=3."""
    clock = HoldingClock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    assert limiter.try_acquire() is True
    assert await _scenario(clock, limiter.acquire_async) == EXPECTED


@pytest.mark.anyio
async def test_keyed_limiter_never_grants_two_tasks_one_slot() -> None:
    """KeyedRateLimiter: the same on one key; another key keeps its own full bucket."""
    clock = HoldingClock()
    keyed = KeyedRateLimiter(rate=1, burst=1, clock=clock)
    assert keyed.try_acquire("k") is True
    assert await _scenario(clock, lambda: keyed.acquire_async("k")) == EXPECTED
    assert keyed.tokens("other") == 1.0


# -- a waiter from before a reset, cancelled after it --------------------------------------------


async def _reset_scenario(
    clock: FakeClock,
    take: Callable[[], bool],
    acquire: Callable[[], Awaitable[object]],
    reset: Callable[[], None],
) -> dict[str, float]:
    """W queues for t=1; reset; X takes the refilled token, Y queues for t=1; W is cancelled
    at t=0.5 and Z arrives then: Y keeps t=1 and Z gets t=2."""
    granted: dict[str, float] = {}
    scope = anyio.CancelScope()

    async def waiter(name: str) -> None:
        await acquire()
        granted[name] = clock.monotonic()

    async def doomed() -> None:
        with scope:
            await acquire()
            granted["W"] = clock.monotonic()

    assert take() is True
    async with anyio.create_task_group() as tg:
        tg.start_soon(doomed)
        await anyio.wait_all_tasks_blocked()
        reset()
        assert take() is True  # X: the bucket is full again after the reset
        tg.start_soon(waiter, "Y")
        await anyio.wait_all_tasks_blocked()
        clock.advance(0.5)
        scope.cancel()
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(waiter, "Z")
        await anyio.wait_all_tasks_blocked()
        for _ in range(3):
            clock.advance(0.5)
            await anyio.wait_all_tasks_blocked()
    return granted


@pytest.mark.anyio
async def test_plain_waiter_from_before_a_reset_gives_nothing_back(clock: FakeClock) -> None:
    """RateLimiter: a waiter queued before reset() and cancelled after it frees no slot."""
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    granted = await _reset_scenario(
        clock, limiter.try_acquire, limiter.acquire_async, limiter.reset
    )
    assert granted == {"Y": 1.0, "Z": 2.0}


@pytest.mark.anyio
async def test_keyed_waiter_from_before_a_reset_gives_nothing_back(clock: FakeClock) -> None:
    """KeyedRateLimiter: a waiter queued before reset() and cancelled after it frees no slot."""
    keyed = KeyedRateLimiter(rate=1, burst=1, clock=clock)
    granted = await _reset_scenario(
        clock, lambda: keyed.try_acquire("k"), lambda: keyed.acquire_async("k"), keyed.reset
    )
    assert granted == {"Y": 1.0, "Z": 2.0}


@pytest.mark.anyio
async def test_holding_clock_holds_no_task_started_after_the_held_one() -> None:
    """Only the task that called hold() is parked, never a later task, whatever its task id."""
    clock = HoldingClock()
    scope = anyio.CancelScope()

    async def held() -> None:
        clock.hold()
        with scope:
            await clock.asleep(1.0)

    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(held)
            await anyio.wait_all_tasks_blocked()
            clock.advance(1.0)
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
            await anyio.wait_all_tasks_blocked()
            for _ in range(20):  # on trio, some of these got the held task's id back
                tg.start_soon(clock.asleep, 1.0)
                await anyio.wait_all_tasks_blocked()
                clock.advance(1.0)
                await anyio.wait_all_tasks_blocked()
    assert (clock.parked, clock.monotonic()) == (1, 21.0)
