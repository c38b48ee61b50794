"""RedisStore against a real redis-server: every operation, keys, expiry, scripts, time."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterator

import pytest

from _redis_server import RedisServer
from seawall._core.breaker import (
    CLOSED,
    FAILURE,
    HALF_OPEN,
    NEUTRAL,
    OPEN,
    SUCCESS,
    BreakerConfig,
    Transition,
)
from seawall.stores._base import (
    BreakerSpec,
    BreakerView,
    BulkheadSpec,
    LimiterSpec,
    PolicyStatus,
    Reservation,
    StoreUnavailableError,
)
from seawall.stores._redis.keys import policy_key
from seawall.stores._redis.scripts import _source
from seawall.stores._redis.store import RedisStore
from seawall.testing import FakeClock

pytestmark = pytest.mark.slow

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """One redis-server for the module (tests use unique policy names)."""
    srv = RedisServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def wall() -> FakeClock:
    """A fake clock whose wall time starts at a whole second."""
    return FakeClock(wall=T0)


@pytest.fixture
def store(server: RedisServer, wall: FakeClock) -> Iterator[RedisStore]:
    """A client-time store driven by the fake clock, with its own key prefix."""
    s = RedisStore(
        server.url, time_source="client", clock=wall, timeout=5.0, prefix=f"t{uuid.uuid4().hex}"
    )
    try:
        yield s
    finally:
        s.close()


def _name() -> str:
    return f"p-{uuid.uuid4().hex}"


def _cfg(max_failures: int = 2, reset_timeout: float = 10.0, half_open: int = 1) -> BreakerConfig:
    return BreakerConfig(max_failures, reset_timeout, half_open, 1, 4.0, None, None, None, 10, 10)


# -- limiter ---------------------------------------------------------------------------------


def test_reserve_grants_the_burst_then_reports_the_wait(store: RedisStore) -> None:
    """A burst-2 bucket at one token per 0.5 s grants two, then says wait 0.5 s."""
    spec = LimiterSpec(_name(), 0.5, 2.0)
    assert store.reserve(spec, None, 1, 0.0) == Reservation(0.0, T0 + 0.5, 1, 0.5)
    assert store.reserve(spec, None, 1, 0.0) == Reservation(0.0, T0 + 1.0, 0, 1.0)
    assert store.reserve(spec, None, 1, 0.0) == Reservation(0.5, T0 + 1.0, 0, 1.0)


def test_reserve_within_max_wait_commits_and_cancel_gives_it_back(store: RedisStore) -> None:
    """A waiting reservation commits, its own ticket cancels it, a stale ticket does not."""
    spec = LimiterSpec(_name(), 0.5, 1.0)
    first = store.reserve(spec, "k", 1, 0.0)
    second = store.reserve(spec, "k", 1, 1.0)
    assert second == Reservation(0.5, T0 + 1.0, -1 + 1, 1.0)
    assert store.cancel(spec, "k", first.ticket, 1) is False
    assert store.cancel(spec, "k", second.ticket, 1) is True
    assert store.peek(spec, "k") == (0.0, 0.5)


def test_block_refuses_then_resumes_with_one_token(store: RedisStore, wall: FakeClock) -> None:
    """A 2 s block refuses, only extends, is capped by max_block, and ends with one token."""
    spec = LimiterSpec(_name(), 1.0, 5.0, max_block=3.0)
    assert store.block(spec, None, 2.0) is True
    assert store.block(spec, None, 1.0) is False
    assert store.reserve(spec, None, 1, 0.0).wait == 2.0
    assert store.block(spec, None, 60.0) is True
    wall.jump_wall(3.0)
    assert store.peek(spec, None) == (1.0, 4.0)


def test_block_rejects_a_negative_duration(store: RedisStore) -> None:
    """block() with seconds=-1 raises ValueError naming the parameter."""
    with pytest.raises(ValueError, match="seconds"):
        store.block(LimiterSpec(_name(), 1.0, 1.0), None, -1.0)


def test_peek_of_an_unknown_bucket_is_full_and_creates_nothing(
    store: RedisStore, server: RedisServer
) -> None:
    """peek() on a new key answers (burst, 0) and writes no key."""
    spec = LimiterSpec(_name(), 1.0, 3.0)
    assert store.peek(spec, "nobody") == (3.0, 0.0)
    assert store.status() == []


def test_clock_going_back_grants_nothing(store: RedisStore, wall: FakeClock) -> None:
    """After the wall clock jumps back 100 s, an empty bucket still waits its 1 s."""
    spec = LimiterSpec(_name(), 1.0, 1.0)
    store.reserve(spec, None, 1, 0.0)
    wall.jump_wall(-100.0)
    assert store.reserve(spec, None, 1, 0.0).wait == 1.0


# -- breaker ---------------------------------------------------------------------------------


def test_breaker_trips_rejects_probes_once_and_closes(store: RedisStore, wall: FakeClock) -> None:
    """Two failures open it; it rejects for 10 s; then one probe; its success closes it."""
    spec = BreakerSpec(_name(), _cfg())
    ticket, _ = store.admit(spec)
    assert ticket == (0, 0)
    assert store.record(spec, (0, 0), FAILURE, 0.0) is None
    assert store.record(spec, (0, 0), FAILURE, 0.0) == Transition(CLOSED, OPEN, "tripped", T0)
    wall.jump_wall(4.0)
    assert store.admit(spec) == (6.0, None)
    wall.jump_wall(6.0)
    probe, moved = store.admit(spec)
    assert (probe, moved) == ((2, 1), Transition(OPEN, HALF_OPEN, "reset_timeout_elapsed", T0 + 10))
    assert store.admit(spec) == (4.0, None)
    closed = store.record(spec, (2, 1), SUCCESS, 0.0)
    assert closed == Transition(HALF_OPEN, CLOSED, "probes_succeeded", T0 + 10)
    assert store.view(spec) == BreakerView("closed", 0, T0, 0, 1, 2, 2, 3)


def test_stale_probe_loses_its_slot_exactly_at_the_timeout(
    store: RedisStore, wall: FakeClock
) -> None:
    """A probe exactly 4 s (stale_attempt_timeout) old loses its slot; its report is ignored."""
    spec = BreakerSpec(_name(), _cfg(max_failures=1, reset_timeout=1.0))
    store.record(spec, (0, 0), FAILURE, 0.0)
    wall.jump_wall(1.0)
    assert store.admit(spec)[0] == (2, 1)
    wall.jump_wall(3.5)
    assert store.admit(spec) == (0.5, None)
    wall.jump_wall(0.5)
    assert store.admit(spec) == ((2, 2), None)
    assert store.record(spec, (2, 1), FAILURE, 0.0) is None
    assert store.view(spec).state == "half_open"


def test_old_generation_outcomes_and_neutral_are_ignored(store: RedisStore) -> None:
    """A failure with a ticket from before a reset, and a neutral outcome, change no state."""
    spec = BreakerSpec(_name(), _cfg(max_failures=1))
    assert store.force(spec, "reset") is None
    assert store.record(spec, (0, 0), FAILURE, 0.0) is None
    assert store.record(spec, (1, 0), NEUTRAL, 0.0) is None
    assert store.view(spec) == BreakerView("closed", 0, 0.0, 0, 0, 1, 0, 0)


def test_force_open_isolates_and_force_closed_disables_tripping(store: RedisStore) -> None:
    """force('open') rejects for reset_timeout forever; force('closed') never trips."""
    spec = BreakerSpec(_name(), _cfg(max_failures=1))
    assert store.force(spec, "open") == Transition(CLOSED, OPEN, "forced_open", T0)
    assert store.admit(spec) == (10.0, None)
    assert store.force(spec, "closed") == Transition(OPEN, CLOSED, "reset", T0)
    assert store.record(spec, (2, 0), FAILURE, 0.0) is None
    assert store.view(spec).state == "closed"
    with pytest.raises(ValueError, match="action"):
        store.force(spec, "half")
    with pytest.raises(ValueError, match="outcome"):
        store.record(spec, (2, 0), 7, 0.0)


def test_windowed_breaker_keeps_its_window_in_the_hash(store: RedisStore) -> None:
    """A 50% rate over a count window of 4: the flags, failures and the trip live in Redis."""
    cfg = BreakerConfig(100, 1.0, 1, 1, 1.0, 0.5, None, None, 4, 4)
    spec = BreakerSpec(_name(), cfg)
    for outcome in (FAILURE, SUCCESS, SUCCESS):
        assert store.record(spec, (0, 0), outcome, 0.0) is None
    key = policy_key(store._prefix, spec.name, "breaker")
    raw = store._call(lambda c: c.hmget(key, "w", "wf", "ws", "bk"))
    assert [v.decode() for v in raw] == ["100", "1", "0", ""]
    transition = store.record(spec, (0, 0), FAILURE, 0.0)
    assert transition is not None
    assert (transition.new.name, store.view(spec).state) == ("OPEN", "open")
    assert store._call(lambda c: c.hmget(key, "w", "bk")) == [None, None]


# -- bulkhead --------------------------------------------------------------------------------


def test_holds_up_to_max_and_release_frees_a_slot(store: RedisStore) -> None:
    """Two slots: two holds (slots 0 and 1), a third is refused, a release lets one in."""
    spec = BulkheadSpec(_name(), 2, lease=30.0)
    a, b = store.try_hold(spec), store.try_hold(spec)
    assert a is not None
    assert b is not None
    assert (a.slot, b.slot) == (0, 1)
    assert store.try_hold(spec) is None
    assert store.holders(spec) == 2
    a.release()
    a.release()
    assert store.holders(spec) == 1
    c = store.try_hold(spec)
    assert c is not None
    assert c.slot == 0


def test_a_lease_ends_exactly_after_its_length(store: RedisStore, wall: FakeClock) -> None:
    """A 5 s lease still counts at 4.5 s and no longer at 5 s, so a new holder gets in."""
    spec = BulkheadSpec(_name(), 1, lease=5.0)
    assert store.try_hold(spec) is not None
    wall.jump_wall(4.5)
    assert (store.holders(spec), store.try_hold(spec)) == (1, None)
    wall.jump_wall(0.5)
    assert store.holders(spec) == 0
    assert store.try_hold(spec) is not None


# -- keys, expiry, scripts -------------------------------------------------------------------


def _mixed_ops(store: RedisStore, name: str) -> None:
    lim = LimiterSpec(name, 0.5, 2.0, keyed=True)
    for key in ("a", "b{x}*:?[", None):
        r = store.reserve(lim, key, 1, 1.0)
        store.cancel(lim, key, r.ticket, 1)
        store.block(lim, key, 1.0)
        store.peek(lim, key)
    brk = BreakerSpec(name, _cfg(max_failures=1))
    store.record(brk, (0, 0), FAILURE, 0.0)
    store.admit(brk)
    store.view(brk)
    hold = store.try_hold(BulkheadSpec(name, 2, lease=2.0))
    assert hold is not None


def test_every_key_written_has_an_expiry_and_one_hash_tag(
    store: RedisStore, server: RedisServer
) -> None:
    """After a mix of operations every key has PTTL > 0, and all share the policy's tag."""
    name = _name()
    _mixed_ops(store, name)
    with server.client() as c:
        every = [k.decode() for k in c.scan_iter(match=f"{store._prefix}:*")]
        keys = [k for k in every if ":r:" not in k]  # the records; the rest are receipts
        assert len(keys) == 5
        assert all(c.pttl(k) > 0 for k in every)
    tags = {k.split("{")[1].split("}")[0] for k in every}
    assert len(tags) == 1
    assert len(keys[0].split("{")) == 2
    assert all(name not in k and "x}" not in k for k in keys)


def test_user_keys_with_glob_and_brace_characters_are_harmless(store: RedisStore) -> None:
    """Keys '{', '*', ':' get their own buckets, status shows them raw, reset removes 5."""
    name = _name()
    _mixed_ops(store, name)
    found = store.status()
    assert [(p.kind, p.key) for p in found] == [
        ("breaker", None),
        ("bulkhead", None),
        ("limiter", None),
        ("limiter", "a"),
        ("limiter", "b{x}*:?["),
    ]
    assert found[1].state == {"held": 1, "slots": 2}
    assert found[0].state["state"] == "open"
    assert store.reset("*") == 0
    assert store.reset(name) == 5
    assert store.status() == []


def test_scripts_print_numbers_as_percent_17g_does(server: RedisServer) -> None:
    """The scripts' fmt prints each number exactly as '%.17g' (whole ones through '%d' too)."""
    values = [0.0, -0.0, 1.0, -1.0, 7.0, 0.1, 1 / 3, -2.5, 1_700_000_000.0, 1_700_000_000.125]
    values += [2.0**31 - 1, -(2.0**31 - 1), 2.0**31, -(2.0**31), 1e15, 2.0**53, 1e17, -1e20]
    values += [1e300, -1e-300]
    values += [math.inf, -math.inf]
    text = _source("_common") + (
        "\nlocal out = {} for i = 1, #ARGV do out[i] = fmt(tonumber(ARGV[i])) end return out"
    )
    with server.client() as c:
        printed = [x.decode() for x in c.eval(text, 0, *map(repr, values))]
    assert printed == [format(x, ".17g") for x in values]


def test_noscript_after_script_flush_reloads_once(store: RedisStore, server: RedisServer) -> None:
    """After SCRIPT FLUSH the next decision is one EVAL, and later ones are EVALSHA again."""
    spec = LimiterSpec(_name(), 1.0, 5.0)
    store.reserve(spec, None, 1, 0.0)
    with server.client() as c:
        c.script_flush()
        c.config_resetstat()
        assert [store.reserve(spec, None, 1, 0.0).remaining for _ in range(3)] == [3, 2, 1]
        stats = c.info("commandstats")
    assert stats["cmdstat_eval"]["calls"] == 1
    assert stats["cmdstat_evalsha"]["calls"] == 3  # the first one answered NOSCRIPT


def test_unreadable_record_is_reset_with_one_warning(
    store: RedisStore, server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A bucket whose full_at is garbage resets to empty (safe) and logs one warning."""
    spec = LimiterSpec(_name(), 1.0, 2.0)
    store.reserve(spec, None, 1, 0.0)
    [key] = [k for k in _keys(server, store) if ":limiter:" in k]
    with server.client() as c:
        c.hset(key, "fa", "garbage")
    with caplog.at_level(logging.WARNING, logger="seawall.stores"):
        assert store.reserve(spec, None, 1, 0.0) == Reservation(1.0, T0 + 2.0, 0, 2.0)
    assert [r.getMessage().endswith("record was reset") for r in caplog.records] == [True]


def _keys(server: RedisServer, store: RedisStore) -> list[str]:
    with server.client() as c:
        # Policy records only: a reservation's receipt (``...:r:<holder>``) is no record.
        keys = [k.decode() for k in c.scan_iter(match=f"{store._prefix}:*")]
        return [k for k in keys if ":r:" not in k]


def test_server_time_ignores_a_client_clock_ten_seconds_off(server: RedisServer) -> None:
    """Two server-time stores, one with a clock 10 s behind, share one burst of 4 exactly."""
    prefix = f"t{uuid.uuid4().hex}"
    late = FakeClock(wall=T0 - 10.0)
    a = RedisStore(server.url, prefix=prefix, timeout=5.0)
    b = RedisStore(server.url, prefix=prefix, timeout=5.0, clock=late)
    spec = LimiterSpec(_name(), 1000.0, 4.0)
    grants = [s.reserve(spec, None, 1, 0.0).wait == 0.0 for s in (a, b, a, b, a, b, b, b)]
    assert grants == [True] * 4 + [False] * 4
    a.close()
    b.close()


# -- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://localhost", "redis://", "redis://host:99999", "redis+cluster://h:1/3", "memory://"],
)
def test_bad_urls_are_refused_by_name(url: str) -> None:
    """Each malformed or foreign URL raises ValueError quoting it."""
    with pytest.raises(ValueError, match="url"):
        RedisStore(url)


def test_bad_options_are_refused_by_name() -> None:
    """timeout, time_source and prefix are checked and named."""
    with pytest.raises(ValueError, match="timeout"):
        RedisStore("redis://h", timeout=0.0)
    with pytest.raises(ValueError, match="time_source"):
        RedisStore("redis://h", time_source="local")
    with pytest.raises(ValueError, match="prefix"):
        RedisStore("redis://h", prefix="a*b")


def test_constructor_does_no_io_and_repr_hides_the_password() -> None:
    """A store for an unreachable host builds at once; its repr shows no password."""
    s = RedisStore("rediss://user:secret@127.0.0.1:1/2")
    assert repr(s) == "RedisStore('rediss://user:***@127.0.0.1:1/2', time_source='server')"
    with pytest.raises(StoreUnavailableError):
        s.peek(LimiterSpec("x", 1.0, 1.0), None)


def test_single_node_cluster_runs_every_kind() -> None:
    """Through redis+cluster:// a limiter, a breaker, a bulkhead and status all work."""
    srv = RedisServer(cluster=True)
    srv.start()
    try:
        s = RedisStore(srv.url, timeout=5.0)
        name = _name()
        assert s.reserve(LimiterSpec(name, 1.0, 2.0), "k", 1, 0.0).remaining == 1
        assert s.admit(BreakerSpec(name, _cfg())) == ((0, 0), None)
        assert s.try_hold(BulkheadSpec(name, 1)) is not None
        assert [p.kind for p in s.status()] == ["breaker", "bulkhead", "limiter"]
        assert s.reset(name) == 3
        s.close()
    finally:
        srv.close()


# -- async -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_operations_match_the_sync_ones(store: RedisStore) -> None:
    """Every async method answers like its sync twin, on asyncio and trio."""
    name = _name()
    lim = LimiterSpec(name, 0.5, 1.0)
    r = await store.areserve(lim, None, 1, 0.0)
    assert r == Reservation(0.0, T0 + 0.5, 0, 0.5)
    assert await store.acancel(lim, None, r.ticket, 1) is True
    assert await store.ablock(lim, None, 1.0) is True
    brk = BreakerSpec(name, _cfg(max_failures=1))
    assert await store.aadmit(brk) == ((0, 0), None)
    assert await store.arecord(brk, (0, 0), FAILURE, 0.0) == Transition(CLOSED, OPEN, "tripped", T0)
    spec = BulkheadSpec(name, 1)
    hold = await store.atry_hold(spec)
    assert hold is not None
    assert await store.atry_hold(spec) is None
    await hold.arelease()
    assert store.holders(spec) == 0
    assert [p.kind for p in store.status()] == ["breaker", "bulkhead", "limiter"]
    assert isinstance(store.status()[0], PolicyStatus)
    await store.aclose()  # the asyncio client belongs to this test's loop
    await store.aclose()
    assert math.isclose(store.peek(lim, None)[0], -1.0)
