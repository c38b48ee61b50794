"""What an admitted request reports once it is done, batched: its slot and its outcome.

After the response, each request of the middleware's one-round-trip admission (see
``_admission``) owes the store two things: its bulkhead slot back and its breaker outcome.
They travel together (one :class:`~seawall.stores._base.Settlement`), and requests that finish
while a batch is on its way queue up: the next batch carries them all, in one
``Store.asettle_requests`` (one script call on Redis). No task or thread is started for it:
the first request to find no batch in flight sends one (the leader) and keeps sending until
nothing is queued, shielded from cancellation on asyncio and trio; a request that finds a
leader at work queues its settlement and is done (it has nothing to wait for: its response is
sent, and the leader's loop carries its settlement). A process that dies with settlements
queued loses them to the store's own expiry: the leases end, and a half-open probe's slot
comes back after ``stale_attempt_timeout``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from .._breaker.breaker import CircuitBreaker, CircuitPermit
from .._core.breaker import NEUTRAL, Ticket
from ..stores._base import Settlement

__all__ = ["Batcher", "Told", "told_permit"]


class Told:
    """The outcome a request's app reported (neutral until it reports one)."""

    __slots__ = ("outcome",)

    def __init__(self) -> None:
        self.outcome = NEUTRAL


class _TellingPermit(CircuitPermit):
    """A breaker permit that keeps the outcome for the request's settlement."""

    __slots__ = ("_told",)

    def __init__(self, breaker: CircuitBreaker, ticket: Ticket, told: Told) -> None:
        super().__init__(breaker, ticket, 0.0)
        self._told = told

    def _report(self, outcome: int) -> None:
        if self._ticket is not None:
            self._ticket = None
            self._told.outcome = outcome

    async def _areport(self, outcome: int) -> None:
        self._report(outcome)


def told_permit(breaker: CircuitBreaker, ticket: Ticket, told: Told) -> CircuitPermit:
    """A permit for ``ticket`` whose outcome lands in ``told`` (settled once, like any)."""
    return _TellingPermit(breaker, ticket, told)


class Batcher:
    """Leader/follower coalescing of settlements: one call carries everything queued.

    ``send`` delivers one batch and never raises (it handles a store outage itself).
    """

    __slots__ = ("_leading", "_queue", "_send", "batches")

    def __init__(self, send: Callable[[list[Settlement]], Awaitable[None]]) -> None:
        self._send = send
        self._queue: list[Settlement] = []
        self._leading = False
        self.batches = 0
        """Batches sent so far (for tests and benchmarks)."""

    async def add(self, item: Settlement) -> None:
        """Queue ``item``; send batches until nothing is queued, unless a leader already is.

        A follower returns at once: the leader's loop carries what it queued, so a follower
        waits for nothing (no task switch, no event, no cancel scope on every request).
        """
        self._queue.append(item)
        if self._leading:
            return
        self._leading = True
        try:
            with anyio.CancelScope(shield=True):
                while self._queue:
                    batch, self._queue = self._queue, []
                    self.batches += 1
                    await self._send(batch)
        finally:
            self._leading = False
