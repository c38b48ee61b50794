"""Policies kept in a store: shared state by name, and degraded mode when the store fails."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import pytest
from tests._flaky_store import FlakyStore

from seawall import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    KeyedRateLimiter,
    RateLimiter,
    RateLimitExceededError,
)
from seawall.stores import MemoryStore, open_store
from seawall.testing import FakeClock


def _boom() -> None:
    raise OSError("dependency down")


def _fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(OSError):
            breaker.call(_boom)


# -- construction --------------------------------------------------------------------------


def test_store_needs_a_name() -> None:
    """A policy kept in a store without a name is refused, naming the parameter."""
    with pytest.raises(ValueError, match=r"needs name="):
        RateLimiter(5, store=MemoryStore())
    with pytest.raises(ValueError, match=r"needs name="):
        CircuitBreaker(store=MemoryStore())
    with pytest.raises(ValueError, match=r"needs name="):
        Bulkhead(2, store=MemoryStore())


def test_bad_degraded_mode() -> None:
    """An unknown degraded mode is refused with its value."""
    with pytest.raises(ValueError, match=r"degraded must be one of .* got 'open'"):
        RateLimiter(5, name="x", store=MemoryStore(), degraded="open")


def test_bad_store_url() -> None:
    """An unknown URL scheme is refused, naming the URL and the supported schemes."""
    with pytest.raises(ValueError, match=r"unsupported store URL 'mysql://x'.*file://"):
        open_store("mysql://x")
    with pytest.raises(ValueError, match=r"absolute local directory"):
        open_store("file://relative/dir")


def test_memory_url_keeps_the_in_process_policy() -> None:
    """store='memory://' is the default: the plain in-process class, no store round trips."""
    assert type(RateLimiter(5, store="memory://")) is RateLimiter
    assert type(CircuitBreaker(store="memory://")) is CircuitBreaker
    assert type(Bulkhead(2, store="memory://")) is Bulkhead


def test_window_breaker_refused_by_a_store_without_windows() -> None:
    """A failure-rate breaker on a store that keeps only consecutive counts fails at build."""

    class NoWindows(MemoryStore):
        supports_breaker_windows = False

    with pytest.raises(ValueError, match=r"consecutive-failure breakers only"):
        CircuitBreaker(name="w", store=NoWindows(), failure_rate_threshold=0.5)


def test_unportable_key_refused(clock: FakeClock) -> None:
    """A per-key limiter in a store refuses keys with no identity outside the process."""
    limiter = KeyedRateLimiter(5, name="k", store=MemoryStore(clock=clock), clock=clock)
    with pytest.raises(TypeError, match=r"key must be a str, int, bytes or a tuple"):
        limiter.try_acquire(object())


# -- shared by name --------------------------------------------------------------------------


def test_limiters_share_a_bucket(clock: FakeClock) -> None:
    """Two limiters with one name in one store draw from one bucket of 3."""
    store = MemoryStore(clock=clock)
    a = RateLimiter(2, burst=3, name="api", store=store, clock=clock)
    b = RateLimiter(2, burst=3, name="api", store=store, clock=clock)
    assert [a.try_acquire(), b.try_acquire(), a.try_acquire(), b.try_acquire()] == [
        True,
        True,
        True,
        False,
    ]
    clock.advance(0.5)
    decision = b.consume()
    assert (decision.granted, decision.remaining, decision.reset_after) == (True, 0, 1.5)
    assert (a.stats.total_acquired, b.stats.total_acquired, b.stats.total_rejected) == (2, 2, 1)


def test_keyed_limiters_share_per_key(clock: FakeClock) -> None:
    """Per-key buckets are shared per key; the int 5 and the string '5' are different keys."""
    store = MemoryStore(clock=clock)
    a = KeyedRateLimiter(1, name="k", store=store, clock=clock)
    b = KeyedRateLimiter(1, name="k", store=store, clock=clock)
    assert [a.try_acquire("5"), b.try_acquire("5"), b.try_acquire(5)] == [True, False, True]
    assert b.tokens("5") == 0.0
    assert a.tokens("other") == 1.0


def test_blocking_acquire_waits_for_the_shared_slot(clock: FakeClock) -> None:
    """acquire() sleeps exactly the wait the store reserved, then holds the token."""
    store = MemoryStore(clock=clock)
    limiter = RateLimiter(4, burst=1, name="w", store=store, clock=clock)
    assert limiter.acquire() is True
    assert limiter.acquire(timeout=1.0) is True
    assert clock.monotonic() == 0.25
    with pytest.raises(RateLimitExceededError) as caught:
        limiter.acquire(timeout=0.1)
    assert caught.value.retry_after == 0.25
    assert limiter.acquire(blocking=False) is False


def test_retry_after_blocks_every_sharer(clock: FakeClock) -> None:
    """set_retry_after on one limiter blocks the other, then leaves exactly one token."""
    store = MemoryStore(clock=clock)
    a = RateLimiter(10, name="up", store=store, clock=clock)
    b = RateLimiter(10, name="up", store=store, clock=clock)
    a.set_retry_after(2.0)
    assert b.try_acquire() is False
    clock.advance(2.0)
    assert [b.try_acquire(), b.try_acquire()] == [True, False]


def test_reset_refills_for_every_sharer(clock: FakeClock) -> None:
    """reset() empties the store's record, so every sharer sees a full bucket."""
    store = MemoryStore(clock=clock)
    a = RateLimiter(1, burst=2, name="r", store=store, clock=clock)
    b = RateLimiter(1, burst=2, name="r", store=store, clock=clock)
    assert [a.try_acquire(), a.try_acquire(), b.try_acquire()] == [True, True, False]
    a.reset()
    assert b.tokens == 2.0


def test_wall_clock_jump_back_grants_nothing(clock: FakeClock) -> None:
    """A wall clock stepping back an hour neither refills nor wedges the shared bucket."""
    store = MemoryStore(clock=clock)
    limiter = RateLimiter(1, burst=2, name="j", store=store, clock=clock)
    assert [limiter.try_acquire(), limiter.try_acquire()] == [True, True]
    clock.jump_wall(-3600)
    assert limiter.try_acquire() is False
    clock.advance(1.0)
    assert [limiter.try_acquire(), limiter.try_acquire()] == [True, False]


def test_breaker_opened_by_one_rejects_in_the_other(clock: FakeClock) -> None:
    """Failures through one breaker open it for its sharer; one probe is admitted in total."""
    store = MemoryStore(clock=clock)
    a = CircuitBreaker(max_failures=2, reset_timeout=10, name="db", store=store, clock=clock)
    b = CircuitBreaker(max_failures=2, reset_timeout=10, name="db", store=store, clock=clock)
    _fail(a, 2)
    assert b.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as caught:
        b.call(lambda: 1)
    assert caught.value.retry_after == 10.0
    clock.advance(10)
    probe = a.admit()
    with pytest.raises(CircuitOpenError):
        b.admit()
    probe.success()
    assert b.state is CircuitState.CLOSED
    stats = b.stats
    assert (stats.successful_calls, stats.failed_calls, stats.rejected_calls) == (1, 2, 2)
    assert stats.state_changes == 3


def test_breaker_manual_control_is_shared(clock: FakeClock) -> None:
    """force_open on one breaker isolates the other; reset() closes both."""
    store = MemoryStore(clock=clock)
    a = CircuitBreaker(name="m", store=store, clock=clock)
    b = CircuitBreaker(name="m", store=store, clock=clock)
    a.force_open()
    clock.advance(3600)
    with pytest.raises(CircuitOpenError):
        b.call(lambda: 1)
    b.reset()
    assert (a.state, b.call(lambda: 7)) == (CircuitState.CLOSED, 7)


def test_bulkheads_share_slots(clock: FakeClock) -> None:
    """Two bulkheads with one name hold at most max_concurrent slots between them."""
    store = MemoryStore(clock=clock)
    a = Bulkhead(2, name="pool", store=store, clock=clock)
    b = Bulkhead(2, name="pool", store=store, clock=clock)
    assert [a.try_acquire(), b.try_acquire(), b.try_acquire()] == [True, True, False]
    assert a.stats.in_flight == 2
    a.release()
    assert b.try_acquire() is True
    with pytest.raises(BulkheadFullError):
        a.acquire(timeout=0.2)
    assert clock.monotonic() == pytest.approx(0.2)
    with pytest.raises(RuntimeError, match=r"release\(\) without a held slot"):
        a.release()


# -- degraded mode ---------------------------------------------------------------------------


def test_degraded_local_decides_with_the_local_bucket(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """While the store is down the local bucket decides, counted, logged once per episode."""
    store = FlakyStore(clock=clock)
    limiter = RateLimiter(1, burst=2, name="d", store=store, clock=clock)
    assert limiter.try_acquire() is True  # shared bucket: 1 left
    store.down = True
    with caplog.at_level(logging.INFO, logger="seawall.stores"):
        assert [limiter.try_acquire() for _ in range(3)] == [True, True, False]
        assert limiter.stats.degraded_decisions == 3
        store.down = False
        clock.advance(0.1)  # the first backoff
        assert limiter.try_acquire() is True  # shared again: its last token
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert len(messages) == 2
    assert messages[0][0] == "WARNING"
    assert "unavailable" in messages[0][1]
    assert messages[1] == (
        "INFO",
        "rate limiter 'd': store memory:// answers again; 3 decisions were made with "
        "degraded='local'",
    )


def test_backoff_skips_a_dead_store(clock: FakeClock) -> None:
    """After a failure the store is not asked again until the backoff (0.1 s) has passed."""
    store = FlakyStore(clock=clock)
    store.down = True
    limiter = RateLimiter(100, name="b", store=store, clock=clock, degraded="allow")
    assert [limiter.try_acquire() for _ in range(5)] == [True] * 5
    assert store.calls == 1
    clock.advance(0.1)
    limiter.try_acquire()
    assert store.calls == 2


@pytest.mark.parametrize(("mode", "granted"), [("allow", True), ("deny", False)])
def test_degraded_allow_and_deny(clock: FakeClock, mode: str, granted: bool) -> None:
    """allow admits and deny refuses every limiter call while the store is down."""
    store = FlakyStore(clock=clock)
    store.down = True
    limiter = RateLimiter(1, burst=1, name="ad", store=store, clock=clock, degraded=mode)
    assert [limiter.try_acquire() for _ in range(3)] == [granted] * 3
    assert limiter.consume().granted is granted
    if granted:
        assert limiter.acquire(timeout=1.0) is True
    else:
        with pytest.raises(RateLimitExceededError, match=r"degraded='deny'"):
            limiter.acquire(timeout=1.0)
    assert limiter.stats.degraded_decisions == 5


def test_breaker_degraded_modes(clock: FakeClock) -> None:
    """A breaker whose store is down falls back to local state, or allows, or denies."""
    local_store, allow_store, deny_store = (FlakyStore(clock=clock) for _ in range(3))
    local = CircuitBreaker(max_failures=1, name="l", store=local_store, clock=clock)
    allow = CircuitBreaker(name="a", store=allow_store, clock=clock, degraded="allow")
    deny = CircuitBreaker(name="d", store=deny_store, clock=clock, degraded="deny")
    for store in (local_store, allow_store, deny_store):
        store.down = True
    _fail(local, 1)
    with pytest.raises(CircuitOpenError):
        local.call(lambda: 1)  # the local state opened
    assert allow.call(lambda: 2) == 2
    with pytest.raises(CircuitOpenError) as caught:
        deny.call(lambda: 3)
    assert caught.value.retry_after == 1.0
    assert (local.degraded_decisions, allow.degraded_decisions, deny.degraded_decisions) == (
        2,
        1,
        1,
    )
    assert local.state is CircuitState.OPEN  # read from the local fallback


def test_bulkhead_degraded_local(clock: FakeClock) -> None:
    """A bulkhead whose store is down lends local slots and takes them back on release."""
    store = FlakyStore(clock=clock)
    bulkhead = Bulkhead(1, name="bd", store=store, clock=clock)
    store.down = True
    assert [bulkhead.try_acquire(), bulkhead.try_acquire()] == [True, False]
    bulkhead.release()
    assert bulkhead.try_acquire() is True
    bulkhead.release()
    assert bulkhead.degraded_decisions == 3


# -- async ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_acquire_waits_and_cancel_gives_back(clock: FakeClock) -> None:
    """acquire_async sleeps its reserved wait; a cancelled waiter's tokens come back."""
    store = MemoryStore(clock=clock)
    limiter = RateLimiter(2, burst=1, name="aw", store=store, clock=clock)
    assert await limiter.acquire_async() is True
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(limiter.acquire_async)
            await anyio.wait_all_tasks_blocked()
            assert limiter.tokens == -1.0
            scope.cancel()
    assert limiter.tokens == 0.0
    async with anyio.create_task_group() as tg:
        tg.start_soon(limiter.acquire_async)
        await anyio.wait_all_tasks_blocked()
        clock.advance(0.5)
    assert limiter.stats.total_waits == 1


@pytest.mark.anyio
async def test_async_breaker_and_bulkhead(clock: FakeClock) -> None:
    """acall and async with go through the store's async operations."""
    store = MemoryStore(clock=clock)
    breaker = CircuitBreaker(max_failures=1, name="ab", store=store, clock=clock)

    async def fail() -> None:
        raise OSError("down")

    with pytest.raises(OSError):
        await breaker.acall(fail)
    with pytest.raises(CircuitOpenError):
        await breaker.acall(anyio.sleep, 0)
    bulkhead = Bulkhead(1, name="abh", store=store, clock=clock)
    async with bulkhead:
        assert bulkhead.stats.in_flight == 1
        with pytest.raises(BulkheadFullError):
            await bulkhead.acquire_async()
    assert await bulkhead.acall(anyio.sleep, 0) is None
    assert bulkhead.stats.in_flight == 0


@pytest.mark.anyio
async def test_async_degraded_local(clock: FakeClock) -> None:
    """aconsume falls back to the local bucket while the store is down."""
    store = FlakyStore(clock=clock)
    limiter = KeyedRateLimiter(1, name="ak", store=store, clock=clock)
    store.down = True
    assert [(await limiter.aconsume("c")).granted for _ in range(2)] == [True, False]
    assert limiter.stats.degraded_decisions == 2


def test_degraded_episode_events(clock: FakeClock) -> None:
    """An episode emits StoreDegraded on and off, and one DegradedDecision per decision."""
    from seawall import add_listener
    from seawall.events import DegradedDecision, StoreDegraded

    seen: list[object] = []
    store = FlakyStore(clock=clock)
    limiter = RateLimiter(10, name="ev", store=store, clock=clock)
    with add_listener(seen.append):
        store.down = True
        limiter.try_acquire()
        limiter.try_acquire()
        store.down = False
        clock.advance(0.1)
        limiter.try_acquire()
    store_events = [e for e in seen if isinstance(e, StoreDegraded | DegradedDecision)]
    assert store_events == [
        StoreDegraded("limiter", "ev", "memory://", "local", True),
        DegradedDecision("limiter", "ev", "local"),
        DegradedDecision("limiter", "ev", "local"),
        StoreDegraded("limiter", "ev", "memory://", "local", False, 2),
    ]


def test_configured_store_applies_to_named_policies(tmp_path: Path, clock: FakeClock) -> None:
    """store.url and store.degraded from seawall.config apply to named policies only."""
    from seawall import config
    from seawall._limiter.shared import SharedRateLimiter

    url = (tmp_path / "state").as_uri()
    previous = config.current()
    config.configure(env={"SEAWALL_STORE__URL": url, "SEAWALL_STORE__DEGRADED": "deny"})
    try:
        named = RateLimiter(5, name="cfg", clock=clock)
        unnamed = RateLimiter(5, clock=clock)
        assert type(named) is SharedRateLimiter
        assert (named.store.url, named._link.guard.mode) == (url, "deny")
        assert type(unnamed) is RateLimiter
        assert CircuitBreaker(name="cfg-b", store="memory://").__class__ is CircuitBreaker
    finally:
        config.configure(previous)


def test_configured_breaker_defaults(clock: FakeClock) -> None:
    """circuit_breaker.* settings are the defaults; a constructor argument still wins."""
    from seawall import config

    previous = config.current()
    config.configure(env={"SEAWALL_CIRCUIT_BREAKER__MAX_FAILURES": "2"})
    try:
        configured = CircuitBreaker(clock=clock)
        explicit = CircuitBreaker(max_failures=4, clock=clock)
        _fail(configured, 2)
        _fail(explicit, 2)
        assert (configured.state, explicit.state) == (CircuitState.OPEN, CircuitState.CLOSED)
    finally:
        config.configure(previous)


def test_misconfigured_store_fails_loudly(tmp_path: Path, clock: FakeClock) -> None:
    """A store refusing its setup (a world-writable directory) raises; it never degrades."""
    from seawall import StoreError
    from seawall.stores import FileStore, StoreUnavailableError

    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    limiter = RateLimiter(5, name="loud", store=FileStore(state, clock=clock), clock=clock)
    with pytest.raises(StoreError) as caught:
        limiter.try_acquire()
    assert not isinstance(caught.value, StoreUnavailableError)
    assert limiter.stats.degraded_decisions == 0


@pytest.mark.anyio
async def test_permit_async_settle(clock: FakeClock) -> None:
    """aadmit and asettle report through the store; a second settle is refused."""
    store = MemoryStore(clock=clock)
    breaker = CircuitBreaker(max_failures=1, name="ap", store=store, clock=clock)
    permit = await breaker.aadmit()
    await permit.asettle(OSError("down"))
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(RuntimeError, match="already settled"):
        await permit.asuccess()
    with pytest.raises(CircuitOpenError):
        await breaker.aadmit()


@pytest.mark.anyio
async def test_two_apps_share_limits_through_the_middleware(clock: FakeClock) -> None:
    """Two middleware instances on one store (as two workers) share each client's bucket."""
    import httpx
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from seawall.asgi import ResilienceMiddleware

    async def hello(request: object) -> PlainTextResponse:
        return PlainTextResponse("hi")

    store = MemoryStore(clock=clock)
    apps = [
        ResilienceMiddleware(
            Starlette(routes=[Route("/", hello)]),
            rate_limit="3/minute",
            max_concurrent=4,
            breaker=True,
            store=store,
            clock=clock,
        )
        for _ in range(2)
    ]
    statuses = []
    for i in range(5):
        transport = httpx.ASGITransport(app=apps[i % 2])
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            statuses.append((await client.get("/")).status_code)
    assert statuses == [200, 200, 200, 429, 429]
    names = sorted({p.name for p in store.status()})
    assert names == ["asgi:breaker", "asgi:bulkhead", "asgi:default#1:3/60s"]


def test_store_backed_policies_emit_events(clock: FakeClock) -> None:
    """Rejections and breaker outcomes on the store path reach listeners like in memory."""
    from seawall import add_listener
    from seawall.events import CallRecorded, Rejected

    store = MemoryStore(clock=clock)
    limiter = RateLimiter(1, burst=1, name="el", store=store, clock=clock)
    breaker = CircuitBreaker(max_failures=1, name="eb", store=store, clock=clock)
    bulkhead = Bulkhead(1, name="eh", store=store, clock=clock)
    seen: list[object] = []
    with add_listener(seen.append):
        limiter.try_acquire()
        limiter.try_acquire()
        _fail(breaker, 1)
        with pytest.raises(CircuitOpenError):
            breaker.call(lambda: 1)
        bulkhead.try_acquire()
        bulkhead.try_acquire()
    kinds = [
        (type(e).__name__, e.policy, e.name) for e in seen if isinstance(e, Rejected | CallRecorded)
    ]
    assert kinds == [
        ("Rejected", "limiter", "el"),
        ("CallRecorded", "breaker", "eb"),
        ("Rejected", "breaker", "eb"),
        ("Rejected", "bulkhead", "eh"),
    ]
