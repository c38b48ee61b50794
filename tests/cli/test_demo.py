"""`seawall demo`: a real service, upstream and traffic; every request accounted for."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import seawall
from _demo_runs import interrupt_demo, summary
from _paths import ROOT
from _redis_server import REDIS_PASSWORD, RedisServer
from seawall._cli.demo import run_demo, summary_lines
from seawall._cli.demo._run import DemoResult, run
from seawall._cli.demo._schedule import MAX_DURATION, MIN_DURATION, REQUEST_TIMEOUT, build_schedule
from seawall._cli.demo._traffic import OUTCOMES
from seawall._cli.main import main
from seawall.stores import open_store

pytestmark = pytest.mark.slow

ROWS = (
    "served fresh",
    "served degraded (fallback)",
    "429 rate limited",
    "503 shed (bulkhead full)",
    "503 circuit open",
    "504 timeout",
    "errors",
)


def check_summary(text: str, workers: int = 1) -> dict[str, int]:
    """Assert what every run must show, and return the summary rows."""
    rows = summary(text)
    assert sum(rows[r] for r in ROWS) == rows["requests sent"]
    for row in ("served fresh", "429 rate limited", "503 shed (bulkhead full)", "504 timeout"):
        assert rows[row] > 0, row
    for name in ("demo-app", "demo-upstream"):
        assert rows[f"{name} trips"] >= 1
        assert rows[f"{name} recoveries"] >= 1
    assert rows["shutdown callbacks run"] == 2 * workers  # each service instance runs its two
    assert rows["store degraded decisions"] == 0  # every store answered throughout
    assert "breakers at the end: demo-app CLOSED, demo-upstream CLOSED" in text
    assert "service and clients agree: yes" in text
    return rows


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def in_process(request: pytest.FixtureRequest) -> tuple[DemoResult, str]:
    """One 5 s run in this process on in-process state, per backend; its result and output.

    (Shared by the tests that only read it: each run costs 5 s of real traffic.)
    """
    out = io.StringIO()

    async def go() -> DemoResult:
        return await run(out, duration=5, store=None, seed=1, live=False)

    return anyio.run(go, backend=request.param), out.getvalue()


def test_demo_run_accounts_for_every_request(in_process: tuple[DemoResult, str]) -> None:
    """Each request lands in one outcome, and the service counted exactly what clients saw."""
    result, _ = in_process
    assert set(result.seen) == set(OUTCOMES)
    assert sum(result.seen.values()) == result.sent
    assert result.seen["error"] == 0
    assert {k: v for k, v in result.seen.items() if v and k != "error"} == {
        k: v for k, v in result.served.items() if v
    }
    assert result.consistent


def test_demo_run_shows_every_policy_acting(in_process: tuple[DemoResult, str]) -> None:
    """The schedule makes each policy act: limit, shed, time out, degrade, retry, trip, recover."""
    result, text = in_process
    for outcome in ("fresh", "degraded", "rate_limited", "overloaded", "circuit_open", "timeout"):
        assert result.seen[outcome] > 0, outcome
    assert result.retries > 0
    assert set(result.upstream) == {200, 429, 503}
    for name in ("demo-app", "demo-upstream"):
        assert result.count(name, "CLOSED", "OPEN") >= 1
        assert result.count(name, "HALF_OPEN", "CLOSED") >= 1
        assert result.final_states[name] == "CLOSED"
    assert result.shutdown_ran == ["close-upstream-client", "report"]
    assert "breaker demo-upstream: CLOSED -> OPEN (tripped)" in text
    assert "\x1b[" not in text  # not a terminal: plain lines only
    check_summary("\n".join(summary_lines(result)))


def test_each_phase_is_opened_and_recapped(in_process: tuple[DemoResult, str]) -> None:
    """Every phase gets its description line, then an 'end of' recap, in schedule order."""
    _, text = in_process
    told = re.findall(r"^\[ *[\d.]+s\] (phase \w+|end of \w+):", text, re.MULTILINE)
    names = [p.name for p in build_schedule(5).phases]
    assert told == [line for name in names for line in (f"phase {name}", f"end of {name}")]


def test_docs_summary_has_the_rows_a_run_prints(in_process: tuple[DemoResult, str]) -> None:
    """docs/cli.md's summary example has exactly the lines a real run's summary has."""
    result, _ = in_process
    page = (ROOT / "docs" / "cli.md").read_text("utf-8")
    shown = page.split("```text\n== summary ==\n", 1)[1].split("```", 1)[0]
    real = "\n".join(summary_lines(result)[2:]) + "\n"
    assert re.sub(r"\d+", "N", shown) == re.sub(r"\d+", "N", real)


def run_command(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m seawall demo --duration 5 *args`` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "seawall", "demo", "--duration", "5", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_command_exits_zero_from_a_real_process(backend: str) -> None:
    """`python -m seawall demo --duration 5 --backend B` exits 0 with a consistent summary."""
    done = run_command("--backend", backend)
    assert done.returncode == 0, done.stderr
    check_summary(done.stdout)


def test_demo_with_a_file_store(tmp_path: Path) -> None:
    """With --store file://, the breakers and host limiter keep their state in the directory."""
    url = f"file://{tmp_path}/state"
    done = run_command("--store", url)
    assert done.returncode == 0, done.stderr
    assert f"store {url}" in done.stdout
    check_summary(done.stdout)
    found = {(p.kind, p.name) for p in open_store(url).status()}
    assert found == {
        ("breaker", "demo-app"),
        ("breaker", "demo-upstream"),
        ("limiter", "demo-upstream-limiter"),
        ("bulkhead", "demo-asgi:bulkhead"),
        ("limiter", "demo-asgi:default#1:5/1s"),
    }


def test_demo_with_a_redis_store(redis_server: RedisServer) -> None:
    """With --store redis://, the run is as consistent and its breakers end closed in Redis."""
    done = run_command("--store", redis_server.url)
    assert done.returncode == 0, done.stderr
    check_summary(done.stdout)
    found = open_store(redis_server.url).status()
    states = {p.name: p.state["state"] for p in found if p.kind == "breaker"}
    assert (states["demo-app"], states["demo-upstream"]) == ("closed", "closed")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_with_worker_processes_sharing_a_temporary_file_store(backend: str) -> None:
    """--workers 2 runs two service processes over a temporary file store; both shut down."""
    done = run_command("--workers", "2", "--backend", backend)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert re.fullmatch(r"seawall demo: 5 s, store file://(/.+/seawall-demo-\w+)", first)
    assert "protected service (2 worker processes)" in done.stdout
    check_summary(done.stdout, workers=2)
    assert not Path(first.split("file://", 1)[1]).exists()  # the temporary store is removed


def test_demo_with_worker_processes_on_redis(redis_server: RedisServer) -> None:
    """--workers 3 --store redis:// shares the breakers of three service processes in Redis."""
    done = run_command("--workers", "3", "--store", redis_server.url)
    assert done.returncode == 0, done.stderr
    check_summary(done.stdout, workers=3)


def _children(pid: int) -> list[int]:
    """The process ids whose parent is ``pid`` (Linux ``/proc``)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_worker_command_lines_never_carry_the_store_password(
    locked_redis_server: RedisServer,
) -> None:
    """Workers get the store URL through their environment: ps never shows its password."""
    argv = ["demo", "--duration", "40", "--workers", "2", "--store", locked_redis_server.url]
    child = subprocess.Popen(
        [sys.executable, "-m", "seawall", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().startswith("seawall demo:")  # workers are up by now
        while "phase " not in child.stdout.readline():
            pass
        workers = _children(child.pid)
        lines = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in workers]
    finally:
        os.killpg(child.pid, signal.SIGINT)
        out, err = child.communicate(timeout=60)
    worker_lines = [line for line in lines if b"seawall._cli.demo._worker" in line]
    assert len(worker_lines) == 2
    assert not any(REDIS_PASSWORD.encode() in line for line in worker_lines)
    assert REDIS_PASSWORD not in out + err
    assert child.returncode == 130


@pytest.mark.parametrize(
    ("workers", "backend"), [("1", "asyncio"), ("2", "asyncio"), ("1", "trio")]
)
def test_ctrl_c_ends_the_traffic_and_still_shuts_down_and_sums_up(
    workers: str, backend: str
) -> None:
    """Ctrl-C (SIGINT to the process group) mid-run: graceful shutdown, a true summary, 130."""
    argv = ["demo", "--duration", "40", "--workers", workers, "--backend", backend]
    # Interrupted once the slow phase starts: the flash crowd is in flight.
    run = interrupt_demo(argv, "phase slow:", "its slow phase")
    assert run.returncode == 130
    assert re.fullmatch(r"seawall demo: interrupted after \d+\.\d s of traffic\n", run.err)
    rows = summary(run.out)
    assert sum(rows[r] for r in ROWS) == rows["requests sent"]
    assert rows["errors"] == 0  # no client was cut off, no worker stopped early
    assert rows["shutdown callbacks run"] == 2 * int(workers)
    assert "service and clients agree: yes" in run.out
    assert "phase 5xx:" not in run.out  # 6.5 s long, the slow phase was never left


@pytest.mark.parametrize("workers", ["0", "9"])
def test_workers_out_of_range_exit_2(workers: str) -> None:
    """--workers outside 1..8 is refused before anything starts."""
    done = run_command("--workers", workers)
    assert done.returncode == 2
    assert done.stderr == f"seawall demo: workers must be an integer from 1 to 8, got {workers}\n"


def test_workers_need_a_store() -> None:
    """run() refuses several workers without a shared store."""

    async def go() -> DemoResult:
        return await run(io.StringIO(), duration=5, store=None, seed=1, live=False, workers=2)

    with pytest.raises(ValueError, match="workers share their state through a store"):
        anyio.run(go, backend="asyncio")


def test_schedule_phases_tile_the_run() -> None:
    """Phases are contiguous from 0 to the duration, each trouble phase outlasting the timeout."""
    for duration in (MIN_DURATION, 24.0, MAX_DURATION):
        schedule = build_schedule(duration)
        names = [p.name for p in schedule.phases]
        assert names == ["healthy", "slow", "5xx", "429", "stalled", "recovered"]
        assert schedule.phases[0].start == 0.0
        assert schedule.phases[-1].end == duration
        for before, after in zip(schedule.phases, schedule.phases[1:], strict=False):
            assert before.end == pytest.approx(after.start)
        assert all(p.end - p.start > REQUEST_TIMEOUT for p in schedule.phases[1:-1])
        assert schedule.phases[-1].end - schedule.phases[-1].start >= 2.0


@pytest.mark.parametrize("duration", [4.99, 55.01])
def test_duration_out_of_range_is_refused(duration: float) -> None:
    """A duration outside 5..55 s raises ValueError naming the duration."""
    with pytest.raises(
        ValueError, match=f"duration must be between 5 and 55 seconds, got {duration}"
    ):
        build_schedule(duration)


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad duration or store URL prints one message on stderr and exits 2, starting nothing."""
    assert main(["demo", "--duration", "1"]) == 2
    assert main(["demo", "--store", "ftp://nowhere"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "seawall demo: duration must be between 5 and 55 seconds, got 1.0"
    assert err[1].startswith("seawall demo: unsupported store URL 'ftp://nowhere'")


def test_run_demo_refuses_an_unknown_backend(capsys: pytest.CaptureFixture[str]) -> None:
    """run_demo(backend='curio') prints one message naming the backend and returns 2."""
    assert run_demo(io.StringIO(), backend="curio") == 2
    assert capsys.readouterr().err == (
        "seawall demo: backend must be 'asyncio' or 'trio', got 'curio'\n"
    )


def test_run_demo_returns_2_without_running_on_a_bad_store() -> None:
    """run_demo() itself reports a bad store URL with exit status 2."""
    assert run_demo(io.StringIO(), store="nonsense") == 2


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`seawall --version` prints the package name and version and exits 0."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"seawall {seawall.__version__}\n"
