"""Where the protected service runs: in the demo's process, or in worker processes.

Either way the run sees the same surface (:class:`Backend`): the URLs to send traffic to, the
two breakers to watch, live retry and degraded-decision counts, and, once stopped, the
service's own tallies. Breaker transitions and store notes are reported through
:class:`Hooks` as they happen.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol

import anyio.abc

from ..._breaker.breaker import CircuitBreaker, CircuitStateChange
from ..._events import DegradedDecision, Event, StoreDegraded, Subscription, add_listener
from ...stores._base import Store
from ._servers import Running
from ._service import Service

__all__ = ["STORE_VARIABLE", "Backend", "Hooks", "InProcess", "ServedHere", "store_note"]

STORE_VARIABLE = "SEAWALL_DEMO_WORKER_STORE"
"""The environment variable a worker process finds its store URL in (never its command line)."""


class Hooks(Protocol):
    """What a backend tells the run while it runs."""

    def transition(self, name: str, old: str, new: str, reason: str, at: float | None) -> None:
        """A breaker changed state (``at``: monotonic time, None for now)."""

    def note(self, text: str) -> None:
        """Something worth a line, reported from any thread."""


class Backend(Protocol):
    """One or more instances of the protected service."""

    urls: list[str]
    breakers: dict[str, CircuitBreaker]
    served: Counter[str]
    shutdown_ran: list[str]

    async def start(self, tg: anyio.abc.TaskGroup) -> None: ...
    async def stop(self) -> None: ...
    def retries(self) -> int: ...
    def degraded_decisions(self) -> int: ...


def store_note(event: StoreDegraded) -> str:
    """The line announcing that a store stopped (or resumed) answering a policy."""
    what = "is not answering" if event.active else "answers again"
    return (
        f"store {event.store_url} {what}: {event.policy} {event.name} "
        f"decides {event.mode!r} meanwhile"
    )


class ServedHere:
    """Start and stop of a service served from this process: uvicorn in a task, and an event
    listener (``_on_event``) for as long as it runs."""

    _server: Running
    _subscription: Subscription | None = None

    def _on_event(self, event: Event) -> None:
        """What the service's events tell the run (each backend its own)."""

    async def start(self, tg: anyio.abc.TaskGroup) -> None:
        self._subscription = add_listener(self._on_event)
        tg.start_soon(self._server.serve)
        await self._server.wait_started()

    async def stop(self) -> None:
        try:
            await self._server.stop()
        finally:
            if self._subscription is not None:
                self._subscription.remove()


class InProcess(ServedHere):
    """The service in this process, served by uvicorn from a task."""

    def __init__(self, upstream_url: str, *, store: Store | None, seed: int, hooks: Hooks) -> None:
        self._hooks = hooks
        self.service = Service(upstream_url, store=store, seed=seed, on_change=self._changed)
        self._server = Running(self.service.app, "service")
        self.urls = [self._server.url]
        self.breakers = {
            "app breaker": self.service.app_breaker,
            "upstream breaker": self.service.upstream_breaker,
        }
        self.served = self.service.served
        self.shutdown_ran = self.service.shutdown_ran
        self._degraded = 0

    def _changed(self, event: CircuitStateChange) -> None:
        self._hooks.transition(
            event.name or "?", event.old.name, event.new.name, event.reason, None
        )

    def _on_event(self, event: Event) -> None:
        if isinstance(event, DegradedDecision):
            self._degraded += 1
        elif isinstance(event, StoreDegraded):
            self._hooks.note(store_note(event))

    def retries(self) -> int:
        return self.service.budget.retries

    def degraded_decisions(self) -> int:
        return self._degraded
