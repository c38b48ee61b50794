"""One suite, every store: the same events give the same decisions in memory, files and Redis.

Each scenario runs on a policy with no store (the in-process default) and on the same policy
kept in a MemoryStore, a FileStore and a RedisStore (client time, so the fake clock drives it),
and asserts the same exact answers. A hypothesis state machine then drives the three stores
with random operation sequences and compares every answer of file and Redis with memory.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from tests._redis_server import RedisServer

from seawall import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    KeyedRateLimiter,
    RateLimiter,
)
from seawall._core.breaker import BreakerConfig
from seawall.stores import (
    BreakerSpec,
    BulkheadSpec,
    FileStore,
    Hold,
    LimiterSpec,
    MemoryStore,
    RedisStore,
    Store,
)
from seawall.testing import FakeClock

KINDS = ["local", "memory", "file", "redis"]
# The async scenarios also run the Redis store with each async client ("redis": glide).
AKINDS = [*KINDS, "redis-py"]
_prefixes = itertools.count()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """One real redis-server for the module; every store gets its own key prefix."""
    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.close()


def _store(kind: str, clock: FakeClock, root: Path, redis_url: str) -> Store | None:
    if kind == "local":
        return None
    if kind == "memory":
        return MemoryStore(clock=clock)
    if kind == "file":
        return FileStore(root / f"state{next(_prefixes)}", clock=clock)
    # A generous timeout: these tests are about decisions, not about a loaded machine's latency.
    return RedisStore(
        redis_url,
        time_source="client",
        clock=clock,
        prefix=f"conf{next(_prefixes)}",
        timeout=5,
        async_client="redis-py" if kind == "redis-py" else "auto",
    )


Make = Callable[..., Any]


def _builder(store: Store | None, clock: FakeClock) -> Make:
    def build(cls: type, *args: Any, **kwargs: Any) -> Any:
        if store is not None:
            kwargs["store"] = store
        return cls(*args, clock=clock, **kwargs)

    build.store = store  # type: ignore[attr-defined]
    return build


@pytest.fixture(params=KINDS)
def make(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path, redis_url: str
) -> Iterator[Make]:
    """Build a policy class with this test's store (or none) and the fake clock."""
    store = _store(request.param, clock, tmp_path, redis_url)
    yield _builder(store, clock)
    if store is not None:
        store.close()


@pytest.fixture(params=AKINDS)
async def amake(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path, redis_url: str
) -> AsyncIterator[Make]:
    """``make`` for async tests (Redis with each async client), closed on the test's loop."""
    store = _store(request.param, clock, tmp_path, redis_url)
    yield _builder(store, clock)
    if store is not None:
        await store.aclose()
        store.close()


# -- rate limiter ----------------------------------------------------------------------------


def test_limiter_burst_refill_and_headers(make: Make, clock: FakeClock) -> None:
    """Burst 3 at 2/s: three grants, a refusal, one grant after 0.5 s, exact header values."""
    limiter = make(RateLimiter, 2, burst=3, name="l1")
    assert [limiter.try_acquire() for _ in range(4)] == [True, True, True, False]
    clock.advance(0.5)
    assert limiter.try_acquire() is True
    decision = limiter.consume()
    assert (decision.granted, decision.remaining, decision.retry_after) == (False, 0, 0.5)
    assert decision.reset_after == 1.5
    assert limiter.tokens == 0.0


def test_limiter_blocking_wait(make: Make, clock: FakeClock) -> None:
    """A blocking acquire sleeps exactly until its token; too long a wait fails at once."""
    limiter = make(RateLimiter, 4, burst=1, name="l2")
    assert limiter.acquire() is True
    assert limiter.acquire(timeout=1.0) is True
    assert clock.monotonic() == 0.25
    assert limiter.acquire(blocking=False) is False
    stats = limiter.stats
    assert (stats.total_acquired, stats.total_rejected, stats.total_waits) == (2, 1, 1)


def test_limiter_retry_after_block(make: Make, clock: FakeClock) -> None:
    """A 2 s Retry-After refuses everything, then leaves exactly one token."""
    limiter = make(RateLimiter, 10, name="l3")
    limiter.set_retry_after(2.0)
    assert limiter.try_acquire() is False
    clock.advance(1.9)
    assert limiter.try_acquire() is False
    clock.advance(0.1)
    assert [limiter.try_acquire(), limiter.try_acquire()] == [True, False]


def test_limiter_wall_jump_back(make: Make, clock: FakeClock) -> None:
    """A wall clock stepping back an hour grants nothing extra and wedges nothing."""
    limiter = make(RateLimiter, 1, burst=2, name="l4")
    assert [limiter.try_acquire(), limiter.try_acquire(), limiter.try_acquire()] == [
        True,
        True,
        False,
    ]
    clock.jump_wall(-3600)
    assert limiter.try_acquire() is False
    clock.advance(1.0)
    assert [limiter.try_acquire(), limiter.try_acquire()] == [True, False]


def test_keyed_limiter(make: Make, clock: FakeClock) -> None:
    """Each key has its own bucket of 2 at 1/s."""
    limiter = make(KeyedRateLimiter, 1, burst=2, name="k1")
    assert [limiter.try_acquire("a") for _ in range(3)] == [True, True, False]
    assert [limiter.try_acquire("b") for _ in range(3)] == [True, True, False]
    clock.advance(1.0)
    assert [limiter.try_acquire("a"), limiter.try_acquire("a")] == [True, False]
    decision = limiter.consume("b")
    assert (decision.granted, decision.remaining, decision.reset_after) == (True, 0, 2.0)


async def _until(condition: Callable[[], bool]) -> None:
    # Store calls may run in worker threads (Redis), which the loop's "all tasks blocked"
    # check counts as blocked: wait for the state itself instead. Real time only polls here;
    # the fake clock alone decides every wait.
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110 - a condition, not an event
            await anyio.sleep(0.001)


@pytest.mark.anyio
async def test_limiter_async_wait(amake: Make, clock: FakeClock) -> None:
    """acquire_async waits its slot; waiters are served in arrival order."""
    limiter = amake(RateLimiter, 2, burst=1, name="l5")
    order: list[tuple[int, float]] = []

    async def take(n: int) -> None:
        await limiter.acquire_async()
        order.append((n, clock.monotonic()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(take, 0)
        await _until(lambda: len(order) == 1)
        for n in (1, 2):
            tg.start_soon(take, n)
            await _until(lambda n=n: clock.sleepers == n)  # type: ignore[misc]
        for done in (2, 3):
            clock.advance(0.5)
            await _until(lambda done=done: len(order) == done)  # type: ignore[misc]
    assert order == [(0, 0.0), (1, 0.5), (2, 1.0)]


# -- circuit breaker -------------------------------------------------------------------------


def _boom() -> None:
    raise OSError("down")


def test_breaker_trip_probe_close(make: Make, clock: FakeClock) -> None:
    """Three failures open it; after 10 s one probe is admitted; its success closes it."""
    breaker = make(CircuitBreaker, max_failures=3, reset_timeout=10.0, name="b1")
    for _ in range(3):
        with pytest.raises(OSError):
            breaker.call(_boom)
    assert breaker.state is CircuitState.OPEN
    clock.advance(4.0)
    with pytest.raises(CircuitOpenError) as caught:
        breaker.call(lambda: 1)
    assert caught.value.retry_after == 6.0
    clock.advance(6.0)
    assert breaker.state is CircuitState.HALF_OPEN
    probe = breaker.admit()
    with pytest.raises(CircuitOpenError):
        breaker.admit()
    probe.success()
    assert breaker.state is CircuitState.CLOSED
    stats = breaker.stats
    assert (stats.successful_calls, stats.failed_calls, stats.rejected_calls) == (1, 3, 2)
    assert stats.state_changes == 3


def test_breaker_failed_probe_reopens(make: Make, clock: FakeClock) -> None:
    """A failed probe opens the breaker for another full reset_timeout."""
    breaker = make(CircuitBreaker, max_failures=1, reset_timeout=5.0, name="b2")
    with pytest.raises(OSError):
        breaker.call(_boom)
    clock.advance(5.0)
    with pytest.raises(OSError):
        breaker.call(_boom)
    with pytest.raises(CircuitOpenError) as caught:
        breaker.call(lambda: 1)
    assert caught.value.retry_after == 5.0


def test_breaker_late_failure_is_ignored(make: Make, clock: FakeClock) -> None:
    """A call admitted before the breaker opened cannot extend the open period."""
    breaker = make(CircuitBreaker, max_failures=1, reset_timeout=5.0, name="b3")
    early = breaker.admit()
    with pytest.raises(OSError):
        breaker.call(_boom)
    clock.advance(4.0)
    early.failure()
    clock.advance(1.0)
    assert breaker.state is CircuitState.HALF_OPEN


def test_breaker_failure_count_is_kept_while_open(make: Make, clock: FakeClock) -> None:
    """failure_count keeps the trip count while open, is 0 half-open and 1 after a failed probe."""
    breaker = make(CircuitBreaker, max_failures=3, reset_timeout=5.0, name="b6")
    for _ in range(3):
        with pytest.raises(OSError):
            breaker.call(_boom)
    assert (breaker.state, breaker.failure_count) == (CircuitState.OPEN, 3)
    assert breaker.stats.failure_count == 3
    clock.advance(5.0)
    assert breaker.call(lambda: 1) == 1
    assert (breaker.state, breaker.failure_count) == (CircuitState.CLOSED, 0)
    for _ in range(3):
        with pytest.raises(OSError):
            breaker.call(_boom)
    clock.advance(5.0)
    with pytest.raises(OSError):
        breaker.call(_boom)
    assert (breaker.state, breaker.failure_count) == (CircuitState.OPEN, 1)


def test_breaker_success_resets_failures(make: Make) -> None:
    """A success between failures resets the consecutive count."""
    breaker = make(CircuitBreaker, max_failures=2, name="b4")
    for _ in range(3):
        with pytest.raises(OSError):
            breaker.call(_boom)
        if breaker.state is CircuitState.OPEN:
            break
        assert breaker.call(lambda: 1) == 1
    assert (breaker.state, breaker.failure_count) == (CircuitState.CLOSED, 0)


@pytest.mark.anyio
async def test_breaker_async(amake: Make, clock: FakeClock) -> None:
    """acall counts failures and rejects once open, on every store."""
    breaker = amake(CircuitBreaker, max_failures=2, reset_timeout=1.0, name="b5")

    async def fail() -> None:
        raise OSError("down")

    for _ in range(2):
        with pytest.raises(OSError):
            await breaker.acall(fail)
    with pytest.raises(CircuitOpenError):
        await breaker.acall(anyio.sleep, 0)
    clock.advance(1.0)
    assert await breaker.acall(anyio.sleep, 0) is None
    assert breaker.state is CircuitState.CLOSED


# -- bulkhead --------------------------------------------------------------------------------


def test_bulkhead_slots(make: Make) -> None:
    """Two slots: two holders, a refusal, and a slot again after a release."""
    bulkhead = make(Bulkhead, 2, name="h1")
    assert [bulkhead.try_acquire(), bulkhead.try_acquire(), bulkhead.try_acquire()] == [
        True,
        True,
        False,
    ]
    bulkhead.release()
    assert bulkhead.try_acquire() is True
    with pytest.raises(BulkheadFullError):
        bulkhead.call(lambda: 1)
    bulkhead.release()
    bulkhead.release()
    assert bulkhead.call(lambda: 5) == 5
    assert bulkhead.stats.in_flight == 0


@pytest.mark.anyio
async def test_bulkhead_async(amake: Make) -> None:
    """async with holds one slot and gives it back."""
    bulkhead = amake(Bulkhead, 1, name="h2")
    async with bulkhead:
        assert bulkhead.stats.in_flight == 1
        assert bulkhead.try_acquire() is False
    assert bulkhead.stats.in_flight == 0


def test_bulkhead_long_hold_stays_held(make: Make, clock: FakeClock) -> None:
    """A slot held for 12 s (past its 5 s lease) is still held and counted, then comes back."""
    bulkhead = make(Bulkhead, 1, name="h3")
    assert bulkhead.try_acquire() is True
    renewer = isinstance(make.store, RedisStore)  # type: ignore[attr-defined]
    for _ in range(12):
        if renewer:
            clock.wait_for_sleepers(1)  # the lease renewer waits (it has run, if it was due)
        clock.advance(1.0)
        if renewer:
            clock.wait_for_sleepers(1)
        assert bulkhead.try_acquire() is False
        assert bulkhead.stats.in_flight == 1
    bulkhead.release()
    assert bulkhead.try_acquire() is True
    bulkhead.release()


# -- stores against memory, by hypothesis ---------------------------------------------------

_LIMITER = LimiterSpec("hyp-limiter", interval=0.25, burst=3.0)
_KEYED = LimiterSpec("hyp-keyed", interval=0.5, burst=2.0, keyed=True)
_BREAKER = BreakerSpec(
    "hyp-breaker",
    BreakerConfig(
        max_failures=2,
        reset_timeout=1.0,
        half_open_max_calls=2,
        success_threshold=2,
        stale_attempt_timeout=1.5,
        failure_rate_threshold=None,
        slow_call_duration=None,
        slow_call_rate_threshold=None,
        window_size=100,
        minimum_calls=100,
    ),
)
# A time window (four 0.5 s buckets) with both rates: every store keeps it exactly as memory.
_WINDOWED = BreakerSpec(
    "hyp-windowed",
    BreakerConfig(
        max_failures=100,
        reset_timeout=1.0,
        half_open_max_calls=1,
        success_threshold=1,
        stale_attempt_timeout=1.5,
        failure_rate_threshold=0.5,
        slow_call_duration=0.25,
        slow_call_rate_threshold=0.75,
        window_size=100,
        minimum_calls=3,
        window_duration=2.0,
        window_buckets=4,
    ),
)
_BULKHEAD = BulkheadSpec("hyp-bulkhead", max_concurrent=2, lease=60.0)


class StoresAgree(RuleBasedStateMachine):
    """Memory, file and Redis stores given the same operations give the same answers."""

    redis_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(wall=1_800_000_000.0)
        self.root = Path(tempfile.mkdtemp(prefix="seawall-conformance-"))
        self.stores: list[Store] = [
            MemoryStore(clock=self.clock),
            FileStore(self.root / "state", clock=self.clock),
            RedisStore(
                self.redis_url,
                time_source="client",
                clock=self.clock,
                timeout=5.0,
                prefix=f"hyp{next(_prefixes)}",
            ),
        ]
        self.tickets: dict[str | None, list[float]] = {}
        self.breaker_tickets: list[tuple[int, int]] = []
        self.windowed_tickets: list[tuple[int, int]] = [(0, 0)]
        self.holds: list[list[Hold]] = []

    def _all(self, op: Callable[[Store], Any]) -> Any:
        answers = [op(store) for store in self.stores]
        assert answers[1] == answers[0], "file store differs from memory"
        assert answers[2] == answers[0], "redis store differs from memory"
        return answers[0]

    @rule(dt=st.sampled_from([0.0, 0.05, 0.25, 0.4, 1.0, 1.7]))
    def advance(self, dt: float) -> None:
        self.clock.advance(dt)

    @rule(back=st.sampled_from([0.3, 5.0]))
    def jump_back(self, back: float) -> None:
        self.clock.jump_wall(-back)

    @rule(
        key=st.sampled_from([None, "a", "b"]),
        tokens=st.integers(1, 2),
        max_wait=st.sampled_from([0.0, 0.3, 2.0]),
    )
    def reserve(self, key: str | None, tokens: int, max_wait: float) -> None:
        spec = _LIMITER if key is None else _KEYED
        answer = self._all(lambda s: tuple(s.reserve(spec, key, tokens, max_wait)))
        if answer[0] <= max_wait:
            self.tickets.setdefault(key, []).append(answer[1])

    @precondition(lambda self: any(self.tickets.values()))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from([k for k, v in self.tickets.items() if v]))
        ticket = data.draw(st.sampled_from(self.tickets[key]))
        spec = _LIMITER if key is None else _KEYED
        self._all(lambda s: s.cancel(spec, key, ticket, 1))

    @rule(seconds=st.sampled_from([0.5, 2.0, 7200.0]))
    def block(self, seconds: float) -> None:
        self._all(lambda s: s.block(_LIMITER, None, seconds))

    @rule(key=st.sampled_from([None, "a"]))
    def peek(self, key: str | None) -> None:
        spec = _LIMITER if key is None else _KEYED
        self._all(lambda s: s.peek(spec, key))

    @rule()
    def admit(self) -> None:
        decision, _transition = self._all(lambda s: s.admit(_BREAKER))
        if isinstance(decision, tuple):
            self.breaker_tickets.append(decision)

    @precondition(lambda self: self.breaker_tickets)
    @rule(data=st.data(), outcome=st.sampled_from([0, 1, 2]))
    def record(self, data: st.DataObject, outcome: int) -> None:
        ticket = data.draw(st.sampled_from(self.breaker_tickets))
        self._all(lambda s: s.record(_BREAKER, ticket, outcome, 0.0))

    @rule(action=st.sampled_from(["open", "closed", "reset"]))
    def force(self, action: str) -> None:
        self._all(lambda s: s.force(_BREAKER, action))

    @rule()
    def admit_windowed(self) -> None:
        decision, _transition = self._all(lambda s: s.admit(_WINDOWED))
        if isinstance(decision, tuple):
            self.windowed_tickets.append(decision)

    @rule(
        data=st.data(),
        outcome=st.sampled_from([0, 0, 1, 2]),
        duration=st.sampled_from([0.0, 0.25, 1.0]),
    )
    def record_windowed(self, data: st.DataObject, outcome: int, duration: float) -> None:
        ticket = data.draw(st.sampled_from(self.windowed_tickets[-3:]))
        self._all(lambda s: s.record(_WINDOWED, ticket, outcome, duration))

    @rule(action=st.sampled_from(["open", "reset"]))
    def force_windowed(self, action: str) -> None:
        self._all(lambda s: s.force(_WINDOWED, action))

    @rule()
    def try_hold(self) -> None:
        holds = [store.try_hold(_BULKHEAD) for store in self.stores]
        assert [h is None for h in holds[1:]] == [holds[0] is None] * 2
        if holds[0] is not None:
            self.holds.append(holds)  # type: ignore[arg-type]

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        holds = self.holds.pop(data.draw(st.integers(0, len(self.holds) - 1)))
        for hold in holds:
            hold.release()

    @invariant()
    def views_agree(self) -> None:
        self._all(lambda s: s.view(_BREAKER))
        self._all(lambda s: s.view(_WINDOWED))
        self._all(lambda s: s.holders(_BULKHEAD))

    def teardown(self) -> None:
        for holds in self.holds:
            for hold in holds:
                hold.release()
        for store in self.stores:
            store.close()
        shutil.rmtree(self.root, ignore_errors=True)


def test_stores_agree_with_memory(redis_url: str) -> None:
    """Random sequences of limiter, breaker and bulkhead operations agree across stores."""
    StoresAgree.redis_url = redis_url
    runner = StoresAgree.TestCase()
    runner.settings = settings(
        max_examples=60,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    runner.runTest()


def test_status_is_the_same_in_every_store(tmp_path: Path, redis_url: str) -> None:
    """After the same operations, status() reports the same rows and values in every store."""
    clock = FakeClock(wall=1_800_000_000.0)
    stores = [_store(kind, clock, tmp_path, redis_url) for kind in ("memory", "file", "redis")]
    reports = []
    for store in stores:
        assert store is not None
        store.reserve(_LIMITER, None, 2, 0.0)
        store.reserve(_KEYED, "client-1", 1, 0.0)
        store.block(_LIMITER, None, 2.0)
        ticket, _ = store.admit(_BREAKER)
        assert isinstance(ticket, tuple)
        store.record(_BREAKER, ticket, 1, 0.0)
        hold = store.try_hold(_BULKHEAD)
        reports.append(store.status())
        assert hold is not None
        hold.release()
        store.close()
    assert reports[1] == reports[0]
    assert reports[2] == reports[0]
    assert [(p.kind, p.name, p.key) for p in reports[0]] == [
        ("breaker", "hyp-breaker", None),
        ("bulkhead", "hyp-bulkhead", None),
        ("limiter", "hyp-keyed", "client-1"),
        ("limiter", "hyp-limiter", None),
    ]
    # A 2 s block leaves one token at its end: full 2 * 0.25 s later, so -7 tokens now.
    assert reports[0][3].state == {"tokens": -7.0, "full_in": 2.5, "blocked_for": 2.0}
