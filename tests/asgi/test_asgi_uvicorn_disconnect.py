"""Clients that hang up on a real uvicorn server leave the middleware's breaker closed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from _paths import APPS

pytestmark = pytest.mark.slow


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    """uvicorn serving ``uvicorn_disconnect_app`` on a free 127.0.0.1 port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "uvicorn.log").open("w")  # a file, not a pipe: tracebacks cannot block it
    process = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--app-dir", str(APPS), "uvicorn_disconnect_app:app",
            "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off", "--no-access-log",
        ],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: up(base, process), "uvicorn to start")
        yield base
    finally:
        process.kill()
        process.wait(timeout=30)
        log.close()


def up(base: str, process: subprocess.Popen[Any]) -> bool:
    assert process.poll() is None, "uvicorn exited"
    try:
        return httpx.get(f"{base}/breaker", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def wait_for(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def counters(base: str) -> dict[str, Any]:
    return dict(httpx.get(f"{base}/breaker", timeout=10).json())


def settled(base: str, n: int) -> bool:
    c = counters(base)
    return bool(c["success"] + c["failure"] + c["neutral"] >= n)


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def abort_upload(base: str) -> None:
    """Announce 1000 bytes, send 10, hang up."""
    with connect(base) as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10
        )


def abort_stream(base: str) -> None:
    """Read the head and some of an endless body, then hang up."""
    with connect(base) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        received = b""
        while b"tick;" not in received:
            received += sock.recv(4096)
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")


def test_aborted_uploads_leave_the_breaker_closed(url: str) -> None:
    """Five uploads cut mid-body are neutral; a healthy request still gets 200."""
    for i in range(5):
        abort_upload(url)
        wait_for(lambda n=i + 1: settled(url, n), "the server to settle the upload")
    assert counters(url) == {"state": "CLOSED", "success": 0, "failure": 0, "neutral": 5}
    assert httpx.get(f"{url}/", timeout=10).status_code == 200


def test_real_failures_still_open_the_breaker(url: str) -> None:
    """After five aborted uploads, three real exceptions (max_failures) open the circuit."""
    for i in range(5):
        abort_upload(url)
        wait_for(lambda n=i + 1: settled(url, n), "the server to settle the upload")
    # One connection each: uvicorn closes the connection of a request whose app raised.
    failures = [httpx.get(f"{url}/boom", timeout=10).status_code for _ in range(3)]
    healthy = httpx.get(f"{url}/", timeout=10).status_code
    assert failures == [500, 500, 500]
    assert healthy == 503
    assert counters(url) == {"state": "OPEN", "success": 0, "failure": 3, "neutral": 5}


def test_client_leaving_a_stream_is_neutral(url: str) -> None:
    """A client that hangs up mid-stream counts as neutral, neither success nor failure."""
    for i in range(3):
        abort_stream(url)
        wait_for(lambda n=i + 1: settled(url, n), "the server to settle the stream")
    assert counters(url) == {"state": "CLOSED", "success": 0, "failure": 0, "neutral": 3}
