"""Concurrent admissions of one process share one store round trip.

While one admission call is on its way to the store, the requests that arrive queue up; the
next call carries them all (``Store.aadmit_requests``: one script call on Redis, where the
members are decided in order, each with its own holder id, exactly as one after another).
As for settlements (``_settle``), no task or thread is started: the first request to find no
call in flight sends one (the leader), the others wait for a call that carries them
(followers). Waiting and sending are shielded from cancellation: the store timeout bounds
them, and an admission that was sent is always read, so a granted slot or probe reaches a
request that will settle it (a cancelled request settles it in its ``finally``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar, cast

import anyio

__all__ = ["Coalescer"]

T = TypeVar("T")
R = TypeVar("R")


class _Entry(Generic[T, R]):
    __slots__ = ("answer", "done", "error", "item")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = False
        self.answer: R | None = None
        self.error: BaseException | None = None


class Coalescer(Generic[T, R]):
    """Leader/follower coalescing: one ``send`` carries every item queued meanwhile.

    ``send`` answers each item of its list, in order; what it raises reaches every member.
    """

    __slots__ = ("_flight", "_queue", "_send", "calls")

    def __init__(self, send: Callable[[list[T]], Awaitable[list[R]]]) -> None:
        self._send = send
        self._queue: list[_Entry[T, R]] = []
        self._flight: anyio.Event | None = None
        self.calls = 0
        """Calls sent so far (for tests and benchmarks)."""

    async def ask(self, item: T) -> R:
        """Queue ``item``; its answer once a call carrying it has come back (shielded)."""
        entry: _Entry[T, R] = _Entry(item)
        self._queue.append(entry)
        with anyio.CancelScope(shield=True):
            while not entry.done:
                flight = self._flight
                if flight is not None:
                    await flight.wait()  # its call left before we queued: wait it out
                    continue
                await self._lead()
        if entry.error is not None:
            raise entry.error
        return cast("R", entry.answer)  # set with done

    async def _lead(self) -> None:
        batch, self._queue = self._queue, []
        self._flight = done = anyio.Event()
        try:
            self.calls += 1
            answers = await self._send([e.item for e in batch])
            for e, answer in zip(batch, answers, strict=True):
                e.answer = answer
        except BaseException as exc:
            for e in batch:
                e.error = exc
        finally:
            for e in batch:
                e.done = True
            self._flight = None
            done.set()
