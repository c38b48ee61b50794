"""`seawall demo`: the scripted scenario runs to the end and reports exact counts."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

import seawall
from seawall._cli import main
from seawall._demo import run_demo


def summary(text: str) -> dict[str, int]:
    block = text.split("== summary ==", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^  (.+?)\s+(\d+)$", block, re.MULTILINE)}


EXPECTED = {
    "upstream failures": 3,
    "fast fails": 2,
    "upstream successes": 2,
    "breaker transitions": 3,
    "limiter granted": 5,
    "limiter rejected": 5,
    "limiter waited": 3,
    "limiter timeouts": 1,
    "bulkhead admitted": 3,
    "bulkhead shed": 5,
    "watchdog firings": 1,
    "shutdown callbacks ok": 2,
    "shutdown callbacks timeout": 1,
}


def test_demo_scenario_reports_exact_counts() -> None:
    """The scenario trips and recovers the breaker, limits a burst and sheds load, exactly."""
    out = io.StringIO()
    assert run_demo(out) == 0
    text = out.getvalue()
    assert summary(text) == EXPECTED
    assert "breaker CLOSED -> OPEN (tripped)" in text
    assert "breaker HALF_OPEN -> CLOSED (probes_succeeded)" in text


def test_demo_command_exits_zero_from_a_real_process() -> None:
    """`python -m seawall demo` runs in a subprocess, exits 0 and prints the summary."""
    done = subprocess.run(
        [sys.executable, "-m", "seawall", "demo"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert summary(done.stdout) == EXPECTED


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`seawall --version` prints the package name and version and exits 0."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"seawall {seawall.__version__}\n"
