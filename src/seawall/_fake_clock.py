"""A clock whose time moves only when a test says so."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable

import anyio

from ._core.validate import check_number

__all__ = ["FakeClock"]


class FakeClock:
    """A virtual clock for tests: time stands still until :meth:`advance` moves it.

    * ``monotonic()`` starts at ``start`` and ``time()`` at ``wall``; both move together
      under :meth:`advance`; :meth:`jump_wall` moves wall time alone (e.g. backwards, to test
      that shared state survives an NTP step).
    * ``sleep(s)`` in sync code advances the clock by ``s`` at once, so single-threaded code
      that sleeps runs instantly. Set ``sync_sleep_advances=False`` to make sync sleepers wait
      for another thread to advance the clock instead.
    * ``await asleep(s)``, ``wait_for`` and ``await_event`` wait until :meth:`advance` moves
      time past their deadline (or their event is set); a zero or negative timeout answers
      at once, as on the system clock. Async waiters must be woken by
      :meth:`advance` called on their own event loop thread.

    Everything is thread-safe; :meth:`wait_for_sleepers` lets a test block until a number of
    threads or tasks are waiting on the clock, instead of sleeping in real time.
    """

    def __init__(
        self,
        start: float = 0.0,
        *,
        wall: float = 1_700_000_000.0,
        sync_sleep_advances: bool = True,
    ) -> None:
        self._now = check_number("start", start, inclusive=True, minimum=float("-inf"))
        self._wall_offset = check_number("wall", wall, inclusive=True) - self._now
        self._sync_sleep_advances = sync_sleep_advances
        self._sleepers: list[tuple[float, int, Callable[[], None]]] = []
        self._ids = itertools.count()
        self._cancelled: set[int] = set()
        self._changed = threading.Condition()

    # -- readings -------------------------------------------------------------------------

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._wall_offset

    @property
    def sleepers(self) -> int:
        """How many sleeps and waits are pending on this clock right now."""
        with self._changed:
            return len(self._sleepers) - len(self._cancelled)

    # -- moving time ----------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper whose deadline passes."""
        seconds = check_number("seconds", seconds, inclusive=True)
        target = self._now + seconds
        while True:
            with self._changed:
                if not self._sleepers or self._sleepers[0][0] > target:
                    self._now = target
                    self._changed.notify_all()
                    return
                deadline, ident, wake = heapq.heappop(self._sleepers)
                self._now = max(self._now, deadline)
                if ident in self._cancelled:
                    self._cancelled.discard(ident)
                    continue
            wake()

    def jump_wall(self, seconds: float) -> None:
        """Move wall time alone by ``seconds`` (negative to go back); monotonic is untouched."""
        self._wall_offset += check_number("seconds", seconds, minimum=float("-inf"), inclusive=True)

    def wait_for_sleepers(self, count: int, timeout: float = 5.0) -> None:
        """Block (in real time, at most ``timeout``) until ``count`` waits are pending.

        For tests that start threads which will wait on the clock: this is a handshake, not a
        timing assumption, and it fails loudly if the threads never arrive.
        """
        with self._changed:
            ok = self._changed.wait_for(
                lambda: len(self._sleepers) - len(self._cancelled) >= count, timeout
            )
        if not ok:
            raise AssertionError(
                f"expected {count} sleepers on the fake clock, got {self.sleepers}"
            )

    # -- waiting --------------------------------------------------------------------------

    def _register(self, deadline: float, wake: Callable[[], None]) -> int:
        with self._changed:
            ident = next(self._ids)
            heapq.heappush(self._sleepers, (deadline, ident, wake))
            self._changed.notify_all()
            return ident

    def _unregister(self, ident: int) -> None:
        with self._changed:
            if any(entry[1] == ident for entry in self._sleepers):
                self._cancelled.add(ident)
            self._changed.notify_all()

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._sync_sleep_advances:
            self.advance(seconds)
            return
        done = threading.Event()
        self._register(self._now + seconds, done.set)
        done.wait()

    async def asleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        done = anyio.Event()
        ident = self._register(self._now + seconds, done.set)
        try:
            await done.wait()
        finally:
            self._unregister(ident)

    def wait_for(self, event: threading.Event, timeout: float | None) -> bool:
        if timeout is None:
            event.wait()
            return True
        if event.is_set():
            return True
        if timeout <= 0:  # already expired: answer at once, as the system clock does
            return False
        ident = self._register(self._now + timeout, event.set)
        event.wait()
        self._unregister(ident)
        return True

    async def await_event(self, event: anyio.Event, timeout: float | None) -> bool:
        if timeout is None:
            await event.wait()
            return True
        if timeout <= 0:  # already expired: one checkpoint, then the answer, as with anyio
            await anyio.lowlevel.checkpoint()
            return event.is_set()
        with anyio.CancelScope() as scope:
            ident = self._register(self._now + timeout, scope.cancel)
            try:
                await event.wait()
            finally:
                self._unregister(ident)
        return event.is_set()

    def __repr__(self) -> str:
        return f"FakeClock(monotonic={self._now!r}, sleepers={self.sleepers})"
