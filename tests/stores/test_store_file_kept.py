"""FileStore's kept records: what a process wrote last is reused only while the file holds it.

Another FileStore on the same directory has its own descriptors and its own kept records, as
another process has; the last tests use real processes.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from _paths import PROCS
from _procs.file_store_common import ADMIT_GATES, breaker
from seawall._core.breaker import FAILURE
from seawall.stores._base import LimiterSpec, Settlement, StoreUnavailableError, group_gates
from seawall.stores._file.files import base_name
from seawall.stores._file.store import FileStore
from seawall.testing import FakeClock

LIMIT = LimiterSpec("kept", 360.0, 3.0, keyed=True)  # 3 per 18 minutes: no refill here
GATES = group_gates("g", [LIMIT], None, breaker("kept-db"))
CHILD = str(PROCS / "file_admit_child.py")
LOCKER = str(PROCS / "file_store_child.py")


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at a plausible wall time."""
    return FakeClock(wall=1_700_000_000.0)


@pytest.fixture
def pair(tmp_path: Path, clock: FakeClock) -> tuple[FileStore, FileStore]:
    """Two stores on one directory and one fake clock: two processes' views of the state."""
    return FileStore(tmp_path, clock=clock), FileStore(tmp_path, clock=clock)


def _refusals(store: FileStore, n: int) -> list[str | None]:
    return [store.admit_request(GATES, "k").refused_by for _ in range(n)]


def test_tokens_spent_by_another_store_are_not_spent_again(
    pair: tuple[FileStore, FileStore],
) -> None:
    """Alternating stores admit exactly the limit between them, not the limit each."""
    a, b = pair
    answers = [s.admit_request(GATES, "k").refused_by for s in (a, b, a, b, a, b)]
    assert answers == [None, None, None, "limit", "limit", "limit"]


def test_a_breaker_opened_by_another_store_refuses_here(
    pair: tuple[FileStore, FileStore],
) -> None:
    """A store that admitted through a closed breaker sees it opened by another store."""
    a, b = pair
    assert _refusals(a, 1) == [None]
    b.force(GATES.breaker, "open")  # type: ignore[arg-type]
    assert _refusals(a, 1) == ["breaker"]


def test_a_half_open_probe_taken_here_is_seen_by_another_store(
    pair: tuple[FileStore, FileStore], clock: FakeClock
) -> None:
    """After the open period, one store's probe is the only one: the other store is refused."""
    a, b = pair
    for key in ("x", "y"):  # two failures trip it
        ticket = a.admit_request(GATES, key).ticket
        a.settle_requests(GATES, [Settlement(None, ticket, FAILURE)])
    clock.advance(10.0)  # the breaker's reset_timeout
    assert [s.admit_request(GATES, "k").refused_by for s in (a, b)] == [None, "breaker"]


def test_an_outcome_recorded_by_another_store_counts(pair: tuple[FileStore, FileStore]) -> None:
    """Failures recorded by two stores add up: two of them trip the shared breaker."""
    a, b = pair
    first, second = a.admit_request(GATES, "k"), b.admit_request(GATES, "k")
    a.settle_requests(GATES, [Settlement(None, first.ticket, FAILURE)])
    transitions = b.settle_requests(GATES, [Settlement(None, second.ticket, FAILURE)])
    assert transitions[0] is not None
    assert _refusals(a, 1) == ["breaker"]


def test_an_admission_after_close_opens_its_files_again(tmp_path: Path) -> None:
    """close() drops the kept descriptors: the next admission opens fresh ones and decides."""
    store = FileStore(tmp_path, clock=FakeClock(wall=1_700_000_000.0))
    assert _refusals(store, 1) == [None]
    store.close()
    assert _refusals(store, 3) == [None, None, "limit"]


# -- real processes ---------------------------------------------------------------------------


def _child(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, CHILD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def _say(proc: subprocess.Popen[str], line: str) -> str:
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


@pytest.mark.slow
def test_two_processes_taking_turns_admit_exactly_the_limit(tmp_path: Path) -> None:
    """Two processes admitting in turn share 10 per hour: the first 10 pass, none after."""
    procs = [_child(tmp_path), _child(tmp_path)]
    try:
        answers = []
        for turn in range(24):
            proc = procs[turn % 2]
            answers.append(_say(proc, "admit"))
            assert _say(proc, "settle") == "settled"
    finally:
        for proc in procs:
            proc.communicate(timeout=30)
    assert answers == ["-"] * 10 + ["limit"] * 14


@pytest.mark.slow
def test_a_killed_holder_frees_its_admission_slot_at_once(tmp_path: Path) -> None:
    """kill -9 of a process holding the admission's only slot frees it for the next request."""
    holder, other = _child(tmp_path), _child(tmp_path)
    store = FileStore(tmp_path)
    try:
        assert _say(holder, "admit") == "-"
        assert _say(other, "admit") == "bulkhead"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        assert _say(other, "admit") == "-"
        assert store.holders(ADMIT_GATES.bulkhead) == 1  # type: ignore[arg-type]
        assert _say(other, "settle") == "settled"
        assert store.holders(ADMIT_GATES.bulkhead) == 0  # type: ignore[arg-type]
    finally:
        store.close()
        for proc in (holder, other):
            if proc.poll() is None and proc is holder:
                proc.kill()
            proc.communicate(timeout=30)


@pytest.mark.slow
def test_an_admission_waits_out_a_held_lock_then_refuses_without_writing(
    tmp_path: Path, clock: FakeClock
) -> None:
    """While another process holds the breaker's lock, the admission fails after its timeout."""
    store = FileStore(tmp_path, timeout=0.2, clock=clock)
    assert _refusals(store, 1) == [None]
    table = tmp_path / (base_name("lim", LIMIT.name) + ".tab")
    before = table.read_bytes()
    lock = tmp_path / (base_name("brk", "kept-db") + ".lock")
    with subprocess.Popen(
        [sys.executable, LOCKER, "lock", str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert _say_nothing(child) == "locked"
        began = clock.monotonic()
        with pytest.raises(StoreUnavailableError, match="stayed locked"):
            store.admit_request(GATES, "k")
        assert clock.monotonic() - began >= 0.2
        assert table.read_bytes() == before
        child.communicate(timeout=30)
    assert _refusals(store, 3) == [None, None, "limit"]
    store.close()


def _admit_in_forked_child(store: FileStore, result: Any) -> None:
    try:
        result.value = 2 if store.admit_request(GATES, "k").refused_by is None else 3
    except StoreUnavailableError:
        result.value = 1


@pytest.mark.slow
def test_a_forked_child_admits_through_its_own_descriptors(tmp_path: Path) -> None:
    """A child forked after the parent's admissions admits too, from the shared record."""
    store = FileStore(tmp_path, timeout=0.5)
    assert _refusals(store, 2) == [None, None]
    ctx = multiprocessing.get_context("fork")
    result = ctx.Value("i", 0)
    child = ctx.Process(target=_admit_in_forked_child, args=(store, result))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert result.value == 2  # the third of three
    assert _refusals(store, 1) == ["limit"]
    store.close()


def _say_nothing(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()
