"""Concurrent admissions of one process share one store round trip.

While one admission call is on its way to the store, the requests that arrive queue up; the
next call carries them all (``Store.aadmit_requests``: one script call on Redis, where the
members are decided in order, each with its own holder id, exactly as one after another).
As for settlements (``_settle``), no task or thread is started: the first request to find no
call in flight sends one (the leader), the others wait for a call that carries them
(followers); while a call is out, the first request queued waits to send the next, and each
other one waits once, for that next call to come back. A request cancelled while queued is
dropped (if it was to send the next call, the next in the queue takes that over); once its
call has left, the call and the wait for its answer are shielded from cancellation (the
store timeout bounds them), so a granted slot or probe always reaches a request that settles
it (a cancelled request settles it in its ``finally``).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar, cast

import anyio

__all__ = ["Coalescer"]

T = TypeVar("T")
R = TypeVar("R")


class _Entry(Generic[T, R]):
    __slots__ = ("answer", "error", "flight", "item")

    def __init__(self, item: T) -> None:
        self.item = item
        self.flight: anyio.Event | None = None  # set once a call carries it
        self.answer: R | None = None
        self.error: BaseException | None = None


class Coalescer(Generic[T, R]):
    """Leader/follower coalescing: one ``send`` carries every item queued meanwhile.

    At most ``flights`` calls are out at once; an item arriving then waits for the next call.
    ``send`` answers each item of its list, in order; what it raises reaches every member.
    Each waiting item waits once: the first one queued for the call that lands, to send the
    next (the queue, itself included); the others for that next call's own event, which is
    chosen before it leaves.
    """

    __slots__ = ("_flights", "_landed", "_max", "_next", "_queue", "_send", "calls")

    def __init__(self, send: Callable[[list[T]], Awaitable[list[R]]], flights: int = 1) -> None:
        if isinstance(flights, bool) or not isinstance(flights, int) or flights < 1:
            raise ValueError(f"flights must be a whole number >= 1, got {flights!r}")
        self._send = send
        self._max = flights
        self._queue: list[_Entry[T, R]] = []
        self._flights = 0
        self._landed = anyio.Event()  # set (and replaced) each time a call comes back
        self._next = anyio.Event()  # the next call's: set when it comes back
        self.calls = 0
        """Calls sent so far (for tests and benchmarks)."""

    async def ask(self, item: T) -> R:
        """Queue ``item``; its answer once a call carrying it has come back.

        Cancelled while queued, the item is dropped (nothing was asked); once its call has
        left, the answer is awaited shielded and returned, so what it grants reaches the caller.
        """
        entry: _Entry[T, R] = _Entry(item)
        self._queue.append(entry)
        try:
            while entry.flight is None and self._flights >= self._max:
                if self._queue[0] is entry:
                    await self._landed.wait()  # the next call is ours to send
                else:
                    # Set when the next call (which will carry us) comes back, or when the
                    # item that was to send it is gone. Unshielded, as a cancel scope on
                    # every request costs more than the rest of the wait; a cancellation
                    # lands below, and the answer is then awaited shielded.
                    await self._next.wait()
        except BaseException:
            if entry.flight is None:
                self._drop(entry)
                raise
            if anyio.current_effective_deadline() != -math.inf:
                raise  # not our scope's cancellation (a native cancel() comes only once)
            # Our call left as we were cancelled: read its answer (the caller settles it;
            # the cancellation comes back at its next checkpoint).
        if entry.flight is None or not entry.flight.is_set():
            with anyio.CancelScope(shield=True):
                if entry.flight is None:
                    await self._lead()  # no call out: we send the queue, ourselves included
                else:
                    await entry.flight.wait()
        if entry.error is not None:
            raise entry.error
        return cast("R", entry.answer)  # set before the flight's event

    def _drop(self, entry: _Entry[T, R]) -> None:
        first = self._queue[0] is entry
        self._queue.remove(entry)
        if first and self._queue:
            # It was to send the next call: the others wake, and the first of them takes it.
            woken, self._next = self._next, anyio.Event()
            woken.set()

    async def _lead(self) -> None:
        batch, self._queue = self._queue, []
        flight, self._next = self._next, anyio.Event()
        self._flights += 1
        for e in batch:
            e.flight = flight
        try:
            self.calls += 1
            answers = await self._send([e.item for e in batch])
            for e, answer in zip(batch, answers, strict=True):
                e.answer = answer
        except BaseException as exc:
            for e in batch:
                e.error = exc
        finally:
            self._flights -= 1
            landed, self._landed = self._landed, anyio.Event()
            landed.set()
            flight.set()
