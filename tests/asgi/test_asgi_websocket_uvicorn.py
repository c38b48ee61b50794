"""WebSocket gates under a real uvicorn server, with a real websockets client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    """
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from seawall.asgi import ResilienceMiddleware

    async def echo(websocket):
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(text)

    app = Starlette(routes=[WebSocketRoute("/ws", echo)])
    app.add_middleware(
        ResilienceMiddleware, websocket_limit="2/minute", websocket_message_rate="2/minute"
    )
    """
)


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    """A uvicorn (websockets implementation) serving APP on a free port."""
    (tmp_path / "ws_app.py").write_text(APP)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--app-dir", str(tmp_path), "ws_app:app",
            "--host", "127.0.0.1", "--port", str(port), "--ws", "websockets",
            "--no-access-log", "--lifespan", "off",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, process.communicate()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
    try:
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        process.kill()
        process.communicate(timeout=30)


def test_third_handshake_is_refused_with_429(url: str) -> None:
    """Two connections of 2/minute open; the third handshake gets HTTP 429 with Retry-After."""
    for _ in range(2):
        with connect(url) as ws:
            ws.send("hi")
            assert ws.recv(timeout=10) == "hi"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=10)
    response = refused.value.response
    assert response.status_code == 429
    # The real clock runs between handshakes: 30 s less the time they took, rounded up.
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 30
    assert response.headers["RateLimit"] == f'"websocket";r=0;t={retry_after}'


def test_message_beyond_the_rate_closes_with_1008(url: str) -> None:
    """At 2/minute per connection, the third message gets the connection closed with 1008."""
    with connect(url) as ws:
        ws.send("a")
        ws.send("b")
        ws.send("c")
        assert [ws.recv(timeout=10), ws.recv(timeout=10)] == ["a", "b"]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
