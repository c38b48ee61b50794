"""Exclusive locks on a policy's lock file, bounded in time, for threads, tasks and processes.

``flock`` belongs to the *open file description*, so every acquisition here uses a descriptor
nobody else in this process is using at that moment (a small pool per lock file, grown on
demand): threads and tasks of one process then exclude each other exactly as other processes
do, with no second, in-process lock to get out of step with. ``flock`` has no timeout, so an
acquisition polls ``LOCK_EX | LOCK_NB`` with a short, jittered, growing pause (sync: the
clock's ``sleep``; async: ``await clock.asleep``, never blocking the event loop) until the
store's timeout, then raises :class:`StoreUnavailableError`. The lock file is never replaced
or deleted, so every process always locks the same inode.
"""

from __future__ import annotations

import fcntl
import os
import random
import threading

from ..._clock import Clock
from .._base import StoreUnavailableError
from .fs import open_private

__all__ = ["LockFile"]

_FIRST_PAUSE = 0.0001
_LONGEST_PAUSE = 0.002


class LockFile:
    """One never-replaced lock file; :meth:`acquire` returns the descriptor that holds it."""

    __slots__ = ("_closed", "_dir_fd", "_idle", "_mutex", "name", "waited", "where")

    def __init__(self, dir_fd: int, name: str, where: str) -> None:
        self._dir_fd = dir_fd
        self.name = name
        self.where = where
        self._idle: list[int] = []
        self._mutex = threading.Lock()  # guards the pool list only, never held across I/O
        self._closed = False
        self.waited = 0.0
        """Seconds the latest contended acquisition waited (0.0 when it got the lock at once)."""

    def _take(self) -> int:
        with self._mutex:
            if self._closed:
                raise StoreUnavailableError(f"{self.where}: the store is closed")
            if self._idle:
                return self._idle.pop()
        return open_private(self._dir_fd, self.name, self.where)

    def _try(self, fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as exc:
            self._give_back(fd)
            raise StoreUnavailableError(f"cannot lock {self.where}/{self.name}: {exc}") from exc
        return True

    def _give_back(self, fd: int) -> None:
        with self._mutex:
            if not self._closed:
                self._idle.append(fd)
                return
        os.close(fd)  # released after close(): nobody will take it again

    def _timed_out(self, fd: int, timeout: float) -> StoreUnavailableError:
        self._give_back(fd)
        return StoreUnavailableError(
            f"{self.where}/{self.name} stayed locked by another holder for {timeout:g} s"
        )

    def try_acquire(self) -> int | None:
        """Lock now if nobody holds the lock; the descriptor, or None (never waits)."""
        fd = self._take()
        if self._try(fd):
            return fd
        self._give_back(fd)
        return None

    def acquire(self, clock: Clock, timeout: float) -> int:
        """Lock, waiting at most ``timeout`` seconds; return the descriptor to release."""
        fd = self._take()
        if self._try(fd):
            self.waited = 0.0
            return fd
        start = clock.monotonic()
        pause = _FIRST_PAUSE
        while True:
            left = start + timeout - clock.monotonic()
            if left <= 0:
                if self._try(fd):
                    break
                raise self._timed_out(fd, timeout)
            clock.sleep(min(left, pause * random.uniform(0.5, 1.0)))
            if self._try(fd):
                break
            pause = min(pause * 2, _LONGEST_PAUSE)
        self.waited = clock.monotonic() - start
        return fd

    async def aacquire(self, clock: Clock, timeout: float) -> int:
        """:meth:`acquire` for tasks: polls between ``await clock.asleep`` pauses."""
        fd = self._take()
        if self._try(fd):
            self.waited = 0.0
            return fd
        start = clock.monotonic()
        pause = _FIRST_PAUSE
        while True:
            left = start + timeout - clock.monotonic()
            if left <= 0:
                if self._try(fd):
                    break
                raise self._timed_out(fd, timeout)
            try:
                await clock.asleep(min(left, pause * random.uniform(0.5, 1.0)))
            except BaseException:
                self._give_back(fd)  # cancelled while waiting: the descriptor is unlocked
                raise
            if self._try(fd):
                break
            pause = min(pause * 2, _LONGEST_PAUSE)
        self.waited = clock.monotonic() - start
        return fd

    def release(self, fd: int) -> None:
        """Unlock and return the descriptor to the pool."""
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            os.close(fd)  # closing drops the lock too; never reuse a descriptor in doubt
            return
        self._give_back(fd)

    def abandon(self) -> list[int]:
        """After a fork: stop using this lock file; return the idle descriptors to close."""
        self._mutex = threading.Lock()  # the parent's may have been held at the fork
        idle, self._idle = self._idle, []
        self._closed = True
        return idle

    def close(self) -> None:
        """Close every idle descriptor (a held one is closed by its release)."""
        with self._mutex:
            idle, self._idle = self._idle, []
            self._closed = True
        for fd in idle:
            os.close(fd)
