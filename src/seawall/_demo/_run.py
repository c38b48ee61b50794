"""One demo run: two uvicorn servers, the traffic, the live display, shutdown and summary.

Everything runs in one process on one asyncio loop (uvicorn needs asyncio): the upstream and
the protected service are each a ``uvicorn.Server`` on a free loopback port, served from a
task. When the traffic ends the service is stopped the way a deployment stops it: uvicorn
drains its connections, then the lifespan hook refuses new requests, waits for those in
flight and runs the ``GracefulShutdown`` callbacks.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO

import anyio
import uvicorn

from .._breaker import CircuitStateChange
from .._clock import SYSTEM_CLOCK
from ..stores import Store
from ._display import Display, Snapshot
from ._schedule import Schedule, build_schedule
from ._service import POLICY_NAMES, Service
from ._traffic import OUTCOMES, Traffic
from ._upstream import Upstream

__all__ = ["DemoResult", "run"]


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What one run did, from its own tallies."""

    sent: int
    seen: dict[str, int]
    """Outcomes as the clients saw them (every key of ``OUTCOMES``)."""
    served: dict[str, int]
    """Decisions as the service counted them (fresh, degraded, and each rejection reason)."""
    upstream: dict[int, int]
    """Responses the upstream sent, by status."""
    retries: int
    transitions: list[tuple[str, str, str]] = field(default_factory=list)
    """Breaker transitions in order: ``(breaker name, old state, new state)``."""
    final_states: dict[str, str] = field(default_factory=dict)
    shutdown_ran: list[str] = field(default_factory=list)

    def count(self, name: str, old: str, new: str) -> int:
        """How many times breaker ``name`` went from ``old`` to ``new``."""
        return self.transitions.count((name, old, new))

    @property
    def consistent(self) -> bool:
        """Every request is in one bucket, and the service's counts equal the clients'."""
        if sum(self.seen.values()) != self.sent:
            return False
        client = {k: v for k, v in self.seen.items() if k != "error" and v}
        return client == {k: v for k, v in self.served.items() if v}


class _Server(uvicorn.Server):
    # Ctrl-C must reach the demo as KeyboardInterrupt, not be captured by each server.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class _Stopwatch:
    def __init__(self) -> None:
        self._start = SYSTEM_CLOCK.monotonic()

    def restart(self) -> None:
        self._start = SYSTEM_CLOCK.monotonic()

    def __call__(self) -> float:
        return SYSTEM_CLOCK.monotonic() - self._start


class _Running:
    """A uvicorn server serving from a task; ``url`` once started, ``done`` once stopped."""

    def __init__(self, app: object, name: str) -> None:
        self._sock = _listening_socket()
        port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.name = name
        config = uvicorn.Config(
            app,  # type: ignore[arg-type]
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=3,
        )
        self.server = _Server(config)
        self.done = anyio.Event()

    async def serve(self) -> None:
        try:
            await self.server.serve([self._sock])
        finally:
            self._sock.close()
            self.done.set()

    async def wait_started(self) -> None:
        deadline = SYSTEM_CLOCK.monotonic() + 15.0
        while not self.server.started:
            if self.done.is_set() or SYSTEM_CLOCK.monotonic() > deadline:
                raise RuntimeError(f"the demo's {self.name} server did not start")
            await SYSTEM_CLOCK.asleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.done.wait()


async def run(
    out: TextIO, *, duration: float, store: Store | None, seed: int, live: bool
) -> DemoResult:
    """Run the demo, printing to ``out``; ``store`` None keeps state in the process."""
    schedule = build_schedule(duration)
    try:
        if store is not None:
            for name in POLICY_NAMES:  # start from a clean slate: runs must not inherit state
                store.reset(name)
        return await _run(out, schedule=schedule, store=store, seed=seed, live=live)
    finally:
        if store is not None:
            await store.aclose()


async def _run(
    out: TextIO, *, schedule: Schedule, store: Store | None, seed: int, live: bool
) -> DemoResult:
    clock = _Stopwatch()
    display = Display(out, schedule, live=live)
    transitions: list[tuple[str, str, str]] = []

    def on_change(event: CircuitStateChange) -> None:
        name = event.name or "?"
        transitions.append((name, event.old.name, event.new.name))
        display.event(
            clock(), f"breaker {name}: {event.old.name} -> {event.new.name} ({event.reason})"
        )

    upstream = Upstream(schedule, clock, seed=seed)
    upstream_server = _Running(upstream.app, "upstream")
    service = Service(upstream_server.url, store=store, seed=seed, on_change=on_change)
    service_server = _Running(service.app, "service")
    breakers = {"app breaker": service.app_breaker, "upstream breaker": service.upstream_breaker}
    traffic = Traffic(
        service_server.url, schedule, clock, lambda text: display.event(clock(), text)
    )

    def snapshot() -> Snapshot:
        states = {label: b.state.name for label, b in breakers.items()}
        return Snapshot(clock(), traffic.sent, traffic.seen, service.budget.retries, states)

    out.write(f"seawall demo: {schedule.duration:g} s, store {_describe(store)}\n")
    out.write(f"  upstream {upstream_server.url}   protected service {service_server.url}\n")
    async with anyio.create_task_group() as servers:
        servers.start_soon(upstream_server.serve)
        servers.start_soon(service_server.serve)
        await upstream_server.wait_started()
        await service_server.wait_started()
        clock.restart()
        async with anyio.create_task_group() as shown:
            shown.start_soon(display.run, snapshot)
            shown.start_soon(display.announce_phases, clock)
            await traffic.run()
            shown.cancel_scope.cancel()
        display.update(snapshot())
        display.finish()
        display.event(
            clock(), "traffic over: stopping the service (drain, then shutdown callbacks)"
        )
        await service_server.stop()
        display.event(clock(), f"shutdown callbacks ran: {', '.join(service.shutdown_ran)}")
        await upstream_server.stop()
    return DemoResult(
        sent=traffic.sent,
        seen={key: traffic.seen[key] for key in OUTCOMES},
        served=dict(service.served),
        upstream=dict(sorted(upstream.answered.items())),
        retries=service.budget.retries,
        transitions=transitions,
        final_states={b.name or label: b.state.name for label, b in breakers.items()},
        shutdown_ran=list(service.shutdown_ran),
    )


def _describe(store: Store | None) -> str:
    return "memory:// (in-process)" if store is None else store.url
