"""FileStore: every operation on a temporary directory, on a fake clock."""

from __future__ import annotations

import gc
import math
from pathlib import Path

import pytest

from _fds import no_collection, open_fds
from _procs.file_store_common import KEYED, LIMITER, POOL, breaker
from seawall._core.breaker import FAILURE, SUCCESS, CircuitState, Transition
from seawall.stores._base import BulkheadSpec, LimiterSpec, PolicyStatus, Reservation
from seawall.stores._file.store import FileStore
from seawall.stores._file.table import GROUP_SLOTS, KEYED_GROUPS, key_digest
from seawall.testing import FakeClock

WALL = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> FileStore:
    """A file store in a fresh directory on the fake clock."""
    return FileStore(tmp_path / "state", clock=clock)


# -- construction -----------------------------------------------------------------------------


def test_constructor_does_no_io_and_builds_the_url(tmp_path: Path) -> None:
    """The URL names the absolute directory and nothing is created before the first call."""
    s = FileStore(tmp_path / "state")
    assert s.url == f"file://{tmp_path}/state"
    assert s.timeout == 0.1
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"path": ""}, ValueError, "path"),
        ({"path": 3}, TypeError, "path"),
        ({"path": "x", "timeout": -1}, ValueError, "timeout"),
        ({"path": "x", "timeout": math.nan}, ValueError, "timeout"),
        ({"path": "x", "timeout": "1"}, TypeError, "timeout"),
    ],
)
def test_bad_arguments_are_refused_by_name(
    kwargs: dict[str, object], error: type, text: str
) -> None:
    """A bad path or timeout raises an error naming the parameter."""
    with pytest.raises(error, match=text):
        FileStore(**kwargs)  # type: ignore[arg-type]


# -- rate limiter -----------------------------------------------------------------------------


def test_reserve_takes_the_burst_then_refuses(store: FileStore, clock: FakeClock) -> None:
    """Two tokens are granted at once, the third is refused with the exact wait, uncommitted."""
    assert store.reserve(LIMITER, None, 1, 0.0) == Reservation(0.0, WALL + 0.5, 1, 0.5)
    assert store.reserve(LIMITER, None, 1, 0.0) == Reservation(0.0, WALL + 1.0, 0, 1.0)
    assert store.reserve(LIMITER, None, 1, 0.0) == Reservation(0.5, WALL + 1.0, 0, 1.0)
    clock.advance(0.5)
    assert store.reserve(LIMITER, None, 1, 0.0) == Reservation(0.0, WALL + 1.5, 0, 1.0)


def test_reserve_within_max_wait_commits_a_future_slot(store: FileStore) -> None:
    """A wait within max_wait is committed: the next caller queues behind it."""
    store.reserve(LIMITER, None, 2, 0.0)
    assert store.reserve(LIMITER, None, 1, 1.0) == Reservation(0.5, WALL + 1.5, 0, 1.5)
    assert store.reserve(LIMITER, None, 1, 0.0).wait == 1.0


def test_cancel_gives_back_only_the_latest_reservation(store: FileStore) -> None:
    """Cancelling the latest ticket refunds it; an older ticket is refused."""
    first = store.reserve(LIMITER, None, 1, 0.0)
    second = store.reserve(LIMITER, None, 1, 0.0)
    assert store.cancel(LIMITER, None, first.ticket, 1) is False
    assert store.cancel(LIMITER, None, second.ticket, 1) is True
    assert store.peek(LIMITER, None) == (1.0, 0.5)


def test_block_refuses_everything_until_it_ends(store: FileStore, clock: FakeClock) -> None:
    """A 5 s block makes the next token wait 5 s, then one token is there."""
    assert store.block(LIMITER, None, 5.0) is True
    assert store.block(LIMITER, None, 1.0) is False
    assert store.reserve(LIMITER, None, 1, 0.0).wait == 5.0
    clock.advance(5.0)
    assert store.reserve(LIMITER, None, 1, 0.0).wait == 0.0
    assert store.peek(LIMITER, None) == (0.0, 1.0)


def test_block_is_capped_at_max_block(store: FileStore) -> None:
    """A block longer than the spec's max_block lasts max_block."""
    spec = LimiterSpec("short", 0.5, 2.0, max_block=3.0)
    assert store.block(spec, None, 100.0) is True
    assert store.reserve(spec, None, 1, 0.0).wait == 3.0


def test_block_rejects_a_negative_duration(store: FileStore) -> None:
    """A negative block duration raises ValueError naming seconds."""
    with pytest.raises(ValueError, match="seconds"):
        store.block(LIMITER, None, -1.0)


def test_peek_of_an_unknown_key_is_a_full_bucket_and_writes_nothing(store: FileStore) -> None:
    """Peeking a key nobody used reports a full bucket and leaves no record."""
    assert store.peek(KEYED, "nobody") == (2.0, 0.0)
    assert store.status() == []


def test_keys_have_separate_buckets(store: FileStore) -> None:
    """Spending one key's burst leaves another key's bucket full."""
    store.reserve(KEYED, "a", 2, 0.0)
    assert store.reserve(KEYED, "a", 1, 0.0).wait == 0.5
    assert store.reserve(KEYED, "b", 1, 0.0) == Reservation(0.0, WALL + 0.5, 1, 0.5)


def test_five_thousand_keys_each_get_their_own_bucket(store: FileStore) -> None:
    """5,000 keys are all granted, all refused when spent, and all listed by status."""
    keys = [f"client-{i}" for i in range(5000)]
    assert all(store.reserve(KEYED, k, 2, 0.0).wait == 0.0 for k in keys)
    assert sum(store.reserve(KEYED, k, 1, 0.0).wait == 0.5 for k in keys) == 5000
    listed = store.status()
    assert len(listed) == 5000
    assert sorted(p.key or "" for p in listed) == sorted(keys)


def _colliding_keys(count: int) -> list[str]:
    """``count`` keys whose digests pick group 0 of a keyed table."""
    found: list[str] = []
    i = 0
    while len(found) < count:
        key = f"k{i}"
        if int.from_bytes(key_digest(key)[:8], "little") % KEYED_GROUPS == 0:
            found.append(key)
        i += 1
    return found


def test_a_full_group_refuses_a_new_key_until_a_slot_is_idle(
    store: FileStore, clock: FakeClock
) -> None:
    """With every slot of its group carrying quota a new key is refused, uncommitted."""
    *holders, newcomer = _colliding_keys(GROUP_SLOTS + 1)
    for key in holders:
        assert store.reserve(KEYED, key, 2, 0.0).wait == 0.0
    refused = store.reserve(KEYED, newcomer, 1, 0.0)
    assert refused.wait == 1.0  # every holder's bucket is full again 1 s after its take
    assert math.isnan(refused.ticket)
    assert (refused.remaining, refused.reset_after) == (0, 1.0)
    assert len(store.status()) == GROUP_SLOTS
    clock.advance(1.0)
    assert store.reserve(KEYED, newcomer, 1, 0.0).wait == 0.0  # an idle slot is reused
    listed = [p.key for p in store.status()]
    assert len(listed) == GROUP_SLOTS
    assert newcomer in listed


def test_a_full_group_refuses_a_patient_caller_too(store: FileStore) -> None:
    """A refused new key's wait is just above max_wait, so it never reads as committed."""
    *holders, newcomer = _colliding_keys(GROUP_SLOTS + 1)
    for key in holders:
        store.reserve(KEYED, key, 2, 0.0)
    refused = store.reserve(KEYED, newcomer, 1, 5.0)
    assert refused.wait == math.nextafter(5.0, math.inf)
    assert store.reserve(KEYED, newcomer, 1, 0.0).wait == 1.0  # nothing was committed


# -- circuit breaker --------------------------------------------------------------------------


def test_breaker_trips_waits_probes_and_closes(store: FileStore, clock: FakeClock) -> None:
    """Two failures open it, it refuses for 10 s, then one probe's success closes it."""
    spec = breaker()
    ticket, moved = store.admit(spec)
    assert (ticket, moved) == ((0, 0), None)
    assert store.record(spec, (0, 0), FAILURE, 0.0) is None
    tripped = store.record(spec, (0, 0), FAILURE, 0.0)
    assert tripped == Transition(CircuitState.CLOSED, CircuitState.OPEN, "tripped", WALL)
    assert store.admit(spec) == (10.0, None)
    clock.advance(10.0)
    probe, half = store.admit(spec)
    assert probe == (2, 1)
    assert half == Transition(
        CircuitState.OPEN, CircuitState.HALF_OPEN, "reset_timeout_elapsed", WALL + 10.0
    )
    assert store.admit(spec) == (30.0, None)  # the one probe slot is taken
    closed = store.record(spec, (2, 1), SUCCESS, 0.0)
    assert closed == Transition(
        CircuitState.HALF_OPEN, CircuitState.CLOSED, "probes_succeeded", WALL + 10.0
    )
    view = store.view(spec)
    assert (view.state, view.successful_calls, view.failed_calls) == ("closed", 1, 2)
    assert (view.rejected_calls, view.state_changes) == (2, 3)


def test_breaker_failure_rate_window_is_kept_in_the_record(store: FileStore) -> None:
    """A 50 % failure-rate window trips on the fourth call, across separate store objects."""
    spec = breaker(max_failures=100, failure_rate_threshold=0.5)
    for outcome in (FAILURE, SUCCESS, FAILURE):
        assert store.record(spec, (0, 0), outcome, 0.0) is None
    other = FileStore(store.path, clock=FakeClock())
    moved = other.record(spec, (0, 0), SUCCESS, 0.0)
    assert moved is not None
    assert moved.reason == "tripped"


def test_breaker_force_open_closed_and_reset(store: FileStore, clock: FakeClock) -> None:
    """force open isolates past reset_timeout, reset closes, closed disables tripping."""
    spec = breaker()
    forced = store.force(spec, "open")
    assert forced == Transition(CircuitState.CLOSED, CircuitState.OPEN, "forced_open", WALL)
    clock.advance(100.0)
    assert store.admit(spec) == (10.0, None)
    assert store.force(spec, "reset") is not None
    assert store.view(spec).state == "closed"
    assert store.force(spec, "closed") is None
    for _ in range(5):
        store.record(spec, store.admit(spec)[0], FAILURE, 0.0)  # type: ignore[arg-type]
    assert store.view(spec).state == "closed"
    with pytest.raises(ValueError, match="action"):
        store.force(spec, "ajar")


def test_a_stale_ticket_cannot_reopen_a_closed_breaker(store: FileStore, clock: FakeClock) -> None:
    """An outcome from an older generation is counted but changes no state."""
    spec = breaker()
    store.record(spec, (0, 0), FAILURE, 0.0)
    store.record(spec, (0, 0), FAILURE, 0.0)
    clock.advance(10.0)
    store.admit(spec)
    store.record(spec, (2, 1), SUCCESS, 0.0)
    assert store.record(spec, (0, 0), FAILURE, 0.0) is None
    assert store.view(spec).failure_count == 0


# -- bulkhead ---------------------------------------------------------------------------------


def test_holds_are_bounded_and_released_once(store: FileStore) -> None:
    """Two holds succeed, a third is refused, and a double release frees one slot."""
    first, second = store.try_hold(POOL), store.try_hold(POOL)
    assert first is not None
    assert second is not None
    assert {first.slot, second.slot} == {0, 1}
    assert store.try_hold(POOL) is None
    assert store.holders(POOL) == 2
    first.release()
    first.release()
    assert store.holders(POOL) == 1
    third = store.try_hold(POOL)
    assert third is not None
    assert third.slot == first.slot
    assert store.try_hold(POOL) is None


def test_two_store_objects_share_the_slots(store: FileStore) -> None:
    """A second FileStore on the same directory sees the first one's holds."""
    other = FileStore(store.path)
    held = [store.try_hold(POOL), store.try_hold(POOL)]
    assert other.try_hold(POOL) is None
    assert other.holders(POOL) == 2
    for h in held:
        assert h is not None
        h.release()
    assert other.holders(POOL) == 0


def test_a_larger_max_concurrent_only_adds_slots(store: FileStore) -> None:
    """A process configured with 3 slots shares slots 0-1 with one configured with 2."""
    wide = BulkheadSpec("pool", 3)
    a, b = store.try_hold(POOL), store.try_hold(POOL)
    c = store.try_hold(wide)
    assert c is not None
    assert c.slot == 2
    assert store.try_hold(wide) is None
    assert (store.holders(POOL), store.holders(wide)) == (2, 3)
    for h in (a, b, c):
        assert h is not None
        h.release()


# -- administration ---------------------------------------------------------------------------


def test_status_lists_every_policy_and_key_sorted(store: FileStore, clock: FakeClock) -> None:
    """status reports each kind with its state, sorted by kind, name and key."""
    store.reserve(KEYED, "b", 1, 0.0)
    store.reserve(KEYED, "a", 2, 0.0)
    store.block(LIMITER, None, 3.0)
    store.record(breaker(), (0, 0), FAILURE, 0.0)
    hold = store.try_hold(POOL)
    assert store.status() == [
        PolicyStatus(
            "breaker",
            "db",
            None,
            {
                "state": "closed",
                "failure_count": 1,
                "probes": 0,
                "successful_calls": 0,
                "failed_calls": 1,
                "rejected_calls": 0,
                "state_changes": 0,
            },
        ),
        PolicyStatus("bulkhead", "pool", None, {"held": 1, "slots": 2}),
        PolicyStatus(
            "limiter",
            "api",
            None,
            {
                "tokens": -5.0,
                "full_in": 3.5,
                "blocked_for": 3.0,
            },
        ),
        PolicyStatus(
            "limiter",
            "per-client",
            "a",
            {
                "tokens": 0.0,
                "full_in": 1.0,
                "blocked_for": 0.0,
            },
        ),
        PolicyStatus(
            "limiter",
            "per-client",
            "b",
            {
                "tokens": 1.0,
                "full_in": 0.5,
                "blocked_for": 0.0,
            },
        ),
    ]
    assert hold is not None
    hold.release()


def test_reset_forgets_a_policy_and_counts_its_records(store: FileStore) -> None:
    """reset removes every key of a limiter (count 2) and leaves other policies alone."""
    store.reserve(KEYED, "a", 2, 0.0)
    store.reserve(KEYED, "b", 2, 0.0)
    store.reserve(LIMITER, None, 2, 0.0)
    assert store.reset("per-client") == 2
    assert store.reset("per-client") == 0
    assert store.reset("never-seen") == 0
    assert store.reserve(KEYED, "a", 2, 0.0).wait == 0.0
    assert [p.name for p in store.status()] == ["api", "per-client"]


def test_reset_of_a_breaker_and_a_bulkhead(store: FileStore) -> None:
    """A reset breaker is closed again; a reset bulkhead drops out of status, holds intact."""
    spec = breaker()
    store.force(spec, "open")
    hold = store.try_hold(POOL)
    assert store.reset("db") == 1
    assert store.reset("pool") == 1
    assert store.status() == []
    assert store.view(spec).state == "closed"
    assert store.holders(POOL) == 1
    assert hold is not None
    hold.release()


def test_close_releases_descriptors_and_the_store_reopens(store: FileStore) -> None:
    """close drops every descriptor; the next call opens them again."""
    store.reserve(LIMITER, None, 1, 0.0)
    with no_collection():
        before = open_fds()
        store.close()
        assert open_fds() < before
    store.close()
    assert store.reserve(LIMITER, None, 1, 0.0).remaining == 0


def test_a_store_dropped_without_close_gives_its_descriptors_back(tmp_path: Path) -> None:
    """Once a used FileStore is collected, the process holds just the descriptors it held before."""
    with no_collection():
        before = open_fds()
        dropped = FileStore(tmp_path / "state", clock=FakeClock(wall=WALL))
        dropped.reserve(LIMITER, None, 1, 0.0)
        dropped.force(breaker(), "open")
        dropped.try_hold(POOL).release()  # type: ignore[union-attr]
        assert len(open_fds() - before) >= 4
        del dropped
        gc.collect()
        assert open_fds() == before


def test_a_hold_outliving_its_dropped_store_keeps_the_slot_until_released(tmp_path: Path) -> None:
    """The slot stays held after its store is collected; release frees it and its descriptor."""
    other = FileStore(tmp_path / "state")
    assert other.holders(POOL) == 0
    with no_collection():
        before = open_fds()
        dropped = FileStore(tmp_path / "state")
        hold = dropped.try_hold(POOL)
        assert hold is not None
        del dropped
        gc.collect()
        assert (len(open_fds() - before), other.holders(POOL)) == (1, 1)
        hold.release()
        assert (open_fds(), other.holders(POOL)) == (before, 0)
