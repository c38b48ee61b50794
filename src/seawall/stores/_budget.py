"""A retry budget kept in a store, so a fleet of processes shares one budget.

The in-process :class:`~seawall.RetryBudget` counts calls and retries over a sliding window.
Kept in a store, that rule would cost a round trip on every call. The store keeps a token
bucket instead, the simplest state a store can update exactly in one step:

* it holds at most ``minimum_per_second * window`` tokens (the floor's share of a window: what
  a quiet stretch can save up) and refills by ``minimum_per_second`` per second;
* every call puts ``ratio`` tokens in. Calls are counted in the process (no I/O) and their
  tokens travel with that process's next retry decision;
* a retry takes one token if it is there now (:meth:`Store.withdraw`, one round trip: the
  deposit, then the withdrawal, in one atomic step).

So over any stretch of ``t`` seconds the fleet retries at most ``minimum_per_second * window +
ratio * calls + minimum_per_second * t`` times, the in-memory rule's bound, with the saved-up
part capped (an outage that starts after a busy minute cannot unleash that minute's whole
allowance at once). A process that never retries never sends its deposits: the fleet's
budget then funds retries from the calls of the processes that retry, which is stricter,
never looser.

When the store does not answer, the caller decides in its degraded mode. A withdrawal whose
answer was lost may still have run: its deposit is not sent again and the token it may have
taken stays taken, so a lost answer can cost the fleet one retry, never grant one more.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable

from .._clock import Clock
from ._base import LimiterSpec, Reservation, Store
from ._degraded import Degraded, StoreGuard

__all__ = ["SharedBudget"]


class SharedBudget:
    """The store side of a shared retry budget; see the module docstring."""

    __slots__ = ("_lock", "_pending", "_ratio", "guard", "spec")

    def __init__(
        self,
        store: Store,
        mode: str,
        name: str,
        *,
        ratio: float,
        minimum_per_second: float,
        window: int,
        clock: Clock,
    ) -> None:
        capacity = minimum_per_second * window
        if minimum_per_second <= 0 or capacity < 1:
            raise ValueError(
                "a RetryBudget kept in a store needs minimum_per_second > 0 and "
                "minimum_per_second * window >= 1 (its bucket refills at the floor and holds "
                f"at least one retry), got minimum_per_second={minimum_per_second!r}, "
                f"window={window!r}"
            )
        self.spec = LimiterSpec(
            f"retry-budget:{name}", interval=1.0 / minimum_per_second, burst=capacity
        )
        self.guard = StoreGuard(store, mode, "retry budget", name, clock)
        self._ratio = ratio
        self._pending = 0.0
        self._lock = threading.Lock()

    def record_call(self) -> None:
        """Count one call: its ``ratio`` tokens go with the next withdrawal."""
        with self._lock:
            self._pending += self._ratio

    def _take_pending(self) -> float:
        with self._lock:
            deposit, self._pending = self._pending, 0.0
        return deposit

    def _give_back(self, deposit: float) -> None:
        with self._lock:
            self._pending += deposit

    def withdraw(self) -> bool | None:
        """Deposit what the calls earned and take one retry: granted or not; None if degraded."""
        deposit = self._take_pending()
        sent: list[bool] = []

        def operation() -> Reservation:
            sent.append(True)
            return self.guard.store.withdraw(self.spec, None, deposit)

        return self._granted(self.guard.ask(operation), deposit, sent)

    async def awithdraw(self) -> bool | None:
        """:meth:`withdraw` without blocking the event loop."""
        deposit = self._take_pending()
        sent: list[bool] = []

        def operation() -> Awaitable[Reservation]:
            sent.append(True)
            return self.guard.store.awithdraw(self.spec, None, deposit)

        return self._granted(await self.guard.aask(operation), deposit, sent)

    def _granted(
        self, answer: Reservation | Degraded, deposit: float, sent: list[bool]
    ) -> bool | None:
        if isinstance(answer, Degraded):
            if not sent:
                self._give_back(deposit)  # never asked (backing off): the calls still count
            return None
        return answer.wait == 0.0
