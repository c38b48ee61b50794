"""Policies (not just stores) shared by real processes, on the file and the Redis store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._redis_server import RedisServer

from _paths import PROCS, SRC
from seawall import CircuitBreaker, CircuitOpenError, CircuitState, RateLimiter
from seawall.stores import RedisStore, open_store

pytestmark = pytest.mark.slow

CHILD = PROCS / "shared_breaker_child.py"


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


def _boom() -> None:
    raise OSError("dependency down")


def test_breaker_opened_here_rejects_there_and_admits_one_probe(store_url: str) -> None:
    """Opened by this process, the breaker rejects in 8 others; then exactly one gets the probe."""
    name = f"shared-{uuid.uuid4().hex}"
    store = open_store(store_url, timeout=5.0)
    breaker = CircuitBreaker(name=name, store=store, max_failures=1, reset_timeout=5.0)
    with pytest.raises(OSError):
        breaker.call(_boom)
    assert breaker.state is CircuitState.OPEN
    probe_at = time.time() + 5.5  # the open period ends 5 s after the failure above
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    children = [
        subprocess.Popen(
            [sys.executable, str(CHILD), store_url, name, repr(probe_at)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(8)
    ]
    answers = []
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        answers.append(json.loads(out))
    assert Counter(a["first"] for a in answers) == {"rejected": 8}
    assert Counter(a["second"] for a in answers) == {"probe": 1, "rejected": 7}
    with pytest.raises(CircuitOpenError):
        breaker.admit()  # the probe's slot is still held by the child that took it


# 20 decisions on a frozen Redis took 0.1006 to 0.1042 s over 10 runs on this loaded 2-core
# machine: the first pays the 0.1 s timeout, the backoff answers the other 19 locally. Without
# the backoff each would pay it (2 s); a second store call in the window would cost 0.2 s.
FROZEN_TIMEOUT = 0.1
FROZEN_BOUND = 0.18


def test_redis_stopped_mid_run_degrades_then_resumes() -> None:
    """With Redis frozen, calls get local decisions in one timeout; running again, they share."""
    server = RedisServer()
    server.start()
    try:
        store = RedisStore(server.url, timeout=FROZEN_TIMEOUT)
        limiter = RateLimiter(1000, name=f"stop-{uuid.uuid4().hex}", store=store)
        assert [limiter.try_acquire() for _ in range(3)] == [True] * 3
        server.pause()  # it keeps its sockets and answers nothing: each ask costs the timeout
        started = time.monotonic()
        assert [limiter.try_acquire() for _ in range(20)] == [True] * 20
        elapsed = time.monotonic() - started
        # One store call paid its timeout; the backoff spared the others.
        assert FROZEN_TIMEOUT <= elapsed < FROZEN_BOUND, elapsed
        assert limiter.stats.degraded_decisions == 20
        server.resume()
        deadline = time.monotonic() + 10.0
        before = limiter.stats.degraded_decisions
        while time.monotonic() < deadline:
            limiter.try_acquire()
            after = limiter.stats.degraded_decisions
            if after == before:
                break  # that decision came from the store
            before = after
            time.sleep(0.05)
        else:
            pytest.fail("the limiter never used the restarted store")
        assert [p.kind for p in store.status()] == ["limiter"]
        store.close()
    finally:
        server.close()
