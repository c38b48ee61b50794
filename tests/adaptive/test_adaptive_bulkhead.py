"""AdaptiveBulkhead: the limit follows the samples, priorities shed in order, every path frees."""

from __future__ import annotations

import threading

import anyio
import anyio.lowlevel
import pytest

import seawall
from seawall import (
    AdaptiveBulkhead,
    AdaptiveBulkheadStats,
    AIMDLimit,
    BulkheadFullError,
    Gradient2Limit,
    VegasLimit,
)
from seawall.events import AdaptiveBulkheadChanged, Event, Rejected
from seawall.testing import FakeClock


def _aimd(initial: int = 4, **options: object) -> AdaptiveBulkhead:
    """An AIMD bulkhead whose every call is one window (exact, easy to follow)."""
    rule = AIMDLimit(initial_limit=initial, min_limit=1, max_limit=50)
    return AdaptiveBulkhead(rule, window=0.0, window_samples=1, **options)  # type: ignore[arg-type]


def test_default_rule_is_gradient2_at_twenty() -> None:
    """AdaptiveBulkhead() starts Gradient2 at its initial limit 20."""
    bulkhead = AdaptiveBulkhead()
    assert isinstance(bulkhead.algorithm, Gradient2Limit)
    assert bulkhead.limit == 20


@pytest.mark.parametrize(("name", "cls"), [("vegas", VegasLimit), ("aimd", AIMDLimit)])
def test_rule_by_name(name: str, cls: type) -> None:
    """'vegas' and 'aimd' pick those rules with their defaults."""
    assert isinstance(AdaptiveBulkhead(name).algorithm, cls)


def test_admits_up_to_the_limit_then_sheds() -> None:
    """With limit 4, four default calls get permits and the fifth is shed (None)."""
    bulkhead = _aimd(4)
    permits = [bulkhead.try_acquire() for _ in range(4)]
    assert all(p is not None for p in permits)
    assert bulkhead.try_acquire() is None
    assert bulkhead.stats == AdaptiveBulkheadStats(
        limit=4,
        in_flight=4,
        rtt=0.0,
        total_admitted=4,
        shed_sheddable=0,
        shed_default=1,
        shed_critical=0,
    )


def test_priorities_shed_in_order() -> None:
    """Limit 4: sheddable stops at 3 in flight, default at 4, critical at 5."""
    bulkhead = _aimd(4)
    assert [bulkhead.try_acquire("sheddable") is not None for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    assert bulkhead.try_acquire("default") is not None
    assert bulkhead.try_acquire("default") is None
    assert bulkhead.try_acquire("critical") is not None
    assert bulkhead.try_acquire("critical") is None
    stats = bulkhead.stats
    assert (stats.in_flight, stats.shed_sheddable, stats.shed_default, stats.shed_critical) == (
        5,
        1,
        1,
        1,
    )


def test_success_samples_grow_the_limit_when_half_is_in_flight(clock: FakeClock) -> None:
    """AIMD 4: a call that started 1st of 4 leaves the limit, one that started 2nd grows it to 5."""
    bulkhead = _aimd(4, clock=clock)
    first, second = bulkhead.acquire(), bulkhead.acquire()
    clock.advance(0.1)
    first.success()
    assert bulkhead.limit == 4
    second.success()
    assert bulkhead.limit == 5
    assert bulkhead.stats.rtt == pytest.approx(0.1)


def test_drop_shrinks_the_limit() -> None:
    """A dropped call takes AIMD's limit from 10 to int(10 * 0.9) = 9."""
    bulkhead = _aimd(10)
    bulkhead.acquire().drop()
    assert bulkhead.limit == 9


def test_ignored_call_is_no_sample() -> None:
    """ignore() frees the slot and leaves the limit at 4."""
    bulkhead = _aimd(4)
    permit = bulkhead.acquire()
    permit.ignore()
    assert (bulkhead.limit, bulkhead.in_flight) == (4, 0)


def test_permit_settles_once() -> None:
    """A second settlement does nothing: drop() then success() leaves 3 and 0 in flight."""
    bulkhead = _aimd(4)
    permit = bulkhead.acquire()
    permit.drop()
    permit.success()
    assert (bulkhead.limit, bulkhead.in_flight) == (3, 0)


def test_latency_is_measured_on_the_clock(clock: FakeClock) -> None:
    """Gradient2 in one-call windows: the window rtt is exactly the 0.25 s the clock moved."""
    bulkhead = AdaptiveBulkhead(window=0.0, window_samples=1, clock=clock)
    permit = bulkhead.acquire()
    clock.advance(0.25)
    permit.success()
    assert bulkhead.stats.rtt == 0.25
    assert bulkhead.algorithm.long_rtt == 0.25  # type: ignore[attr-defined]


def test_window_gathers_calls_before_the_rule_sees_them(clock: FakeClock) -> None:
    """Default window (1 s, 10 calls): nine calls leave AIMD alone, the tenth after 1 s moves it."""
    bulkhead = AdaptiveBulkhead(AIMDLimit(initial_limit=4), clock=clock)
    for _ in range(9):
        bulkhead.acquire().success()
    assert bulkhead.limit == 4
    clock.advance(1.0)
    bulkhead.acquire().drop()
    assert bulkhead.limit == 3  # the window dropped: int(4 * 0.9)


def test_shed_error_names_priority_and_carries_the_latency(clock: FakeClock) -> None:
    """acquire() past the ceiling raises BulkheadFullError with retry_after = last window rtt."""
    bulkhead = _aimd(1, clock=clock, name="api")
    permit = bulkhead.acquire()
    clock.advance(0.5)
    permit.success()  # rtt 0.5 sampled; AIMD 1 + 1 = 2
    held = [bulkhead.acquire(), bulkhead.acquire()]
    with pytest.raises(
        BulkheadFullError, match=r"'api' sheds default calls \(2 in flight, limit 2\)"
    ) as info:
        bulkhead.acquire()
    assert info.value.retry_after == 0.5
    for p in held:
        p.ignore()


def test_call_success_drop_and_ignore() -> None:
    """call(): return -> success (+1), TimeoutError -> drop (x0.9), ValueError -> no sample."""
    bulkhead = _aimd(2)

    def timeout() -> None:
        raise TimeoutError

    def broken() -> None:
        raise ValueError("no")

    assert bulkhead.call(lambda: 7) == 7
    assert bulkhead.limit == 3
    with pytest.raises(ValueError, match="no"):
        bulkhead.call(broken)
    assert bulkhead.limit == 3
    with pytest.raises(TimeoutError):
        bulkhead.call(timeout)
    assert (bulkhead.limit, bulkhead.in_flight) == (2, 0)


def test_rejection_downstream_is_a_drop() -> None:
    """A seawall rejection raised by the call (an open breaker further down) is a drop: 10 -> 9."""
    bulkhead = _aimd(10)

    def refused() -> None:
        raise seawall.CircuitOpenError("open", retry_after=1.0)

    with pytest.raises(seawall.CircuitOpenError):
        bulkhead.call(refused)
    assert bulkhead.limit == 9


@pytest.mark.anyio
async def test_acall_outcomes_on_both_backends() -> None:
    """acall(): return +1, TimeoutError x0.9, cancellation frees the slot with no sample."""
    bulkhead = _aimd(2)

    async def value() -> int:
        await anyio.lowlevel.checkpoint()
        return 7

    async def timeout() -> None:
        await anyio.lowlevel.checkpoint()
        raise TimeoutError

    assert await bulkhead.acall(value) == 7
    assert bulkhead.limit == 3
    with pytest.raises(TimeoutError):
        await bulkhead.acall(timeout)
    assert bulkhead.limit == 2
    with anyio.CancelScope() as scope:
        scope.cancel()
        await bulkhead.acall(anyio.sleep, 1)
    assert (bulkhead.limit, bulkhead.in_flight) == (2, 0)


@pytest.mark.anyio
async def test_acquire_async_sheds_at_once() -> None:
    """acquire_async past the ceiling raises BulkheadFullError without waiting."""
    bulkhead = _aimd(1)
    permit = await bulkhead.acquire_async()
    with pytest.raises(BulkheadFullError):
        await bulkhead.acquire_async()
    permit.success()
    assert bulkhead.in_flight == 0


def test_threads_never_exceed_the_ceiling() -> None:
    """8 threads x 200 tries on limit 3: the peak in flight is exactly 3, and all slots return."""
    bulkhead = AdaptiveBulkhead(AIMDLimit(initial_limit=3, min_limit=3, max_limit=3))
    lock, peak, active = threading.Lock(), [0], [0]

    def worker() -> None:
        for _ in range(200):
            permit = bulkhead.try_acquire()
            if permit is None:
                continue
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            with lock:
                active[0] -= 1
            permit.success()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peak[0] <= 3
    assert bulkhead.in_flight == 0


def test_events_report_limit_occupancy_and_sheds_by_priority() -> None:
    """Listeners see AdaptiveBulkheadChanged(limit, in_flight) and Rejected(reason=shed_<p>)."""
    bulkhead = _aimd(1, name="api")
    seen: list[Event] = []
    with seawall.add_listener(seen.append):
        permit = bulkhead.acquire()
        bulkhead.try_acquire("sheddable")
        permit.success()
    assert seen == [
        AdaptiveBulkheadChanged("api", 1, 1),
        Rejected("bulkhead", "api", "shed_sheddable", 0.0),
        AdaptiveBulkheadChanged("api", 2, 0),
    ]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"limit": "cubic"}, ValueError, r"limit must be one of \['aimd', 'gradient2', 'vegas'\]"),
        ({"limit": 5}, TypeError, "limit must be 'gradient2', 'vegas', 'aimd' or a"),
        ({"sheddable_share": 0}, ValueError, r"sheddable_share must be in \(0, 1\], got 0"),
        ({"critical_share": 0.5}, ValueError, r"critical_share must be in \[1, 10\], got 0.5"),
        ({"window": -1.0}, ValueError, r"window must be in \[0, inf\), got -1.0"),
        ({"name": 3}, TypeError, "name must be a str or None, got 3"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    """Each bad argument raises naming the parameter and the value."""
    with pytest.raises(error, match=message):
        AdaptiveBulkhead(**kwargs)  # type: ignore[arg-type]


def test_unknown_priority_is_named() -> None:
    """try_acquire('urgent') raises ValueError listing the priorities."""
    with pytest.raises(
        ValueError,
        match=r"priority must be one of \('sheddable', 'default', 'critical'\), got 'urgent'",
    ):
        AdaptiveBulkhead().try_acquire("urgent")
