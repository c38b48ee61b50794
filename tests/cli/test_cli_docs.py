"""docs/cli.md shows what the commands really print: each `$ seawall ...` example is run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from _paths import ROOT
from seawall import Bulkhead, CircuitBreaker, Heartbeat, KeyedRateLimiter
from seawall.stores import open_store

PAGE = ROOT / "docs" / "cli.md"
TEXT_BLOCK = re.compile(r"^```text\n(.*?)^```", re.DOTALL | re.MULTILINE)

#: Paths the page names, and the test's stand-ins for them.
STORE_DIR = "/var/lib/myapp/seawall"
HEARTBEAT = "/run/app/heartbeat.json"

#: What may differ between the page and a run: a moment (a timestamp, seconds left, an age),
#: and who wrote a heartbeat. Everything else is compared exactly.
VARYING = [
    (re.compile(r"\d+\.\d+"), "<number>"),
    (re.compile(r"pid \d+ on \S+"), "pid <pid> on <host>"),
]


def examples() -> list[tuple[str, str]]:
    """``(command, expected output)`` for every ``$ seawall`` line of the page, in order."""
    found: list[tuple[str, str]] = []
    for block in TEXT_BLOCK.findall(PAGE.read_text("utf-8")):
        for chunk in re.split(r"^(?=\$ )", block, flags=re.MULTILINE):
            if chunk.startswith("$ seawall"):
                command, _, output = chunk.partition("\n")
                found.append((command[2:], output))
    return found


def masked(text: str) -> str:
    for pattern, stand_in in VARYING:
        text = pattern.sub(stand_in, text)
    return text


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The page's store (an open breaker, two limiter keys, one held slot) and heartbeat."""
    state = tmp_path / "state"
    state.mkdir()
    store = open_store(f"file://{state}", timeout=2.0)
    breaker = CircuitBreaker(max_failures=2, reset_timeout=3600, name="payments", store=store)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(_fail)
    limiter = KeyedRateLimiter(1, 36_000, burst=5, name="api", store=store)
    assert [limiter.try_acquire("alice") for _ in range(2)] == [True, True]
    assert limiter.try_acquire("bob")
    bulkhead = Bulkhead(3, name="workers", store=store)
    assert bulkhead.try_acquire()
    Heartbeat(tmp_path / "heartbeat.json").beat()
    try:
        yield {STORE_DIR: str(state), HEARTBEAT: str(tmp_path / "heartbeat.json")}
    finally:
        bulkhead.release()
        store.close()


def _fail() -> None:
    raise ConnectionError("down")


def run(command: str, paths: dict[str, str]) -> str:
    """What ``command`` (with the page's paths swapped for the test's) prints, both streams."""
    for shown, real in paths.items():
        command = command.replace(shown, real)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAWALL_")}
    done = subprocess.run(
        [sys.executable, "-m", "seawall", *shlex.split(command)[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "COLUMNS": "80"},
    )
    output = done.stdout + done.stderr
    for shown, real in paths.items():
        output = output.replace(real, shown)
    return output


def test_the_page_has_examples_of_every_command() -> None:
    """The page runs help, status, reset, heartbeat check and demo examples (not none)."""
    commands = {shlex.split(command)[1] for command, _ in examples()}
    assert commands == {"--help", "status", "reset", "heartbeat", "demo", "stats"}
    assert len(examples()) >= 14


@pytest.mark.slow
def test_every_example_prints_what_the_page_shows(world: dict[str, str]) -> None:
    """Each `$ seawall ...` example, run for real, prints the page's text (moments masked)."""
    for command, expected in examples():
        assert masked(run(command, world)) == masked(expected), command
