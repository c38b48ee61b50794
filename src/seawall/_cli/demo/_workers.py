"""``seawall demo --workers N``: the protected service as N worker processes sharing a store.

Each worker (:mod:`seawall._cli.demo._worker`) serves its own instance of the service on its own
port; the traffic goes to them in turn. Their breakers and the upstream host limiter live in
the shared store, so a breaker one worker trips fails fast in every worker. This process
watches the shared breakers through its own store handle, relays each worker's JSON lines
(transitions, stats, notes) and adds up their reports after SIGTERM has stopped them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from typing import Any

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from ..._breaker.breaker import CircuitBreaker
from ...stores._base import Store
from ...stores._open import reopen_url
from ._backends import STORE_VARIABLE, Hooks
from ._service import breakers

__all__ = ["WorkerPool"]

_START_TIMEOUT = 60.0


class _Child:
    """One worker process and what it last reported."""

    def __init__(self, index: int, process: anyio.abc.Process) -> None:
        self.index = index
        self.process = process
        self.ready = anyio.Event()
        self.finished = anyio.Event()
        self.url = ""
        self.retries = 0
        self.degraded = 0
        self.report: dict[str, Any] | None = None


class WorkerPool:
    """``count`` worker processes over ``store`` (which must be shared: file or Redis)."""

    def __init__(
        self, count: int, upstream_url: str, *, store: Store, seed: int, hooks: Hooks
    ) -> None:
        self._count = count
        self._upstream = upstream_url
        self._store = store
        self._seed = seed
        self._hooks = hooks
        self._children: list[_Child] = []
        self.urls: list[str] = []
        own, host = breakers(store)
        self.breakers: dict[str, CircuitBreaker] = {"app breaker": own, "upstream breaker": host}
        self.served: Counter[str] = Counter()
        self.shutdown_ran: list[str] = []

    async def start(self, tg: anyio.abc.TaskGroup) -> None:
        for index in range(self._count):
            process = await anyio.open_process(
                self._command(index), stdin=subprocess.DEVNULL, stderr=None, env=self._env()
            )
            child = _Child(index, process)
            self._children.append(child)
            tg.start_soon(self._relay, child)
        with anyio.fail_after(_START_TIMEOUT):
            for child in self._children:
                await child.ready.wait()
        self.urls = [child.url for child in self._children]

    def _command(self, index: int) -> list[str]:
        return [
            sys.executable, "-m", "seawall._cli.demo._worker",
            "--upstream", self._upstream,
            "--seed", str(self._seed + index),
        ]  # fmt: skip

    def _env(self) -> dict[str, str]:
        # The store URL may carry a password: a command line is readable by every user of the
        # machine (ps, /proc/PID/cmdline), a process's environment only by its owner.
        return {**os.environ, STORE_VARIABLE: reopen_url(self._store)}

    async def _relay(self, child: _Child) -> None:
        assert child.process.stdout is not None
        lines = BufferedByteReceiveStream(child.process.stdout)
        try:
            while True:
                self._handle(child, json.loads(await lines.receive_until(b"\n", 1 << 20)))
        except (anyio.EndOfStream, anyio.IncompleteRead):
            pass
        finally:
            child.finished.set()
            child.ready.set()  # a worker that died before "ready" must not hang start()

    def _handle(self, child: _Child, message: dict[str, Any]) -> None:
        kind = message["kind"]
        if kind == "ready":
            child.url = message["url"]
            child.ready.set()
        elif kind == "breaker":
            self._hooks.transition(
                message["name"], message["old"], message["new"], message["reason"], message["at"]
            )
        elif kind == "stats":
            child.retries, child.degraded = message["retries"], message["degraded"]
        elif kind == "note":
            self._hooks.note(f"worker {child.index}: {message['text']}")
        elif kind == "report":
            child.report = message
            child.retries, child.degraded = message["retries"], message["degraded"]

    async def stop(self) -> None:
        """SIGTERM every worker, wait for each, and add up their reports."""
        for child in self._children:
            if child.process.returncode is None:
                child.process.terminate()
        for child in self._children:
            status = await child.process.wait()
            await child.finished.wait()
            if status != 0 or child.report is None:
                raise RuntimeError(f"demo worker {child.index} failed (exit status {status})")
            self.served.update(child.report["served"])
            self.shutdown_ran.extend(child.report["shutdown_ran"])

    def retries(self) -> int:
        return sum(child.retries for child in self._children)

    def degraded_decisions(self) -> int:
        return sum(child.degraded for child in self._children)
