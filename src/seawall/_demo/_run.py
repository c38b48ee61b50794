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
from .._events import DegradedDecision, StoreDegraded, add_listener
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
    degraded_decisions: int
    """Decisions policies made without their store (it did not answer in time)."""
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
    demo = _Demo(out, schedule, store=store, seed=seed, live=live)
    with add_listener(demo.on_event):
        return await demo.run()


class _Demo:
    """The pieces of one run, wired together."""

    def __init__(
        self, out: TextIO, schedule: Schedule, *, store: Store | None, seed: int, live: bool
    ) -> None:
        self.out = out
        self.store = store
        self.clock = _Stopwatch()
        self.display = Display(out, schedule, live=live)
        self.transitions: list[tuple[str, str, str]] = []
        self.degraded_decisions = 0
        self.upstream = Upstream(schedule, self.clock, seed=seed)
        self.upstream_server = _Running(self.upstream.app, "upstream")
        self.service = Service(
            self.upstream_server.url, store=store, seed=seed, on_change=self.on_change
        )
        self.service_server = _Running(self.service.app, "service")
        self.traffic = Traffic(self.service_server.url, schedule, self.clock, self.say)
        self.breakers = {
            "app breaker": self.service.app_breaker,
            "upstream breaker": self.service.upstream_breaker,
        }

    # -- what the policies report -------------------------------------------------------------

    def say(self, text: str) -> None:
        self.display.event(self.clock(), text)

    def on_change(self, event: CircuitStateChange) -> None:
        name = event.name or "?"
        self.transitions.append((name, event.old.name, event.new.name))
        self.say(f"breaker {name}: {event.old.name} -> {event.new.name} ({event.reason})")

    def on_event(self, event: object) -> None:
        # Store events may come from any thread: count them, and queue the text for the
        # display, which prints it from the loop.
        if isinstance(event, DegradedDecision):
            self.degraded_decisions += 1
        elif isinstance(event, StoreDegraded):
            what = "is not answering" if event.active else "answers again"
            self.display.note(
                f"store {event.store_url} {what}: {event.policy} {event.name} "
                f"decides {event.mode!r} meanwhile"
            )

    def snapshot(self) -> Snapshot:
        states = {label: b.state.name for label, b in self.breakers.items()}
        return Snapshot(
            self.clock(),
            self.traffic.sent,
            self.traffic.seen,
            self.service.budget.retries,
            states,
            self.degraded_decisions,
        )

    # -- the run ------------------------------------------------------------------------------

    async def run(self) -> DemoResult:
        where = "memory:// (in-process)" if self.store is None else self.store.url
        self.out.write(f"seawall demo: {self.display.duration:g} s, store {where}\n")
        self.out.write(
            f"  upstream {self.upstream_server.url}   protected service {self.service_server.url}\n"
        )
        async with anyio.create_task_group() as servers:
            servers.start_soon(self.upstream_server.serve)
            servers.start_soon(self.service_server.serve)
            await self.upstream_server.wait_started()
            await self.service_server.wait_started()
            await self._traffic()
            await self._shut_down()
        return self._result()

    async def _traffic(self) -> None:
        self.clock.restart()
        async with anyio.create_task_group() as shown:
            shown.start_soon(self.display.run, self.snapshot)
            shown.start_soon(self.display.announce_phases, self.clock)
            await self.traffic.run()
            shown.cancel_scope.cancel()
        self.display.update(self.snapshot())
        self.display.finish()

    async def _shut_down(self) -> None:
        self.say("traffic over: stopping the service (drain, then shutdown callbacks)")
        await self.service_server.stop()
        self.say(f"shutdown callbacks ran: {', '.join(self.service.shutdown_ran)}")
        await self.upstream_server.stop()

    def _result(self) -> DemoResult:
        return DemoResult(
            sent=self.traffic.sent,
            seen={key: self.traffic.seen[key] for key in OUTCOMES},
            served=dict(self.service.served),
            upstream=dict(sorted(self.upstream.answered.items())),
            retries=self.service.budget.retries,
            degraded_decisions=self.degraded_decisions,
            transitions=self.transitions,
            final_states={b.name or k: b.state.name for k, b in self.breakers.items()},
            shutdown_ran=list(self.service.shutdown_ran),
        )
