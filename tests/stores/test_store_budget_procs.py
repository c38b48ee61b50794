"""A RetryBudget shared by real processes, on the file store and on Redis: exact totals."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from _paths import PROCS, SRC
from _redis_server import RedisServer

pytestmark = pytest.mark.slow

CHILD = PROCS / "retry_budget_child.py"


@pytest.fixture(params=["file", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A file store directory or a fresh redis-server, as a URL."""
    if request.param == "file":
        yield (tmp_path / "state").as_uri()
        return
    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.close()


def _fleet(store_url: str, name: str, calls: int, retries: int, size: int = 4) -> list[int]:
    """Run ``size`` children together; each one's granted retries."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    start_at = repr(time.time() + 1.5)  # after every child has imported seawall
    args = [store_url, name, str(calls), str(retries), start_at]
    children = [
        subprocess.Popen(
            [sys.executable, str(CHILD), *args], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(size)
    ]
    granted = []
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        granted.append(int(out))
    return granted


def test_a_fleet_shares_the_saved_retries(store_url: str) -> None:
    """Four processes asking 3 retries each from a fresh budget of 5 get exactly 5 in all."""
    granted = _fleet(store_url, f"fleet-{uuid.uuid4().hex}", calls=0, retries=3)
    assert sum(granted) == 5


def test_a_fleet_retries_what_its_calls_earned(store_url: str) -> None:
    """Drained, four processes of 4 calls each (ratio 0.5) retry exactly 8 times in all."""
    name = f"fleet-{uuid.uuid4().hex}"
    assert sum(_fleet(store_url, name, calls=0, retries=3)) == 5  # drains it
    # Each child deposits 2 with its first ask and asks 3 times: after the last refusal only
    # children that were never refused deposit, and each takes more than it brought, so
    # nothing is left over: exactly the 8 earned are granted, in any interleaving.
    assert sum(_fleet(store_url, name, calls=4, retries=3)) == 8
