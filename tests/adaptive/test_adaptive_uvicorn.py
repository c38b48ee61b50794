"""Priority shedding over real HTTP: uvicorn in a subprocess, httpx clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from _paths import APPS

pytestmark = pytest.mark.slow


def _wait_until(predicate: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """uvicorn serving tests/_apps/adaptive_app.py on a free port; yields (url, go file)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    go = tmp_path / "go"
    env = {**os.environ, "SEAWALL_TEST_GO": str(go)}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--app-dir", str(APPS), "adaptive_app:app",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def alive() -> bool:
        assert process.poll() is None, process.communicate()
        try:
            return httpx.get(f"{url}/livez", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    _wait_until(alive, "uvicorn to start")
    try:
        yield url, go
    finally:
        go.touch()
        process.kill()
        process.communicate(timeout=30)


def test_sheddable_refused_critical_served_probes_answered(server: tuple[str, Path]) -> None:
    """Limit 2 held by two requests: /batch and / get 503 + Retry-After, /pay and /readyz 200."""
    url, go = server
    with httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(2) as pool:
        held = [pool.submit(client.get, "/slow") for _ in range(2)]
        _wait_until(lambda: client.get("/stats").json()["in_flight"] == 2, "two held requests")
        batch, default = client.get("/batch"), client.get("/")
        pay, ready = client.get("/pay"), client.get("/readyz")
        go.touch()
        slow = [f.result(timeout=30).status_code for f in held]
        stats = client.get("/stats").json()
    assert (batch.status_code, default.status_code) == (503, 503)
    assert batch.headers["retry-after"] == "1"
    assert batch.headers["content-type"] == "application/problem+json"
    assert (pay.status_code, ready.status_code, slow) == (200, 200, [200, 200])
    assert stats == {"in_flight": 0, "shed": [1, 1, 0]}
