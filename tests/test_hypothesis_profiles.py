"""Hypothesis profiles: CI runs the same examples every time; a failure shows its example."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from _paths import PROCS, ROOT

PROBE = PROCS / "hypothesis_probe.py"


def _child(
    tmp_path: Path, test: str, ci: bool, log: str = "log"
) -> subprocess.CompletedProcess[str]:
    """One child pytest on one probe test, with the suite's conftest and settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "SEAWALL_HYPOTHESIS_PROFILE")}
    if ci:
        env["CI"] = "true"
    env["PROBE_LOG"] = str(tmp_path / log)
    env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(tmp_path / ".hypothesis")  # no litter in the repo
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"{PROBE}::{test}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ci_profile_runs_the_same_examples_every_time(tmp_path: Path) -> None:
    """With CI set, two runs draw exactly the same 100 examples, in the same order."""
    first = _child(tmp_path, "test_record", ci=True, log="first")
    second = _child(tmp_path, "test_record", ci=True, log="second")
    assert (first.returncode, second.returncode) == (0, 0), first.stdout + second.stdout
    drawn = (tmp_path / "first").read_text().splitlines()
    assert len(drawn) == 100
    assert (tmp_path / "second").read_text().splitlines() == drawn


def test_local_profile_explores_further_and_differently(tmp_path: Path) -> None:
    """Without CI, a run draws 500 examples, and two runs do not draw the same ones."""
    first = _child(tmp_path, "test_record", ci=False, log="first")
    second = _child(tmp_path, "test_record", ci=False, log="second")
    assert (first.returncode, second.returncode) == (0, 0), first.stdout + second.stdout
    drawn = (tmp_path / "first").read_text().splitlines()
    assert len(drawn) == 500
    assert (tmp_path / "second").read_text().splitlines() != drawn


def test_a_failing_property_reports_its_example_not_an_internal_error(tmp_path: Path) -> None:
    """A failing property ends as a test failure that shows the shrunk falsifying example."""
    done = _child(tmp_path, "test_fails", ci=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "INTERNALERROR" not in done.stdout + done.stderr
    # Hypothesis 6.100 says "Falsifying example", newer releases "Failing test case".
    shown = re.search(
        r"(Falsifying example|Failing test case): test_fails\(\n +x=50,\n\)", done.stdout
    )
    assert shown is not None, done.stdout
