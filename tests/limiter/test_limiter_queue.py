"""The limiters' waiting line: a waiter who leaves hands its slot to the ones behind it."""

from __future__ import annotations

import functools
import threading
from collections import Counter

import anyio
import pytest

from seawall import KeyedRateLimiter, RateLimiter, RateLimiterStats
from seawall._core.limiter import Bucket
from seawall._core.limiter_queue import Ticket, WaitQueue
from seawall.testing import FakeClock

# The shared scenario, at rate 1/s and burst 1, bucket emptied at t=0: A, B and C queue for
# t=1, 2 and 3; B leaves at t=0.5; D arrives at t=0.5, after B left.
EXPECTED_GRANTS = {"A": 1.0, "C": 2.0, "D": 3.0}
EXPECTED_STATS = RateLimiterStats(4, 0, 1.0 + 2.0 + 2.5, 3)


class Woken:
    """A stand-in waiter that counts its wake-ups (the core only hands it back)."""

    def __init__(self) -> None:
        self.count = 0

    def wake(self) -> None:
        self.count += 1


def line_of_three() -> tuple[WaitQueue, list[Ticket], list[Woken]]:
    """An empty 1/s bucket of 1 at t=0 with three one-token tickets due at 1, 2 and 3."""
    bucket = Bucket(interval=1.0, burst=1.0)
    queue = WaitQueue(bucket)
    assert bucket.reserve(0.0, 1, 0.0) == 0.0
    tickets, waiters = [], []
    for due in (1.0, 2.0, 3.0):
        wait, ticket = queue.join(0.0, 1, float("inf"))
        assert (wait, ticket is not None) == (due, True)
        assert ticket is not None
        waiter = Woken()
        assert queue.follow(ticket, 0.0, waiter) == (due, due == 1.0)
        tickets.append(ticket)
        waiters.append(waiter)
    return queue, tickets, waiters


class InterruptingClock(FakeClock):
    """A fake clock that raises KeyboardInterrupt in a thread waiting on it, as Ctrl-C would.

    It also counts each thread's waits (``wait_for`` and ``sleep``), so a test can tell that a
    woken thread has started waiting again before it moves time.
    """

    def __init__(self) -> None:
        super().__init__(sync_sleep_advances=False)
        self._changed = threading.Condition()
        self._events: dict[int, threading.Event] = {}
        self._entered: Counter[int] = Counter()
        self._doomed: set[int] = set()

    def wait_for(self, event: threading.Event, timeout: float | None) -> bool:
        me = threading.get_ident()
        with self._changed:
            self._events[me] = event
            self._entered[me] += 1
            self._changed.notify_all()
        result = super().wait_for(event, timeout)
        with self._changed:
            if me in self._doomed:
                self._doomed.discard(me)
                raise KeyboardInterrupt
        return result

    def sleep(self, seconds: float) -> None:
        with self._changed:
            self._entered[threading.get_ident()] += 1
            self._changed.notify_all()
        super().sleep(seconds)

    def interrupt(self, ident: int) -> None:
        with self._changed:
            self._doomed.add(ident)
            self._events[ident].set()

    def wait_entered(self, ident: int, times: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self._entered[ident] >= times, 5.0)


# -- the pure core -----------------------------------------------------------------------------


def test_leaver_in_the_middle_moves_the_ones_behind_up() -> None:
    """B (due 2) leaves at 0.5: C moves from 3 to 2 and is woken; A and full_at follow."""
    queue, (a, b, c), (wa, wb, wc) = line_of_three()
    assert queue.leave(b, 0.5) == [wc]
    assert [a.end, c.end, queue.bucket.full_at] == [2.0, 3.0, 3.0]
    assert queue.follow(c, 0.5, wc) == (1.5, False)
    assert (wa.count, wb.count) == (0, 0)


def test_newcomer_after_a_leaver_queues_behind_the_moved_line() -> None:
    """After B left, a newcomer at 0.5 is due at 3.0: the freed slot went to C, not to it."""
    queue, (_, b, _), _ = line_of_three()
    queue.leave(b, 0.5)
    assert queue.join(0.5, 1, float("inf"))[0] == 2.5


def test_last_leaver_gives_its_tokens_back_to_the_bucket() -> None:
    """C, the last, leaves at 0.5: nobody moves and the bucket holds one token less debt."""
    queue, (_, _, c), _ = line_of_three()
    assert queue.leave(c, 0.5) == []
    assert queue.bucket.tokens(0.5) == -1.5


def test_due_ticket_is_spent_and_moves_nobody() -> None:
    """A is due at 1.0; leaving at 1.0 hands nothing on: C keeps its slot at 3."""
    queue, (a, _, c), _ = line_of_three()
    assert queue.leave(a, 1.0) == []
    assert (c.end, queue.bucket.full_at) == (4.0, 4.0)


def test_nobody_moves_into_a_block() -> None:
    """With a block until 10, C's move-up stops at the block's floor instead of t=2."""
    queue, (_, b, c), _ = line_of_three()
    assert queue.bucket.block(0.5, 10.0) is True
    queue.leave(b, 0.5)
    assert (c.end, queue.bucket.full_at) == (11.0, 11.0)


def test_multi_token_leaver_moves_the_line_by_its_tokens() -> None:
    """At 1/s with burst 3: a 3-token waiter leaving moves the 1-token one behind by 3 s."""
    bucket = Bucket(interval=1.0, burst=3.0)
    queue = WaitQueue(bucket)
    bucket.reserve(0.0, 3, 0.0)
    _, big = queue.join(0.0, 3, float("inf"))
    _, small = queue.join(0.0, 1, float("inf"))
    assert big is not None
    assert small is not None
    assert (big.end, small.end) == (6.0, 7.0)
    queue.leave(big, 0.0)
    assert (small.end, bucket.full_at) == (4.0, 4.0)


# -- tasks (asyncio and trio) --------------------------------------------------------------------


@pytest.mark.anyio
async def test_cancelled_task_hands_its_slot_to_the_next(clock: FakeClock) -> None:
    """Tasks: B cancelled at 0.5, C is granted at 2.0 instead of 3.0 and D, later, at 3.0."""
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    limiter.acquire()
    grants: dict[str, float] = {}
    scope = anyio.CancelScope()

    async def waiter(name: str) -> None:
        await limiter.acquire_async()
        grants[name] = clock.monotonic()

    async def doomed() -> None:
        with scope:
            await waiter("B")

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, "A")
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(doomed)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(waiter, "C")
        await anyio.wait_all_tasks_blocked()
        clock.advance(0.5)
        scope.cancel()
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(waiter, "D")
        await anyio.wait_all_tasks_blocked()
        for _ in range(5):
            clock.advance(0.5)
            await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()  # t=3: whoever still waits has waited too long
    assert grants == EXPECTED_GRANTS
    assert limiter.stats == EXPECTED_STATS


@pytest.mark.anyio
async def test_keyed_cancelled_task_hands_its_slot_to_the_next_on_its_key(
    clock: FakeClock,
) -> None:
    """KeyedRateLimiter, key "k": the same scenario gives the same grants; key "x" is untouched."""
    keyed = KeyedRateLimiter(rate=1, burst=1, clock=clock)
    keyed.acquire("k")
    grants: dict[str, float] = {}
    scope = anyio.CancelScope()

    async def waiter(name: str) -> None:
        await keyed.acquire_async("k")
        grants[name] = clock.monotonic()

    async def doomed() -> None:
        with scope:
            await waiter("B")

    async with anyio.create_task_group() as tg:
        for start in (functools.partial(waiter, "A"), doomed, functools.partial(waiter, "C")):
            tg.start_soon(start)
            await anyio.wait_all_tasks_blocked()
        clock.advance(0.5)
        scope.cancel()
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(waiter, "D")
        await anyio.wait_all_tasks_blocked()
        assert keyed.tokens("x") == 1.0
        for _ in range(5):
            clock.advance(0.5)
            await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    assert grants == EXPECTED_GRANTS
    assert keyed.stats == EXPECTED_STATS
    assert keyed._lines == {}  # a key's line goes away with its last waiter


@pytest.mark.anyio
async def test_cancellation_storm_still_serves_exactly_the_rate(clock: FakeClock) -> None:
    """60 waiters at 4/s, burst 2, one cancelled mid-line every 0.25 s: by t, exactly 2 + 4t."""
    limiter = RateLimiter(rate=4, burst=2, clock=clock)
    grants: list[float] = []
    scopes = [anyio.CancelScope() for _ in range(60)]
    served: list[int] = []

    async def waiter(scope: anyio.CancelScope) -> None:
        with scope:
            await limiter.acquire_async()
            grants.append(clock.monotonic())

    async with anyio.create_task_group() as tg:
        for scope in scopes:
            tg.start_soon(waiter, scope)
            await anyio.wait_all_tasks_blocked()
        for step in range(1, 21):
            clock.advance(0.25)
            scopes[20 + step].cancel()  # queued for t > 4.75: still waiting
            await anyio.wait_all_tasks_blocked()
            served.append(len(grants))
        tg.cancel_scope.cancel()
    assert served == [2 + step for step in range(1, 21)]
    assert grants == [0.0, 0.0] + [0.25 * step for step in range(1, 21)]


@pytest.mark.anyio
async def test_a_thread_behind_a_cancelled_task_moves_up() -> None:
    """A thread queued for t=2 behind a task is granted at t=1 once that task is cancelled."""
    clock = InterruptingClock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    limiter.acquire()
    scope = anyio.CancelScope()
    granted: list[float] = []

    def thread_waiter() -> None:
        limiter.acquire()
        granted.append(clock.monotonic())

    async def doomed() -> None:
        with scope:
            await limiter.acquire_async()

    thread = threading.Thread(target=thread_waiter, daemon=True)
    async with anyio.create_task_group() as tg:
        tg.start_soon(doomed)
        await anyio.wait_all_tasks_blocked()
        thread.start()
        await anyio.to_thread.run_sync(clock.wait_for_sleepers, 2)
        scope.cancel()
    assert thread.ident is not None
    # Woken, the thread is now first in line: it sleeps (its 2nd wait) until t=1.
    await anyio.to_thread.run_sync(clock.wait_entered, thread.ident, 2)
    await anyio.to_thread.run_sync(clock.wait_for_sleepers, 1)
    clock.advance(1.0)
    await anyio.to_thread.run_sync(thread.join, 30)
    assert granted == [1.0]


# -- threads ---------------------------------------------------------------------------------------


def test_interrupted_thread_hands_its_slot_to_the_next() -> None:
    """Threads: B interrupted at 0.5, C is granted at 2.0 instead of 3.0 and D at 3.0."""
    clock = InterruptingClock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    limiter.acquire()
    grants: dict[str, float] = {}
    outcomes: list[str] = []

    def waiter(name: str) -> None:
        try:
            limiter.acquire()
        except KeyboardInterrupt:
            outcomes.append(f"{name} interrupted")
            return
        grants[name] = clock.monotonic()

    def start(name: str, sleepers: int) -> threading.Thread:
        thread = threading.Thread(target=waiter, args=(name,), daemon=True)
        thread.start()
        clock.wait_for_sleepers(sleepers)
        return thread

    a, b, c = start("A", 1), start("B", 2), start("C", 3)
    clock.advance(0.5)
    assert b.ident is not None
    assert c.ident is not None
    clock.interrupt(b.ident)
    b.join(30)
    clock.wait_entered(c.ident, 2)  # C was woken and waits again, for less
    d = start("D", 3)
    for thread in (a, c, d):
        clock.advance(0.5 if thread is a else 1.0)
        thread.join(30)
    assert outcomes == ["B interrupted"]
    assert grants == EXPECTED_GRANTS
    assert limiter.stats == EXPECTED_STATS
