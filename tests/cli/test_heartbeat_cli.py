"""``seawall heartbeat check``: exit 0 alive, 1 stale or stopped, 2 missing or unreadable."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from seawall import Heartbeat
from seawall._cli.heartbeat import check
from seawall._cli.main import main
from seawall.testing import FakeClock

WHO = f"pid {os.getpid()} on {socket.gethostname()}"


def write_beat(path: Path, clock: FakeClock, *, stopped: bool = False) -> None:
    Heartbeat(path, clock=clock).beat(stopped=stopped)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seawall", "heartbeat", "check", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_reports_alive_with_age(tmp_path: Path, clock: FakeClock) -> None:
    """A beat younger than max age is alive (0), with its age in the message."""
    path = tmp_path / "svc.heartbeat"
    write_beat(path, clock)
    clock.advance(5)
    assert check(path, 30, clock=clock) == (
        0,
        f"alive: last beat from {WHO} was 5.0s ago (max age 30s)",
    )


def test_check_reports_stale(tmp_path: Path, clock: FakeClock) -> None:
    """A beat older than max age is stale (1)."""
    path = tmp_path / "svc.heartbeat"
    write_beat(path, clock)
    clock.advance(31)
    assert check(path, 30, clock=clock) == (
        1,
        f"stale: last beat from {WHO} was 31.0s ago (max age 30s)",
    )


def test_check_reports_stopped_even_when_fresh(tmp_path: Path, clock: FakeClock) -> None:
    """A cleanly stopped heartbeat is reported stopped (1) at once."""
    path = tmp_path / "svc.heartbeat"
    write_beat(path, clock, stopped=True)
    assert check(path, 30, clock=clock) == (
        1,
        f"stopped: {WHO} stopped its heartbeat cleanly 0.0s ago",
    )


def test_check_reports_missing_and_unreadable(tmp_path: Path) -> None:
    """A missing file and a malformed file both give 2, with different reasons."""
    missing = tmp_path / "missing"
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\xff\x00 not json")
    assert check(missing, 30) == (2, f"missing: {missing} does not exist")
    assert check(garbage, 30) == (2, f"unreadable: {garbage} is not a readable heartbeat file")


def test_subprocess_exit_codes(tmp_path: Path) -> None:
    """The CLI exits 0 alive, 1 stale, 1 stopped, 2 missing, 2 garbage, one line each."""
    alive = tmp_path / "alive"
    Heartbeat(alive).beat()
    stale = tmp_path / "stale"
    write_beat(stale, FakeClock(wall=1_000_000_000))
    stopped = tmp_path / "stopped"
    Heartbeat(stopped).beat(stopped=True)
    garbage = tmp_path / "garbage"
    garbage.write_text("[1, 2]")
    results = {
        name: run_cli(str(tmp_path / name), "--max-age", "3600")
        for name in ("alive", "stale", "stopped", "missing", "garbage")
    }
    codes = {name: result.returncode for name, result in results.items()}
    assert codes == {"alive": 0, "stale": 1, "stopped": 1, "missing": 2, "garbage": 2}
    lines = {name: result.stdout + result.stderr for name, result in results.items()}
    words = {name: line.split(":")[0] for name, line in lines.items()}
    assert words == {
        "alive": "alive",
        "stale": "stale",
        "stopped": "stopped",
        "missing": "seawall heartbeat check",
        "garbage": "seawall heartbeat check",
    }
    assert all(line.count("\n") == 1 for line in lines.values())


def test_a_verdict_goes_to_stdout_and_no_verdict_is_a_prefixed_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Alive prints its line on stdout; a missing file is an error on stderr, prefixed."""
    path = tmp_path / "svc.heartbeat"
    Heartbeat(path).beat()
    assert main(["heartbeat", "check", str(path), "--max-age", "60"]) == 0
    alive = capsys.readouterr()
    assert (alive.out.split(":")[0], alive.err) == ("alive", "")
    assert main(["heartbeat", "check", str(tmp_path / "nope")]) == 2
    missing = capsys.readouterr()
    assert missing.out == ""
    assert missing.err == (
        f"seawall heartbeat check: missing: {tmp_path / 'nope'} does not exist\n"
    )


def test_unreadable_file_is_a_prefixed_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that is not a heartbeat gives exit 2 and one prefixed line on stderr."""
    garbage = tmp_path / "garbage"
    garbage.write_text("[1, 2]")
    assert main(["heartbeat", "check", str(garbage)]) == 2
    assert capsys.readouterr().err == (
        f"seawall heartbeat check: unreadable: {garbage} is not a readable heartbeat file\n"
    )


@pytest.mark.parametrize("value", ["0", "-1", "nan", "soon"])
def test_bad_max_age_is_a_usage_error(
    tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A non-positive or non-numeric --max-age exits 2 with one prefixed line naming it."""
    with pytest.raises(SystemExit) as info:
        main(["heartbeat", "check", str(tmp_path / "x"), "--max-age", value])
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        f"seawall heartbeat check: argument --max-age: expected seconds above 0, got {value!r} "
        "(see 'seawall heartbeat check --help')\n"
    )
