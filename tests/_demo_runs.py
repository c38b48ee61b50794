"""Shared by the demo tests: reading its summary, and interrupting a real ``seawall demo``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass

__all__ = ["Interrupted", "interrupt_demo", "summary"]


def summary(text: str) -> dict[str, int]:
    """The ``name  number`` rows of the summary block, in order."""
    block = text.split("== summary ==", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^  (.+?)\s+(\d+)$", block, re.MULTILINE)}


@dataclass
class Interrupted:
    """What an interrupted demo printed (``out`` from its first line) and its exit status."""

    out: str
    err: str
    returncode: int


def interrupt_demo(argv: list[str], marker: str, what: str) -> Interrupted:
    """Run ``python -m seawall *argv`` and send Ctrl-C (SIGINT to its process group, as a
    terminal's foreground job) once a line holding ``marker`` is out; ``what`` names that
    moment for the failure message when the demo ends first."""
    child = subprocess.Popen(
        [sys.executable, "-m", "seawall", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group
    )
    assert child.stdout is not None
    head = ""
    while marker not in head:
        line = child.stdout.readline()
        assert line, f"the demo ended before {what}"
        head += line
    os.killpg(child.pid, signal.SIGINT)
    out, err = child.communicate(timeout=60)
    return Interrupted(head + out, err, child.returncode)
