"""uvicorn servers the demo runs from a task, on free loopback ports.

uvicorn runs on asyncio only. On asyncio a server is served by a task of the demo's own loop;
on trio it gets an asyncio loop in a thread of its own (the run's task waits for that thread),
so the clients, the display and the run's control flow stay on trio.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import anyio
import uvicorn

from ..._clock import SYSTEM_CLOCK

__all__ = ["Running"]


class _Server(uvicorn.Server):
    # Signals are the demo's to handle (Ctrl-C reaches it as KeyboardInterrupt; a worker
    # turns SIGTERM into stop()), not each server's.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _on_trio() -> bool:
    # Called from async code only: with no asyncio loop in this thread, it is a trio run.
    # (trio.lowlevel.in_trio_run would say so directly, but trio 0.27, our floor, lacks it.)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return True
    return False


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class Running:
    """A uvicorn server for ``app``: ``url`` at once, ``serve()`` in a task, ``stop()`` to end."""

    def __init__(self, app: Any, name: str) -> None:
        self._sock = _listening_socket()
        port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.name = name
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=3
        )
        self.server = _Server(config)
        self.done = anyio.Event()

    async def serve(self) -> None:
        """Serve until stopped (run it in a task)."""
        try:
            if not _on_trio():
                await self.server.serve([self._sock])
            else:
                await anyio.to_thread.run_sync(self._serve_on_asyncio, abandon_on_cancel=True)
        finally:
            # A cancelled trio task leaves its thread behind: this makes uvicorn end it soon.
            self.server.should_exit = True
            self._sock.close()
            self.done.set()

    def _serve_on_asyncio(self) -> None:
        anyio.run(self.server.serve, [self._sock], backend="asyncio")

    async def wait_started(self) -> None:
        """Return once the server accepts connections; RuntimeError if it cannot start."""
        deadline = SYSTEM_CLOCK.monotonic() + 15.0
        while not self.server.started:
            if self.done.is_set() or SYSTEM_CLOCK.monotonic() > deadline:
                raise RuntimeError(f"the demo's {self.name} server did not start")
            await SYSTEM_CLOCK.asleep(0.01)

    async def stop(self) -> None:
        """Shut down gracefully (drain, lifespan shutdown) and wait until done."""
        self.server.should_exit = True
        await self.done.wait()
