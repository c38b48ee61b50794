"""One worker process of ``seawall demo --workers N``: an instance of the protected service.

Started by :class:`~seawall._cli.demo._workers.WorkerPool` as
``python -m seawall._cli.demo._worker --upstream URL --seed N``, with the store's URL in the
environment variable ``SEAWALL_DEMO_WORKER_STORE`` (a command line is readable by every user).
It serves the service on a free loopback port and reports on stdout, one JSON object per line::

    {"kind": "ready", "url": ...}                     once it accepts connections
    {"kind": "breaker", "name", "old", "new", "reason", "at"}   each transition it causes
    {"kind": "stats", "retries": n, "degraded": n}    four times a second
    {"kind": "note", "text": ...}                     the store stopped or resumed answering
    {"kind": "report", "served", "retries", "degraded", "shutdown_ran"}   after shutdown

SIGTERM stops it gracefully: uvicorn drains, the lifespan hook runs the shutdown callbacks,
the report is printed and the process exits 0. SIGINT is ignored: Ctrl-C in a terminal reaches
the whole process group, and it is the demo process that decides (it lets the clients finish
their requests, then sends SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

import anyio

from ..._breaker.breaker import CircuitStateChange
from ..._clock import SYSTEM_CLOCK
from ..._events import DegradedDecision, StoreDegraded, add_listener
from ...stores import open_store
from ._backends import STORE_VARIABLE, store_note
from ._servers import Running
from ._service import Service

__all__ = ["main"]

_lock = threading.Lock()


def _emit(**message: Any) -> None:
    # Store events may arrive on other threads: one whole line at a time.
    with _lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


class _Worker:
    def __init__(self, upstream: str, store_url: str, seed: int) -> None:
        self.store = open_store(store_url, timeout=0.5)
        self.degraded = 0
        self.service = Service(upstream, store=self.store, seed=seed, on_change=self._changed)
        self.server = Running(self.service.app, "worker")

    def _changed(self, event: CircuitStateChange) -> None:
        _emit(
            kind="breaker",
            name=event.name,
            old=event.old.name,
            new=event.new.name,
            reason=event.reason,
            at=SYSTEM_CLOCK.monotonic(),
        )

    def event(self, event: object) -> None:
        if isinstance(event, DegradedDecision):
            self.degraded += 1
        elif isinstance(event, StoreDegraded):
            _emit(kind="note", text=store_note(event))

    async def serve(self) -> None:
        # The signal receiver is in place before "ready": from then on SIGTERM means "stop".
        with anyio.open_signal_receiver(signal.SIGTERM) as signals:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.server.serve)
                await self.server.wait_started()
                _emit(kind="ready", url=self.server.url)
                tg.start_soon(self._stats)
                async for _ in signals:
                    break
                await self.server.stop()
                tg.cancel_scope.cancel()
        await self.store.aclose()
        _emit(
            kind="report",
            served=dict(self.service.served),
            retries=self.service.budget.retries,
            degraded=self.degraded,
            shutdown_ran=self.service.shutdown_ran,
        )

    async def _stats(self) -> None:
        while True:
            _emit(kind="stats", retries=self.service.budget.retries, degraded=self.degraded)
            await SYSTEM_CLOCK.asleep(0.25)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one worker until SIGTERM; exit status 0 after a graceful shutdown."""
    parser = argparse.ArgumentParser(prog="python -m seawall._cli.demo._worker")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    store_url = os.environ.get(STORE_VARIABLE)
    if not store_url:
        parser.error(f"the environment variable {STORE_VARIABLE} must give the store's URL")
    worker = _Worker(args.upstream, store_url, args.seed)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with add_listener(worker.event):
        anyio.run(worker.serve, backend="asyncio")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
