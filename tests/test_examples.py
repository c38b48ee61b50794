"""The programs in examples/ run as real processes and print exactly what they promise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from _paths import ROOT

EXAMPLES = ROOT / "examples"
pytestmark = pytest.mark.slow


def env() -> dict[str, str]:
    """The child's environment: this checkout's seawall first, whatever is installed."""
    paths = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` to completion, capturing text output."""
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env()
    )


def heartbeat_check(path: Path) -> subprocess.CompletedProcess[str]:
    return run("-m", "seawall", "heartbeat", "check", str(path), "--max-age", "30")


def test_sync_only_prints_the_exact_outcomes() -> None:
    """sync_only.py: 5 of 12 tries pass the limiter, one half-open probe, 2 bulkhead slots."""
    done = run(str(EXAMPLES / "sync_only.py"), "--threads", "4", "--reset-timeout", "0.05")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "limiter: 5 granted, 7 refused",
        "breaker: OPEN after 3 failures, 4 refused",
        "breaker: half-open let 1 probe through, 3 refused, now CLOSED",
        "bulkhead: 2 admitted, 2 refused, size 2",
    ]


def worker_args(state: Path, *extra: str) -> list[str]:
    return [str(EXAMPLES / "worker.py"), "--state-dir", str(state), "--interval", "0.2", *extra]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_worker_finishes_its_jobs_then_cleans_up_in_priority_order(
    tmp_path: Path, backend: str
) -> None:
    """worker.py: 3 jobs, then the three callbacks by priority; the heartbeat reads 'stopped'."""
    args = worker_args(tmp_path, "--jobs", "3", "--job-seconds", "0.01", "--backend", backend)
    done = run(*args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"worker started ({backend}), heartbeat at {tmp_path / 'heartbeat.json'}",
        "job 1 done",
        "job 2 done",
        "job 3 done",
        "cleanup: stop-consuming",
        "cleanup: close-database",
        "cleanup: heartbeat",
        "shutdown: 3 jobs done, 3 of 3 callbacks ok",
    ]
    check = heartbeat_check(tmp_path / "heartbeat.json")
    assert (check.returncode, check.stdout.split(":")[0]) == (1, "stopped")


def test_worker_watchdog_fires_while_the_loop_is_blocked(tmp_path: Path) -> None:
    """worker.py --stall-at 1: the watchdog reports the stall before the blocked job ends."""
    args = worker_args(tmp_path, "--jobs", "2", "--job-seconds", "0.01", "--stall-at", "1")
    done = run(*args, "--watchdog-timeout", "0.3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:4] == [
        "watchdog: no progress for too long",
        "job 1 done",
        "job 2 done",
    ]


def test_worker_sigterm_runs_the_callbacks_and_exits_143(tmp_path: Path) -> None:
    """SIGTERM mid-run: alive before, callbacks in order, exit status 143, heartbeat 'stopped'."""
    args = worker_args(tmp_path, "--jobs", "100000", "--job-seconds", "0.02")
    with subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, text=True, env=env()
    ) as child:
        assert child.stdout is not None
        lines = [child.stdout.readline().strip(), child.stdout.readline().strip()]
        assert lines[1] == "job 1 done"
        alive = heartbeat_check(tmp_path / "heartbeat.json")
        child.send_signal(signal.SIGTERM)
        rest, _ = child.communicate(timeout=60)
    assert (alive.returncode, alive.stdout.split(":")[0]) == (0, "alive")
    assert child.returncode == 128 + signal.SIGTERM
    cleanups = [line for line in rest.splitlines() if line.startswith("cleanup: ")]
    assert cleanups == ["cleanup: stop-consuming", "cleanup: close-database", "cleanup: heartbeat"]
    check = heartbeat_check(tmp_path / "heartbeat.json")
    assert (check.returncode, check.stdout.split(":")[0]) == (1, "stopped")


def test_multi_worker_enforces_one_limit_across_two_uvicorn_workers() -> None:
    """multi_worker.py: two workers share a file store, so exactly 5 of 12 requests pass."""
    args = [sys.executable, str(EXAMPLES / "multi_worker.py"), "--requests", "12"]
    # Its own session, so a hang is ended with the uvicorn supervisor and workers it started.
    with subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        start_new_session=True,
    ) as child:
        try:
            out, err = child.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            out, err = child.communicate()
    assert child.returncode == 0, err
    assert out.splitlines() == ["200: 5", "429: 7"]


def test_every_example_is_run_by_a_test() -> None:
    """Each examples/*.py is named by a test module (this one, or its integration's tests)."""
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py"))
    untested = [p.name for p in sorted(EXAMPLES.glob("*.py")) if f'"{p.name}"' not in tests]
    assert untested == []
