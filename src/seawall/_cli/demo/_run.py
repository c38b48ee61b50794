"""One demo run: two uvicorn servers, the traffic, the live display, shutdown and summary.

By default everything runs in one process on one asyncio loop: the upstream and the protected
service are each a ``uvicorn.Server`` on a free loopback port, served from a task (on trio,
uvicorn, which needs asyncio, gets a loop in a thread of its own, see :mod:`._servers`);
with ``workers`` the service runs as worker processes instead (:mod:`._workers`); with
``adaptive`` the service, the upstream and the traffic are those of :mod:`._adaptive`. When the
traffic ends the service is stopped the way a deployment stops it: uvicorn drains its
connections, then the lifespan hook refuses new requests, waits for those in flight and runs
the ``GracefulShutdown`` callbacks.
"""

from __future__ import annotations

import signal
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TextIO

import anyio
import anyio.abc

from ..._clock import SYSTEM_CLOCK
from ...stores._base import Store
from ._adaptive import AdaptiveBackend, CapacityUpstream
from ._adaptive_traffic import AdaptiveTraffic
from ._backends import Backend, InProcess
from ._display import AdaptiveStatus, Display, Snapshot
from ._narration import SHED_ORDER
from ._schedule import Schedule, build_adaptive_schedule, build_schedule
from ._servers import Running
from ._service import MIDDLEWARE_PREFIX, POLICY_NAMES
from ._traffic import OUTCOMES, Traffic
from ._upstream import Upstream
from ._workers import WorkerPool

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
    workers: int = 1
    interrupted_at: float | None = None
    """Seconds into the traffic when Ctrl-C ended it early (None: it ran to the end)."""
    adaptive: AdaptiveStatus | None = None
    """``--adaptive`` only: the bulkhead's figures at the end, from its events."""
    shed_seen: dict[str, int] = field(default_factory=dict)
    """``--adaptive`` only: the shed 503s the clients got, by priority."""

    def count(self, name: str, old: str, new: str) -> int:
        """How many times breaker ``name`` went from ``old`` to ``new``."""
        return self.transitions.count((name, old, new))

    @property
    def consistent(self) -> bool:
        """Every request is in one bucket, and the service's counts equal the clients'."""
        if sum(self.seen.values()) != self.sent:
            return False
        client = {k: v for k, v in self.seen.items() if k != "error" and v}
        if client != {k: v for k, v in self.served.items() if v}:
            return False
        if self.adaptive is None:
            return True
        # The bulkhead's Rejected events, by priority, against the clients' own 503s.
        shed = self.adaptive.shed
        return all(shed.get(p, 0) == self.shed_seen.get(p, 0) for p in SHED_ORDER)


class _Stopwatch:
    def __init__(self) -> None:
        self._start = SYSTEM_CLOCK.monotonic()

    def restart(self) -> None:
        self._start = SYSTEM_CLOCK.monotonic()

    def __call__(self) -> float:
        return SYSTEM_CLOCK.monotonic() - self._start

    def since(self, monotonic: float) -> float:
        """Seconds from the start to ``monotonic`` (a reading of the same clock)."""
        return monotonic - self._start


async def run(
    out: TextIO,
    *,
    duration: float,
    store: Store | None,
    seed: int,
    live: bool,
    workers: int = 1,
    adaptive: bool = False,
) -> DemoResult:
    """Run the demo, printing to ``out``; ``store`` None keeps state in the process.

    ``workers`` above 1 runs the service as that many processes sharing ``store`` (which
    must then be a file or Redis store). ``adaptive`` runs the adaptive shedding demo instead
    (one process, no store).
    """
    schedule = build_adaptive_schedule(duration) if adaptive else build_schedule(duration)
    if workers > 1 and store is None:
        raise ValueError("workers share their state through a store: pass a file or Redis store")
    if adaptive and (workers > 1 or store is not None):
        raise ValueError("the adaptive demo runs in one process, without a store")
    try:
        if store is not None:
            # Start from a clean slate: runs must not inherit state (the middleware's policies
            # are named after the limits they keep, so find them by prefix).
            found = {p.name for p in store.status() if p.name.startswith(MIDDLEWARE_PREFIX + ":")}
            for name in (*POLICY_NAMES, *sorted(found)):
                store.reset(name)
        demo = _Demo(
            out, schedule, store=store, seed=seed, live=live, workers=workers, adaptive=adaptive
        )
        return await demo.run()
    finally:
        if store is not None:
            await store.aclose()


class _Demo:
    """The pieces of one run, wired together (it is the backend's :class:`Hooks`)."""

    def __init__(
        self,
        out: TextIO,
        schedule: Schedule,
        *,
        store: Store | None,
        seed: int,
        live: bool,
        workers: int,
        adaptive: bool = False,
    ) -> None:
        self.out = out
        self.store = store
        self.clock = _Stopwatch()
        self.display = Display(out, schedule, live=live)
        self.transitions: list[tuple[str, str, str]] = []
        self.upstream: Upstream | CapacityUpstream
        self.upstream = (
            CapacityUpstream(seed=seed) if adaptive else Upstream(schedule, self.clock, seed=seed)
        )
        self.upstream_server = Running(self.upstream.app, "upstream")
        url = self.upstream_server.url
        self.backend: Backend
        self.adaptive: AdaptiveBackend | None = None
        if adaptive:
            self.adaptive = self.backend = AdaptiveBackend(url)
        elif workers == 1:
            self.backend = InProcess(url, store=store, seed=seed, hooks=self)
        else:
            assert store is not None
            self.backend = WorkerPool(workers, url, store=store, seed=seed, hooks=self)
        self.workers = workers
        self.traffic: Traffic | None = None
        self.interrupted_at: float | None = None
        # On trio the in-process service runs in a thread of its own (uvicorn needs asyncio):
        # its breaker transitions are printed by the run's own thread, in order, at once.
        self._loop_thread = threading.get_ident()
        self._pending: deque[tuple[float, str]] = deque()

    # -- Hooks --------------------------------------------------------------------------------

    def transition(self, name: str, old: str, new: str, reason: str, at: float | None) -> None:
        self.transitions.append((name, old, new))
        elapsed = self.clock() if at is None else self.clock.since(at)
        line = (elapsed, f"breaker {name}: {old} -> {new} ({reason})")
        if threading.get_ident() == self._loop_thread:
            self._flush()
            self.display.event(*line)
        else:
            self._pending.append(line)

    def _flush(self) -> None:
        while self._pending:
            self.display.event(*self._pending.popleft())

    def note(self, text: str) -> None:
        self.display.note(text)

    def say(self, text: str) -> None:
        self._flush()
        self.display.event(self.clock(), text)

    # -- the run ------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        traffic = self.traffic
        assert traffic is not None
        self._flush()
        states = {label: b.state.name for label, b in self.backend.breakers.items()}
        return Snapshot(
            self.clock(),
            traffic.sent,
            dict(traffic.seen),
            self.backend.retries(),
            states,
            self.backend.degraded_decisions(),
            dict(traffic.by_group),
            None if self.adaptive is None else self.adaptive.watch.status(),
        )

    async def run(self) -> DemoResult:
        where = "memory:// (in-process)" if self.store is None else self.store.url
        service = "1 process" if self.workers == 1 else f"{self.workers} worker processes"
        if self.adaptive is not None:
            self.out.write(
                f"seawall demo --adaptive: {self.display.duration:g} s, adaptive concurrency "
                "limit in one process\n"
            )
        else:
            self.out.write(f"seawall demo: {self.display.duration:g} s, store {where}\n")
        async with anyio.create_task_group() as tg:
            watching = anyio.CancelScope()
            await tg.start(self._watch_interrupt, watching)
            tg.start_soon(self.upstream_server.serve)
            await self.upstream_server.wait_started()
            await self.backend.start(tg)
            self.out.write(
                f"  upstream: {self.upstream_server.url}\n"
                f"  protected service ({service}): {' '.join(self.backend.urls)}\n"
            )
            kind = Traffic if self.adaptive is None else AdaptiveTraffic
            traffic = kind(self.backend.urls, self.display.schedule, self.clock, self.say)
            self.traffic = traffic
            if self.interrupted_at is not None:
                traffic.stop()  # Ctrl-C while the servers started: no traffic at all
            await self._drive(traffic)
            await self._shut_down()
            watching.cancel()
        return self._result(traffic)

    async def _watch_interrupt(
        self, scope: anyio.CancelScope, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        # Ctrl-C ends the traffic early instead of tearing the servers down mid-request (which
        # makes uvicorn log a traceback per request in flight): the run then shuts down as
        # usual and the summary covers what ran. A second Ctrl-C interrupts outright.
        with scope, anyio.open_signal_receiver(signal.SIGINT) as signals:
            task_status.started()
            async for _ in signals:
                self.interrupted_at = self.clock()
                self.say("interrupted: the clients stop after their request in flight")
                if self.traffic is not None:
                    self.traffic.stop()
                break

    async def _drive(self, traffic: Traffic) -> None:
        self.clock.restart()
        async with anyio.create_task_group() as shown:
            shown.start_soon(self.display.run, self.snapshot)
            shown.start_soon(self.display.announce_phases, self.snapshot)
            await traffic.run()
            shown.cancel_scope.cancel()
        last = self.snapshot()
        self.display.update(last)
        self.display.end_phase(last)
        self.display.finish()

    async def _shut_down(self) -> None:
        self.say("traffic over: stopping the service (drain, then shutdown callbacks)")
        await self.backend.stop()
        self.say(f"shutdown callbacks ran: {', '.join(self.backend.shutdown_ran)}")
        await self.upstream_server.stop()
        self._flush()

    def _result(self, traffic: Traffic) -> DemoResult:
        backend = self.backend
        return DemoResult(
            sent=traffic.sent,
            seen={key: traffic.seen[key] for key in OUTCOMES},
            served=dict(backend.served),
            upstream=dict(sorted(self.upstream.answered.items())),
            retries=backend.retries(),
            degraded_decisions=backend.degraded_decisions(),
            transitions=self.transitions,
            final_states={b.name or k: b.state.name for k, b in backend.breakers.items()},
            shutdown_ran=list(backend.shutdown_ran),
            workers=self.workers,
            interrupted_at=self.interrupted_at,
            adaptive=None if self.adaptive is None else self.adaptive.watch.status(),
            shed_seen={}
            if self.adaptive is None
            else {p: traffic.by_group[p, "overloaded"] for p in SHED_ORDER},
        )
