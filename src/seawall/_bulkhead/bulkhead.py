"""Bulkhead: at most ``max_concurrent`` calls in flight, sync threads and async tasks alike.

The admission logic lives in :mod:`seawall._core.bulkhead`; this module only locks, waits and
wakes. One ``threading.Lock`` guards the core for both sides; it is held for counter updates
only, never across a wait, so taking it from an event loop thread never blocks for long.

The two cases every call pays for take no lock: an acquire that finds a released slot in the
core's pool pops it (``list.pop``, one atomic step) and counts it (``next`` on an
``itertools.count``), and a release with nobody queued, no release being timed and no event
observed appends it back, then looks at the queue once more (:meth:`BulkheadCore.fill`).
Everything else takes the lock. An uncontended acquire reads no clock, allocates nothing and
does **not** checkpoint (it never yields to the event loop). A task that always finds a free
slot must therefore yield elsewhere, which the awaited work normally does.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from .._callables import COROUTINE, refuse_coroutine
from .._callables import is_async_callable as _is_async
from .._clock import SYSTEM_CLOCK, Clock
from .._core.bulkhead import BulkheadCore
from .._core.validate import check_int, check_number
from .._errors import BulkheadFullError
from .._events import ACTIVE as _OBSERVED
from .._events import BulkheadChanged, Rejected, emit
from .._store_variant import StoreBacked
from .._wakeup import AsyncWaiter, SyncWaiter, Waiter
from ..stores._base import Store
from ..stores._open import store_for_policy

__all__ = ["Bulkhead", "BulkheadStats", "bulkhead"]

P = ParamSpec("P")
R = TypeVar("R")
WaiterT = TypeVar("WaiterT", SyncWaiter, AsyncWaiter)


@dataclass(frozen=True, slots=True)
class BulkheadStats:
    """A bulkhead's counters, read under its lock (an acquire or release that takes no lock
    may land between two fields)."""

    max_concurrent: int
    in_flight: int
    queued: int
    total_admitted: int
    total_rejected: int
    total_waited: int
    """Admissions that had to queue first (a subset of ``total_admitted``)."""


class Bulkhead(StoreBacked):
    """Limit how many calls run at once; queue (FIFO, up to ``max_wait``) or reject the rest.

    ``max_concurrent`` slots (int >= 1). A caller that finds none free waits up to
    ``max_wait`` seconds (0, the default, rejects at once; ``math.inf`` waits without limit)
    in a FIFO queue of at most ``max_queue`` waiters (None: no cap). A caller that cannot be
    admitted gets a fresh :class:`~seawall.BulkheadFullError` whose ``retry_after`` is the
    mean interval between releases observed while full, times its place in line (0.0 until
    such a release has been seen).
    """

    __slots__ = ("__weakref__", "_clock", "_core", "_lock", "_max_wait", "name")

    def __init__(
        self,
        max_concurrent: int = 10,
        *,
        max_wait: float = 0.0,
        max_queue: int | None = None,
        name: str | None = None,
        clock: Clock | None = None,
        store: Store | str | None = None,
        degraded: str | None = None,
    ) -> None:
        if store is not None or degraded is not None:
            store_for_policy(store, degraded, name, "bulkhead")
        limit = check_int("max_concurrent", max_concurrent, minimum=1)
        self._max_wait = check_number("max_wait", max_wait, inclusive=True, allow_inf=True)
        if max_queue is not None:
            max_queue = check_int("max_queue", max_queue, minimum=0)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {name!r}")
        self.name = name
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._core: BulkheadCore[Waiter] = BulkheadCore(limit, max_queue)
        self._lock = threading.Lock()

    # -- acquiring ------------------------------------------------------------------------

    def try_acquire(self) -> bool:
        """Take a slot if one is free right now; never waits (a refusal counts as rejected)."""
        with self._lock:
            admitted = self._core.try_admit()
            if not admitted:
                self._core.reject(self._clock.monotonic())
        if _OBSERVED:
            if admitted:
                self._changed()
            else:
                self._refused("full", self._core.retry_after())
        return admitted

    def acquire(self, *, timeout: float | None = None) -> None:
        """Take a slot, waiting up to ``timeout`` (None: ``max_wait``) in the FIFO queue.

        Raises :class:`~seawall.BulkheadFullError` if no slot was had in time.
        """
        wait = self._max_wait if timeout is None else self._budget(timeout)
        core = self._core
        # The httpx engine repeats this lock-free case, and release's, inline for a
        # queue-less bulkhead: tests/test_httpx_engine_slot.py holds the copies together.
        if not core.queue and not _OBSERVED:
            try:
                core.free.pop()
            except IndexError:
                pass  # none released yet, or all taken: issue one or queue, under the lock
            else:
                next(core.quick)
                return
        lock = self._lock
        try:
            lock.acquire()  # not ``with``: half the cost on CPython 3.11
            try:
                waiter = None if core.try_admit() else self._enqueue_or_reject(wait, SyncWaiter)
            finally:
                lock.release()
        except BulkheadFullError as error:
            if _OBSERVED:
                self._refused("full" if wait <= 0 else "queue_full", error.retry_after)
            raise
        if _OBSERVED:
            self._changed()
        if waiter is None:
            return
        try:
            self._clock.wait_for(waiter.event, _finite(wait))
        except BaseException:
            self._abandon(waiter)
            raise
        self._claim(waiter, wait)

    async def acquire_async(self, *, timeout: float | None = None) -> None:
        """Like :meth:`acquire`, for asyncio and trio tasks; no checkpoint when a slot is free."""
        wait = self._budget(timeout)
        if not self._admit_now():
            await self._wait_async(wait)

    def release(self) -> None:
        """Give a slot back, handing it straight to the first waiter if anyone is queued.

        Raises RuntimeError if no slot is held (more releases than acquisitions).
        """
        core = self._core
        free = core.free
        # len(free) < issued: a slot is held (BulkheadCore.release's check).
        if len(free) < core.issued and core.busy_since is None and not _OBSERVED:
            free.append(None)
            if core.queue:
                self._fill()  # someone queued since the check: hand the slot over
            return
        lock = self._lock
        lock.acquire()
        try:
            waiter = core.release(None if core.busy_since is None else self._clock.monotonic())
        finally:
            lock.release()
        if waiter is not None:
            waiter.wake()
        if _OBSERVED:
            self._changed()

    async def arelease(self) -> None:
        """:meth:`release` for tasks: a store-backed bulkhead tells its store without blocking.

        In memory this never awaits, so a cancellation cannot interrupt it.
        """
        self.release()

    # -- running calls --------------------------------------------------------------------

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the sync ``fn(*args, **kwargs)`` holding a slot; TypeError for async callables."""
        _require_sync(fn)
        self.acquire()
        try:
            result = fn(*args, **kwargs)
        finally:
            self.release()
        if result.__class__ is COROUTINE:
            refuse_coroutine(result, fn, "bulkhead")
        return result

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn(*args, **kwargs)`` holding a slot; it is released on every path."""
        await self.acquire_async()
        try:
            return await fn(*args, **kwargs)
        finally:
            # release() never awaits, so a cancellation cannot interrupt it: no shield needed.
            self.release()

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    # ``async with`` is the hot path the issue measures against asyncio.Semaphore, so both
    # halves are plain methods returning an awaitable: no coroutine object when a slot is free,
    # and BulkheadCore's two fast cases (try_admit, release with nobody waiting) are inlined.
    # Everything else goes through the core.

    def __aenter__(self) -> Coroutine[Any, Any, None]:
        if _OBSERVED:
            return self.acquire_async()
        core = self._core
        if not core.queue:
            try:
                core.free.pop()  # a released slot, without the lock (as in acquire)
            except IndexError:
                pass
            else:
                next(core.quick)
                return _READY
        return self._wait_async(self._max_wait)

    def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Coroutine[Any, Any, None]:
        # Synchronous, so a cancellation cannot interrupt it: no shield is needed.
        core = self._core
        free = core.free
        if len(free) < core.issued and core.busy_since is None and not _OBSERVED:
            free.append(None)  # = release's lock-free case
            if core.queue:
                self._fill()
            return _READY
        self.release()
        return _READY

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a sync or async function so every call holds a slot."""
        if _is_async(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.acall(fn, *args, **kwargs)

            return async_wrapper

        @functools.wraps(fn)
        def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            return self.call(fn, *args, **kwargs)

        return sync_wrapper

    # -- inspection -----------------------------------------------------------------------

    @property
    def max_concurrent(self) -> int:
        return self._core.max_concurrent

    @property
    def max_wait(self) -> float:
        return self._max_wait

    @property
    def max_queue(self) -> int | None:
        return self._core.max_queue

    @property
    def stats(self) -> BulkheadStats:
        """The counters, read under the lock (see :class:`BulkheadStats`)."""
        core = self._core
        with self._lock:
            return BulkheadStats(
                max_concurrent=core.max_concurrent,
                in_flight=core.in_flight,
                queued=len(core.queue),
                total_admitted=core.total_admitted(),
                total_rejected=core.rejected,
                total_waited=core.waited,
            )

    def __repr__(self) -> str:
        core = self._core
        return (
            f"Bulkhead(name={self.name!r}, max_concurrent={core.max_concurrent}, "
            f"max_wait={self._max_wait!r}, max_queue={core.max_queue!r}, "
            f"in_flight={core.in_flight}, queued={len(core.queue)})"
        )

    # -- the fast path and the slow path ---------------------------------------------------

    def _admit_now(self) -> bool:
        core = self._core
        if not core.queue and not _OBSERVED:
            try:
                core.free.pop()  # a released slot, without the lock (as in acquire)
            except IndexError:
                pass
            else:
                next(core.quick)
                return True
        lock = self._lock
        lock.acquire()
        try:
            admitted = self._core.try_admit()
        finally:
            lock.release()
        if admitted and _OBSERVED:
            self._changed()
        return admitted

    def _budget(self, timeout: float | None) -> float:
        if timeout is None or timeout is self._max_wait:
            # None, or max_wait handed back (the httpx transport does): already checked.
            return self._max_wait
        return check_number("timeout", timeout, inclusive=True, allow_inf=True)

    def _enqueue_or_reject(self, wait: float, make: Callable[[], WaiterT]) -> WaiterT:
        # Called under the lock, right after try_admit found no free slot.
        now = self._clock.monotonic()
        if wait <= 0 or not self._core.can_queue():
            self._core.reject(now)
            queue = self._core.max_queue
            raise self._full_error("no free slot" if wait <= 0 else f"queue full ({queue} waiting)")
        waiter = make()
        # A slot given back without the lock since try_admit looked: fill() hands it over.
        for granted in self._core.enqueue(waiter, now):
            granted.wake()
        return waiter

    def _fill(self) -> None:
        # A slot given back without the lock while someone queued: hand it over (or leave it
        # if the enqueuer's own fill already has).
        with self._lock:
            granted = self._core.fill()
        for waiter in granted:
            waiter.wake()

    async def _wait_async(self, wait: float) -> None:
        try:
            with self._lock:
                admitted = self._core.try_admit()
                waiter = None if admitted else self._enqueue_or_reject(wait, AsyncWaiter)
        except BulkheadFullError as error:
            if _OBSERVED:
                self._refused("full" if wait <= 0 else "queue_full", error.retry_after)
            raise
        if _OBSERVED:
            self._changed()
        if waiter is None:
            return
        try:
            await self._clock.await_event(waiter.event, _finite(wait))
        except BaseException:
            self._abandon(waiter)
            raise
        self._claim(waiter, wait)

    def _claim(self, waiter: Waiter, wait: float) -> None:
        with self._lock:
            if self._core.claim(waiter):
                return
            self._core.reject(self._clock.monotonic())
            error = self._full_error(f"no slot within {wait:g} s")
        if _OBSERVED:
            self._changed()
            self._refused("timeout", error.retry_after)
        raise error

    def _abandon(self, waiter: Waiter) -> None:
        with self._lock:
            now = None if self._core.busy_since is None else self._clock.monotonic()
            successor = self._core.abandon(waiter, now)
        if successor is not None:
            successor.wake()
        if _OBSERVED:
            self._changed()

    def _changed(self) -> None:
        # Read without the lock, after the change: a later change may already show.
        core = self._core
        emit(BulkheadChanged(self.name, core.in_flight, len(core.queue)))

    def _refused(self, reason: str, retry_after: float) -> None:
        emit(Rejected("bulkhead", self.name, reason, retry_after))

    def _full_error(self, why: str) -> BulkheadFullError:
        # A fresh instance every time: a shared one would grow its traceback without bound.
        core = self._core
        label = f"Bulkhead {self.name!r}" if self.name else "Bulkhead"
        return BulkheadFullError(
            f"{label} is full ({core.max_concurrent} in flight): {why}",
            retry_after=core.retry_after(),
        )


class _Ready(Coroutine[Any, Any, None]):
    """A coroutine that has already returned None: awaiting it neither yields nor allocates.

    A real Coroutine (not just an awaitable), so a Bulkhead type-checks as an
    ``AbstractAsyncContextManager`` (e.g. for ``AsyncExitStack.enter_async_context``).
    """

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return _EXHAUSTED

    def send(self, value: object, /) -> Any:
        raise StopIteration

    def throw(self, typ: Any, val: Any = None, tb: Any = None, /) -> Any:
        raise typ if val is None else val

    def close(self) -> None:
        return None


_EXHAUSTED: Generator[Any, None, None] = (_ for _ in ())
next(_EXHAUSTED, None)
_READY = _Ready()


def _finite(wait: float) -> float | None:
    return None if wait == float("inf") else wait


def _require_sync(fn: object) -> None:
    if _is_async(fn):
        raise TypeError(f"{fn!r} is async: use 'await bulkhead.acall(...)' instead of call()")


@overload
def bulkhead(
    max_concurrent: int = 10,
    *,
    max_wait: float = 0.0,
    max_queue: int | None = None,
    name: str | None = None,
    clock: Clock | None = None,
) -> Bulkhead: ...
@overload
def bulkhead(max_concurrent: Callable[P, R]) -> Callable[P, R]: ...
def bulkhead(
    max_concurrent: Any = 10,
    *,
    max_wait: float = 0.0,
    max_queue: int | None = None,
    name: str | None = None,
    clock: Clock | None = None,
) -> Any:
    """Decorator: ``@bulkhead(5, max_wait=1.0)`` (or bare ``@bulkhead``) on sync or async functions.

    Returns a :class:`Bulkhead`, which decorates when called with the function; every function
    it decorates shares its slots.
    """
    if callable(max_concurrent):
        return Bulkhead()(max_concurrent)
    return Bulkhead(max_concurrent, max_wait=max_wait, max_queue=max_queue, name=name, clock=clock)
