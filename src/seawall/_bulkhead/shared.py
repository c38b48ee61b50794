"""Bulkheads whose slots live in a store (file or Redis), shared across processes.

``Bulkhead(3, name="db", store=url)`` builds a :class:`SharedBulkhead`: at most three holders
across every process using that store. A slot is a store :class:`~seawall.stores.Hold`: a
flock-ed slot file (the kernel frees it the instant its holder dies, even by kill -9) or a
Redis lease (freed when its ``lease`` runs out if its holder vanished).

Processes cannot wake each other, so a caller that finds every slot held polls: it retries
after 5 ms, backing off by half each time up to 50 ms, until ``max_wait`` runs out. Waiters of
different processes are therefore not served in strict arrival order. The in-process bulkhead
the object still carries is the ``degraded="local"`` fallback.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import anyio

from .._core.validate import check_number
from .._errors import BulkheadFullError
from .._events import ACTIVE as _OBSERVED
from .._events import Rejected, emit
from .._redact import redact_url
from ..stores._base import BulkheadSpec, Hold, Store, StoreUnavailableError
from ..stores._degraded import Degraded, StoreGuard
from ..stores._open import store_for_policy
from .bulkhead import Bulkhead, BulkheadStats

__all__ = ["SharedBulkhead"]

P = ParamSpec("P")
R = TypeVar("R")

_FIRST_POLL = 0.005
_MAX_POLL = 0.05

# What a degraded admission holds instead of a store slot.
_LOCAL = "local"
_ALLOWED = "allowed"
_Held = Hold | str


class SharedBulkhead(Bulkhead, variant_of=Bulkhead):
    """A :class:`Bulkhead` whose slots live in a store; see the module docstring."""

    __slots__ = ("_counts", "_guard", "_held", "_held_lock", "_spec", "_store")

    def __init__(
        self,
        max_concurrent: int = 10,
        *,
        store: Store | str | None = None,
        degraded: str | None = None,
        lease: float = 5.0,
        name: str | None = None,
        **options: Any,
    ) -> None:
        found, degraded = store_for_policy(store, degraded, name, "bulkhead")
        if found is None or name is None:  # pragma: no cover - __new__ sends only these here
            raise TypeError("SharedBulkhead needs a store and a name")
        super().__init__(max_concurrent, name=name, **options)
        self._store = found
        self._spec = BulkheadSpec(name, self._core.max_concurrent, check_number("lease", lease))
        self._guard = StoreGuard(found, degraded, "bulkhead", name, self._clock)
        self._held: list[_Held] = []
        self._held_lock = threading.Lock()
        self._counts = [0, 0, 0]  # admitted, rejected, waited

    @property
    def store(self) -> Store:
        """Where the slots live."""
        return self._store

    @property
    def store_spec(self) -> BulkheadSpec:
        """What the store knows this policy by."""
        return self._spec

    @property
    def degraded_decisions(self) -> int:
        """Admissions decided without the store."""
        return self._guard.degraded_decisions

    @property
    def stats(self) -> BulkheadStats:
        """This process's counters; ``in_flight`` counts the holders of every process."""
        try:
            in_flight = self._store.holders(self._spec)
        except (StoreUnavailableError, OSError):
            in_flight = len(self._held)
        admitted, rejected, waited = self._counts
        return BulkheadStats(self._spec.max_concurrent, in_flight, 0, admitted, rejected, waited)

    # -- one attempt --------------------------------------------------------------------------

    def _attempt(self) -> _Held | None:
        hold = self._guard.ask(lambda: self._store.try_hold(self._spec))
        return self._degraded() if isinstance(hold, Degraded) else hold

    async def _aattempt(self) -> _Held | None:
        hold = await self._guard.aask(lambda: self._store.atry_hold(self._spec))
        return self._degraded() if isinstance(hold, Degraded) else hold

    def _degraded(self) -> _Held | None:
        mode = self._guard.mode
        if mode == "allow":
            return _ALLOWED
        if mode == "local" and Bulkhead._admit_now(self):
            return _LOCAL
        return None

    def _keep(self, held: _Held, waited: bool) -> None:
        with self._held_lock:
            self._held.append(held)
            self._counts[0] += 1
            self._counts[2] += waited

    def _refuse(self, why: str) -> BulkheadFullError:
        with self._held_lock:
            self._counts[1] += 1
        if _OBSERVED:
            emit(Rejected("bulkhead", self.name, "full", _MAX_POLL))
        return BulkheadFullError(
            f"Bulkhead {self.name!r} is full ({self._spec.max_concurrent} held across "
            f"processes): {why}",
            retry_after=_MAX_POLL,
        )

    # -- acquiring ------------------------------------------------------------------------------

    def try_acquire(self) -> bool:
        """Take a shared slot if one is free right now; never waits."""
        held = self._attempt()
        if held is None:
            self._refuse("no free slot")
            return False
        self._keep(held, False)
        return True

    def acquire(self, *, timeout: float | None = None) -> None:
        """Take a shared slot, polling up to ``timeout`` (None: ``max_wait``) seconds."""
        budget = self._budget(timeout)
        deadline = self._clock.monotonic() + budget
        pause = _FIRST_POLL
        waited = False
        while (held := self._attempt()) is None:
            left = deadline - self._clock.monotonic()
            if left <= 0:
                raise self._refuse(
                    "no free slot" if budget <= 0 else f"no slot within {budget:g} s"
                )
            self._clock.sleep(min(pause, left))
            pause = min(pause * 1.5, _MAX_POLL)
            waited = True
        self._keep(held, waited)

    async def acquire_async(self, *, timeout: float | None = None) -> None:
        """Like :meth:`acquire`, for asyncio and trio tasks."""
        budget = self._budget(timeout)
        deadline = self._clock.monotonic() + budget
        pause = _FIRST_POLL
        waited = False
        while (held := await self._aattempt()) is None:
            left = deadline - self._clock.monotonic()
            if left <= 0:
                raise self._refuse(
                    "no free slot" if budget <= 0 else f"no slot within {budget:g} s"
                )
            await self._clock.asleep(min(pause, left))
            pause = min(pause * 1.5, _MAX_POLL)
            waited = True
        self._keep(held, waited)

    def _pop(self) -> _Held:
        with self._held_lock:
            if not self._held:
                raise RuntimeError(f"Bulkhead {self.name!r}: release() without a held slot")
            return self._held.pop()

    def release(self) -> None:
        """Give one slot back (to the store, or to the local fallback it came from)."""
        held = self._pop()
        if held is _LOCAL:
            Bulkhead.release(self)
        elif isinstance(held, Hold):
            try:
                held.release()
            except (StoreUnavailableError, OSError) as exc:
                self._guard.failed(exc)

    async def arelease(self) -> None:
        """:meth:`release` for tasks; completes even in a task being cancelled.

        Shielded: a cancelled request releases in its ``finally``, where trio (and anyio on
        asyncio) cancel every await; without the shield the store never hears of it and
        the slot stays taken until its lease runs out. The store timeout bounds the wait.
        """
        held = self._pop()
        if held is _LOCAL:
            Bulkhead.release(self)
        elif isinstance(held, Hold):
            with anyio.CancelScope(shield=True):
                try:
                    await held.arelease()
                except (StoreUnavailableError, OSError) as exc:
                    self._guard.failed(exc)

    # -- running calls ----------------------------------------------------------------------------

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn(*args, **kwargs)`` holding a shared slot; released on every path."""
        await self.acquire_async()
        try:
            return await fn(*args, **kwargs)
        finally:
            await self.arelease()

    def __aenter__(self) -> Coroutine[Any, Any, None]:
        return self.acquire_async()

    def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Coroutine[Any, Any, None]:
        return self.arelease()

    def __repr__(self) -> str:
        return (
            f"Bulkhead(name={self.name!r}, max_concurrent={self._spec.max_concurrent}, "
            f"max_wait={self._max_wait!r}, store={redact_url(self._store.url)!r})"
        )
