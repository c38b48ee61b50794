"""FileStore under kill -9: what a dead process held comes back, and exactly when.

Bulkhead slots come back at once (the kernel drops the dead holder's flock: see
test_store_file_procs). These tests pin the other two paths: a half-open probe held by a
killed process, and a reservation of a killed waiter. Every process reads a fake wall clock
set by the test, so the times are exact.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seawall._core.breaker import FAILURE, BreakerConfig
from seawall.stores._base import BreakerSpec, LimiterSpec
from seawall.stores._file.store import FileStore
from seawall.testing import FakeClock

pytestmark = pytest.mark.slow

# One failure opens for 1 s; then one probe, whose slot a silent holder keeps for 30 s.
CFG = BreakerConfig(1, 1.0, 1, 1, 30.0, None, None, None, 10, 10)
BRK = BreakerSpec("kill-brk", CFG)
LIM = LimiterSpec("kill-lim", 1.0, 3.0)  # 3 tokens, one back per second

CHILD = """
import sys
from seawall._core.breaker import BreakerConfig
from seawall.stores._base import BreakerSpec, LimiterSpec
from seawall.stores._file.store import FileStore
from seawall.testing import FakeClock

root, wall, what = sys.argv[1], float(sys.argv[2]), sys.argv[3]
store = FileStore(root, clock=FakeClock(wall=wall))
if what == "probe":
    cfg = BreakerConfig(1, 1.0, 1, 1, 30.0, None, None, None, 10, 10)
    print(repr(store.admit(BreakerSpec("kill-brk", cfg))[0]), flush=True)
else:
    print(repr(store.reserve(LimiterSpec("kill-lim", 1.0, 3.0), None, 5, 100.0).wait), flush=True)
sys.stdin.read()  # hold on until killed
"""


def _killed_after(root: Path, wall: float, what: str) -> str:
    """Run the child at ``wall``, read its answer, kill -9 it; return the answer."""
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), repr(wall), what],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            answer = child.stdout.readline().strip()
        finally:
            os.kill(child.pid, signal.SIGKILL)
            assert child.wait(timeout=30) == -signal.SIGKILL
    return answer


def _at(root: Path, wall: float) -> FileStore:
    return FileStore(root, clock=FakeClock(wall=wall))


def test_a_killed_probe_frees_its_slot_after_stale_attempt_timeout(tmp_path: Path) -> None:
    """The half-open probe of a process killed mid-call is free again exactly 30 s later."""
    root, t0 = tmp_path / "s", float(int(time.time()))
    opener = _at(root, t0)
    ticket, _ = opener.admit(BRK)
    assert isinstance(ticket, tuple)
    opener.record(BRK, ticket, FAILURE, 0.0)
    assert _killed_after(root, t0 + 1.0, "probe") == "(2, 1)"
    assert _at(root, t0 + 30.0).admit(BRK)[0] == 1.0  # the dead probe's slot, 1 s more
    assert _at(root, t0 + 31.0).admit(BRK)[0] == (2, 2)


def test_a_killed_waiters_reservation_stays_spent(tmp_path: Path) -> None:
    """A waiter killed during its 2 s wait leaves its 5 tokens spent: nobody gets them twice."""
    root, t0 = tmp_path / "s", float(int(time.time()))
    assert _killed_after(root, t0, "reserve") == "2.0"
    assert _at(root, t0).peek(LIM, None) == (-2.0, 5.0)
    assert _at(root, t0 + 2.0).reserve(LIM, None, 1, 0.0).wait == 1.0
    assert _at(root, t0 + 5.0).peek(LIM, None) == (3.0, 0.0)
