"""ResilienceMiddleware and the lifespan hook under a real uvicorn server in a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from _paths import APPS

pytestmark = pytest.mark.slow


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    go: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


def wait_until(predicate: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def refused(server: Server) -> bool:
    """True once the server no longer accepts connections (uvicorn's SIGTERM handler ran)."""
    try:
        httpx.get(f"{server.url}/count", timeout=2)
    except httpx.ConnectError:
        return True
    except httpx.TransportError:
        return False  # accepted just before the socket closed, or slow under load: ask again
    return False


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """uvicorn on a free 127.0.0.1 port (its own socket, closed when it stops accepting)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SEAWALL_TEST_GO": str(tmp_path / "go"), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--app-dir", str(APPS), "uvicorn_app:app",
            "--host", "127.0.0.1", "--port", str(port), "--lifespan", "on", "--no-access-log",
            "--no-proxy-headers",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    srv = Server(process, f"http://127.0.0.1:{port}", tmp_path / "go")

    def alive() -> bool:
        assert process.poll() is None, process.communicate()
        try:
            return httpx.get(f"{srv.url}/livez", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(alive, "uvicorn to start")
    try:
        yield srv
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def test_exact_429s_per_forwarded_client(server: Server) -> None:
    """3/hour per client through a trusted proxy: each forwarded client gets 3 OKs then 429s."""
    with server.client() as c:
        a = [c.get("/", headers={"x-forwarded-for": "198.51.100.1"}) for _ in range(5)]
        b = [c.get("/", headers={"x-forwarded-for": "198.51.100.2"}) for _ in range(4)]
    assert [r.status_code for r in a] == [200, 200, 200, 429, 429]
    assert [r.status_code for r in b] == [200, 200, 200, 429]
    assert a[3].headers["ratelimit-policy"] == '"route";q=3;w=3600'
    assert a[3].headers["retry-after"] == "1200"
    assert a[3].headers["content-type"] == "application/problem+json"


def test_streaming_response_arrives_intact(server: Server) -> None:
    """A streamed body arrives whole, chunked, with the middleware's fields on its head."""
    with server.client() as c, c.stream("GET", "/stream") as response:
        parts = list(response.iter_raw())
        headers = response.headers
    assert b"".join(parts) == b"chunk0;chunk1;chunk2;chunk3;chunk4;"
    assert headers["transfer-encoding"] == "chunked"


def test_background_task_runs_after_the_response(server: Server) -> None:
    """A background task queued by a response runs."""
    with server.client() as c:
        assert c.get("/bg").text == "queued"
        wait_until(lambda: c.get("/bg-status").json() == ["done"], "the background task")


def test_request_timeout_gives_504(server: Server) -> None:
    """A request stuck past request_timeout (0.3 s) answers 504 with a problem document."""
    with server.client() as c:
        response = c.get("/timed/stuck")
    assert response.status_code == 504
    assert response.json()["title"] == "Gateway Timeout"


def test_sigterm_drains_in_flight_requests_then_runs_callbacks_in_order(server: Server) -> None:
    """SIGTERM under load: all in-flight requests complete, callbacks run by priority, exit 143."""
    n = 6

    def call() -> httpx.Response:
        with server.client() as c:
            return c.get("/slow")

    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(call) for _ in range(n)]
        with server.client() as c:
            wait_until(lambda: c.get("/count").json()["in_slow"] == n, "requests in flight")
            assert c.get("/readyz").status_code == 200
        server.process.send_signal(signal.SIGTERM)
        wait_until(lambda: refused(server), "uvicorn to stop accepting connections")
        assert server.process.poll() is None  # still waiting for the requests in flight
        server.go.touch()
        responses = [f.result(timeout=30) for f in futures]
    out, err = server.process.communicate(timeout=30)
    assert [r.status_code for r in responses] == [200] * n
    assert [r.json() for r in responses] == [{"ready_at_finish": False}] * n
    assert [line for line in out.splitlines() if line.startswith("callback:")] == [
        "callback:first",
        "callback:second in_flight=0",
        "callback:third",
    ]
    assert server.process.returncode == -signal.SIGTERM, err
