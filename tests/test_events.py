"""Events: the listener registry, and exactly which events each policy emits and when."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import anyio
import pytest

import seawall
from seawall import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    CircuitStateChange,
    KeyedRateLimiter,
    LoopStallDetector,
    RateLimiter,
    RateLimitExceededError,
    Watchdog,
    _events,
    add_listener,
)
from seawall._monitor import settle
from seawall.events import (
    BreakerStateChanged,
    BulkheadChanged,
    CallRecorded,
    DegradedDecision,
    Event,
    LimiterWaited,
    LoopStalled,
    Rejected,
    StoreDegraded,
    Subscription,
    WatchdogFired,
    emit,
    listening,
)
from seawall.testing import FakeClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
EVENT_TYPES = (
    BulkheadChanged,
    CallRecorded,
    CircuitStateChange,
    DegradedDecision,
    LimiterWaited,
    LoopStalled,
    Rejected,
    StoreDegraded,
    WatchdogFired,
)


@pytest.fixture
def events() -> Iterator[list[Event]]:
    """Every event emitted while the test runs, in order."""
    seen: list[Event] = []
    with add_listener(seen.append):
        yield seen


def _fail() -> None:
    raise ZeroDivisionError


# -- the registry ---------------------------------------------------------------------------


def test_nobody_listens_by_default() -> None:
    """With no listener registered, listening() is False and ACTIVE is empty."""
    assert listening() is False
    assert _events.ACTIVE == []


def test_a_listener_gets_each_event_once_until_removed() -> None:
    """add_listener delivers every emitted event once; remove() stops it, idempotently."""
    seen: list[Event] = []
    subscription = add_listener(seen.append)
    assert isinstance(subscription, Subscription)
    assert (listening(), subscription.active) == (True, True)
    emit(StoreDegraded("limiter", "api", "redis://r", "local", True))
    subscription.remove()
    subscription.remove()
    emit(StoreDegraded("limiter", "api", "redis://r", "local", False, 3))
    assert seen == [StoreDegraded("limiter", "api", "redis://r", "local", True, 0)]
    assert (listening(), subscription.active) == (False, False)


def test_the_same_callable_added_twice_is_called_twice() -> None:
    """Each add_listener is its own subscription, removed on its own."""
    seen: list[Event] = []
    with add_listener(seen.append), add_listener(seen.append) as second:
        emit(WatchdogFired("w", 2.0, 1.0))
        second.remove()
        emit(WatchdogFired("w", 3.0, 1.0))
    assert seen == [WatchdogFired("w", 2.0, 1.0)] * 2 + [WatchdogFired("w", 3.0, 1.0)]


def test_a_non_callable_listener_is_a_type_error() -> None:
    """add_listener refuses something it could not call, naming the parameter."""
    with pytest.raises(TypeError, match="listener"):
        add_listener(42)  # type: ignore[arg-type]


def test_a_raising_listener_is_logged_once_and_breaks_nothing(
    caplog: pytest.LogCaptureFixture, events: list[Event]
) -> None:
    """A listener that raises is logged once (then counted); the policy and others go on."""

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    breaker = CircuitBreaker(name="db")
    with caplog.at_level(logging.ERROR, logger="seawall.events"), add_listener(broken) as sub:
        assert breaker.call(lambda: 7) == 7
        assert breaker.call(lambda: 8) == 8
    assert sub.failures == 2
    assert [r.getMessage().split(" failed on ")[0] for r in caplog.records] == [
        f"seawall event listener {broken!r}"
    ]
    assert caplog.records[0].exc_info is not None
    assert events == [CallRecorded("breaker", "db", "success")] * 2


def test_a_listener_may_unsubscribe_while_being_called() -> None:
    """Removing a subscription from inside a listener does not disturb the delivery."""
    seen: list[str] = []
    subscriptions: list[Subscription] = []

    def once(event: Event) -> None:
        seen.append("once")
        subscriptions[0].remove()

    subscriptions.append(add_listener(once))
    with add_listener(lambda e: seen.append("always")):
        emit(WatchdogFired("w", 1.0, 1.0))
        emit(WatchdogFired("w", 1.0, 1.0))
    assert seen == ["once", "always", "always"]


def test_events_are_frozen_and_compare_by_value() -> None:
    """Events are immutable values: equal fields make equal, hashable events."""
    event = Rejected("limiter", "api", "rate_limited", 0.5, key="client-1")
    with pytest.raises(AttributeError):
        event.reason = "other"  # type: ignore[misc]
    assert event == Rejected("limiter", "api", "rate_limited", 0.5, "client-1")
    assert hash(event) == hash(Rejected("limiter", "api", "rate_limited", 0.5, "client-1"))
    assert Rejected("bulkhead", None, "full", 0.0).key is None
    assert BreakerStateChanged is CircuitStateChange


# -- no listener, no event ------------------------------------------------------------------


def _event_code_runs(work: Any) -> list[str]:
    """Names of event constructors and emit calls that ran (Python frames) during work()."""
    ran: list[str] = []

    watched = {cls.__init__.__code__: cls.__name__ for cls in EVENT_TYPES}
    watched[emit.__code__] = "emit"

    def profile(frame: FrameType, what: str, arg: object) -> None:
        if what == "call" and frame.f_code in watched:
            ran.append(watched[frame.f_code])

    sys.setprofile(profile)
    try:
        work()
    finally:
        sys.setprofile(None)
    return ran


def _a_bit_of_everything(clock: FakeClock) -> None:
    breaker = CircuitBreaker(name="db", max_failures=1, clock=clock)
    breaker.call(lambda: None)
    with pytest.raises(ZeroDivisionError):
        breaker.call(_fail)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
    limiter = RateLimiter(1, name="api", clock=clock)
    limiter.try_acquire()
    limiter.try_acquire()
    limiter.acquire()  # waits one second on the fake clock
    bulkhead = Bulkhead(1, name="pool")
    with bulkhead:
        bulkhead.try_acquire()


def test_nothing_is_built_or_emitted_when_nobody_listens(clock: FakeClock) -> None:
    """With no listener, no event object is constructed and emit() is never called."""
    assert _event_code_runs(lambda: _a_bit_of_everything(clock)) == []


def test_the_same_work_builds_events_when_someone_listens(clock: FakeClock) -> None:
    """The control for the test above: with a listener, the same work builds and emits."""
    with add_listener(lambda e: None):
        ran = _event_code_runs(lambda: _a_bit_of_everything(clock))
    assert ran.count("emit") == 9
    assert len(ran) == 18


# -- circuit breaker ------------------------------------------------------------------------


def test_breaker_emits_outcomes_state_changes_and_rejections(
    clock: FakeClock, events: list[Event]
) -> None:
    """A trip, a rejection, a probe and a close: each event once, in order, exact fields."""
    breaker = CircuitBreaker(name="db", max_failures=2, reset_timeout=10, clock=clock)
    breaker.call(lambda: None)
    for _ in range(2):
        with pytest.raises(ZeroDivisionError):
            breaker.call(_fail)
    clock.advance(4)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
    clock.advance(6)
    breaker.call(lambda: None)
    assert events == [
        CallRecorded("breaker", "db", "success"),
        CallRecorded("breaker", "db", "failure"),
        CallRecorded("breaker", "db", "failure"),
        CircuitStateChange("db", CLOSED, OPEN, "tripped", 0.0),
        Rejected("breaker", "db", "open", 6.0),
        CircuitStateChange("db", OPEN, HALF_OPEN, "reset_timeout_elapsed", 10.0),
        CallRecorded("breaker", "db", "success"),
        CircuitStateChange("db", HALF_OPEN, CLOSED, "probes_succeeded", 10.0),
    ]


def test_breaker_forced_open_rejects_with_its_own_reason(
    clock: FakeClock, events: list[Event]
) -> None:
    """force_open() announces the change, and its rejections say forced_open."""
    breaker = CircuitBreaker(name="db", reset_timeout=30, clock=clock)
    breaker.force_open()
    with pytest.raises(CircuitOpenError):
        breaker.admit()
    assert events == [
        CircuitStateChange("db", CLOSED, OPEN, "forced_open", 0.0),
        Rejected("breaker", "db", "forced_open", 30.0),
    ]


def test_breaker_neutral_outcomes_and_permits_are_recorded(events: list[Event]) -> None:
    """Excluded exceptions are neutral; a permit settled by hand emits its outcome once."""
    breaker = CircuitBreaker(name=None, excluded_exceptions=(KeyError,))
    with pytest.raises(KeyError):
        breaker.call(lambda: {"a": 1}["x"])
    breaker.admit().failure()
    assert events == [
        CallRecorded("breaker", None, "neutral"),
        CallRecorded("breaker", None, "failure"),
    ]


def test_breaker_per_instance_listeners_still_work(events: list[Event]) -> None:
    """on_state_change and the global registry each get the same state-change event."""
    local: list[CircuitStateChange] = []
    breaker = CircuitBreaker(name="db", on_state_change=local.append)
    breaker.force_open()
    assert local == [e for e in events if isinstance(e, CircuitStateChange)]
    assert len(local) == 1


@pytest.mark.anyio
async def test_breaker_acall_emits_like_call(events: list[Event]) -> None:
    """The async driver emits the same outcome events as the sync one."""
    breaker = CircuitBreaker(name="db")

    async def ok() -> int:
        return 1

    async def bad() -> None:
        raise ValueError

    await breaker.acall(ok)
    with pytest.raises(ValueError):
        await breaker.acall(bad)
    assert events == [
        CallRecorded("breaker", "db", "success"),
        CallRecorded("breaker", "db", "failure"),
    ]


# -- rate limiters --------------------------------------------------------------------------


def test_limiter_rejections_and_waits(clock: FakeClock, events: list[Event]) -> None:
    """try_acquire, consume and a too-short timeout reject; a blocking acquire reports its wait."""
    limiter = RateLimiter(2, burst=1, name="api", clock=clock)
    assert limiter.try_acquire() is True
    assert limiter.try_acquire() is False
    assert limiter.consume().granted is False
    with pytest.raises(RateLimitExceededError):
        limiter.acquire(timeout=0.1)
    assert limiter.acquire(blocking=False) is False
    assert limiter.acquire() is True  # sleeps 0.5 s on the fake clock
    assert events == [
        Rejected("limiter", "api", "rate_limited", 0.5),
        Rejected("limiter", "api", "rate_limited", 0.5),
        Rejected("limiter", "api", "rate_limited", 0.5),
        Rejected("limiter", "api", "rate_limited", 0.5),
        LimiterWaited("api", 0.5),
    ]
    assert limiter.stats.total_rejected == 4


def test_limiter_decorator_rejection_is_emitted_once(clock: FakeClock, events: list[Event]) -> None:
    """A non-blocking rate_limiter decorator that refuses emits one Rejected."""

    @seawall.rate_limiter(rate=1, blocking=False, name="job", clock=clock)
    def job() -> None:
        return None

    job()
    with pytest.raises(RateLimitExceededError):
        job()
    assert events == [Rejected("limiter", "job", "rate_limited", 1.0)]


@pytest.mark.anyio
async def test_limiter_async_wait_is_reported(clock: FakeClock, events: list[Event]) -> None:
    """acquire_async that has to wait emits one LimiterWaited with the exact wait."""
    limiter = RateLimiter(4, burst=1, name="api", clock=clock)
    await limiter.acquire_async()
    async with anyio.create_task_group() as tg:
        tg.start_soon(limiter.acquire_async)
        await anyio.wait_all_tasks_blocked()
        clock.advance(0.25)
    assert events == [LimiterWaited("api", 0.25)]


def test_keyed_limiter_events_carry_the_key(clock: FakeClock, events: list[Event]) -> None:
    """Keyed rejections name the key, and the reason tells a full map from an empty bucket."""
    limiter = KeyedRateLimiter(1, max_keys=1, name="per-client", clock=clock)
    assert limiter.try_acquire("a") is True
    assert limiter.try_acquire("a") is False
    assert limiter.try_acquire("b") is False
    assert limiter.consume("b").granted is False
    with pytest.raises(RateLimitExceededError):
        limiter.acquire("b", timeout=5)
    assert limiter.acquire("a") is True  # waits 1 s
    assert events == [
        Rejected("limiter", "per-client", "rate_limited", 1.0, "a"),
        Rejected("limiter", "per-client", "keys_full", 1.0, "b"),
        Rejected("limiter", "per-client", "keys_full", 1.0, "b"),
        Rejected("limiter", "per-client", "keys_full", 1.0, "b"),
        LimiterWaited("per-client", 1.0, "a"),
    ]


# -- bulkhead -------------------------------------------------------------------------------


def test_bulkhead_sync_occupancy_and_rejections(events: list[Event]) -> None:
    """Enter, a refused try_acquire and a refused acquire, exit: one event for each."""
    bulkhead = Bulkhead(1, name="pool")
    with bulkhead:
        assert bulkhead.try_acquire() is False
        with pytest.raises(BulkheadFullError):
            bulkhead.acquire()
    assert events == [
        BulkheadChanged("pool", 1, 0),
        Rejected("bulkhead", "pool", "full", 0.0),
        Rejected("bulkhead", "pool", "full", 0.0),
        BulkheadChanged("pool", 0, 0),
    ]


def test_bulkhead_uncontended_acquire_and_release(events: list[Event]) -> None:
    """A free slot taken and given back with nobody else around: one event each way."""
    bulkhead = Bulkhead(2, name="pool")
    bulkhead.acquire()
    bulkhead.release()
    assert events == [BulkheadChanged("pool", 1, 0), BulkheadChanged("pool", 0, 0)]


def test_bulkhead_full_queue_is_its_own_reason(events: list[Event]) -> None:
    """A caller willing to wait but finding the queue full is rejected with queue_full."""
    bulkhead = Bulkhead(1, max_wait=5, max_queue=0, name="pool")
    bulkhead.try_acquire()
    with pytest.raises(BulkheadFullError):
        bulkhead.acquire()
    bulkhead.release()
    assert events == [
        BulkheadChanged("pool", 1, 0),
        Rejected("bulkhead", "pool", "queue_full", 0.0),
        BulkheadChanged("pool", 0, 0),
    ]


@pytest.mark.anyio
async def test_bulkhead_async_queue_hand_over(clock: FakeClock, events: list[Event]) -> None:
    """A queued task shows as queued, takes the handed-over slot, and leaves: exact counts."""
    bulkhead = Bulkhead(1, max_wait=10, name="pool", clock=clock)
    release = anyio.Event()

    async def holder() -> None:
        async with bulkhead:
            await release.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(bulkhead.acall, anyio.sleep, 0)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert events == [
        BulkheadChanged("pool", 1, 0),
        BulkheadChanged("pool", 1, 1),
        BulkheadChanged("pool", 1, 0),
        BulkheadChanged("pool", 0, 0),
    ]


@pytest.mark.anyio
async def test_bulkhead_async_wait_timeout(clock: FakeClock, events: list[Event]) -> None:
    """A queued task that times out leaves the queue and is rejected with reason timeout."""
    bulkhead = Bulkhead(1, max_wait=2, name="pool", clock=clock)
    await bulkhead.acquire_async()

    async def refused() -> None:
        with pytest.raises(BulkheadFullError):
            await bulkhead.acquire_async()

    async with anyio.create_task_group() as tg:
        tg.start_soon(refused)
        await anyio.wait_all_tasks_blocked()
        clock.advance(2)
    assert events == [
        BulkheadChanged("pool", 1, 0),
        BulkheadChanged("pool", 1, 1),
        BulkheadChanged("pool", 1, 0),
        Rejected("bulkhead", "pool", "timeout", 0.0),
    ]


@pytest.mark.anyio
async def test_bulkhead_cancelled_waiter_leaves_the_queue(
    clock: FakeClock, events: list[Event]
) -> None:
    """A waiter cancelled in the queue emits the queue's new length, and no rejection."""
    bulkhead = Bulkhead(1, max_wait=10, name="pool", clock=clock)
    await bulkhead.acquire_async()
    async with anyio.create_task_group() as tg:
        tg.start_soon(bulkhead.acquire_async)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    assert events == [
        BulkheadChanged("pool", 1, 0),
        BulkheadChanged("pool", 1, 1),
        BulkheadChanged("pool", 1, 0),
    ]


# -- watchdog and stall detector ------------------------------------------------------------


def test_watchdog_firing_is_an_event(clock: FakeClock, events: list[Event]) -> None:
    """A watchdog that goes unpinged emits one WatchdogFired with the idle time."""
    with Watchdog(timeout=5, name="worker", clock=clock):
        clock.advance(5)
        settle(clock)
        clock.advance(50)
        settle(clock)
    assert events == [WatchdogFired("worker", 5.0, 5.0)]


@pytest.mark.anyio
async def test_loop_stall_and_recovery_are_events(clock: FakeClock, events: list[Event]) -> None:
    """A stall emits LoopStalled once when noticed and once on recovery, with the stack."""
    async with LoopStallDetector(threshold=0.2, interval=0.05, name="main loop", clock=clock):
        await anyio.wait_all_tasks_blocked()
        clock.wait_for_sleepers(2)
        clock.advance(0.2)
        settle(clock)
        await anyio.wait_all_tasks_blocked()
        settle(clock)
    stalls = [e for e in events if isinstance(e, LoopStalled)]
    assert [(e.name, e.duration, e.recovered) for e in stalls] == [
        ("main loop", 0.2, False),
        ("main loop", 0.2, True),
    ]
    assert "test_loop_stall_and_recovery_are_events" in stalls[0].stack


def test_events_from_other_threads_reach_the_listener(events: list[Event]) -> None:
    """Events raised in worker threads are delivered too, each exactly once."""
    bulkhead = Bulkhead(1, name="pool")

    def worker() -> None:
        bulkhead.try_acquire()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert events.count(BulkheadChanged("pool", 1, 0)) == 1
    assert events.count(Rejected("bulkhead", "pool", "full", 0.0)) == 3
