"""Bulkhead slots as flock-ed files: the kernel frees a dead holder's slot at once.

A bulkhead of ``max_concurrent`` slots is ``max_concurrent`` files; holding a slot is holding
an exclusive, non-blocking ``flock`` on its file through a descriptor of our own, for as long
as the call runs. When the holder releases, exits or is killed (``kill -9`` included), the
kernel drops the lock with the last descriptor: no PID bookkeeping, so a reused PID can never
keep a slot, and nobody waits for a lease to run out. Each process uses slots ``0 ..
max_concurrent - 1`` of its own spec, so processes that disagree on ``max_concurrent`` share
the low slots and the larger setting bounds the total.
"""

from __future__ import annotations

import os
import random
import threading

from .._base import Hold, StoreUnavailableError
from .lock import LockFile
from .records import BadRecord, NewerRecord, decode_bulkhead, encode_bulkhead

__all__ = ["BulkheadSlots", "FileHold"]


class FileHold(Hold):
    """One held slot: the locked descriptor of its slot file."""

    def __init__(self, slot_file: LockFile, fd: int, slot: int) -> None:
        self._file = slot_file
        self._fd: int | None = fd
        self._mutex = threading.Lock()
        self.slot = slot

    def release(self) -> None:
        """Unlock the slot file (idempotent)."""
        with self._mutex:
            fd, self._fd = self._fd, None
        if fd is not None:
            self._file.release(fd)

    async def arelease(self) -> None:
        """Unlock the slot file (idempotent; ``flock(LOCK_UN)`` never blocks)."""
        self.release()

    def __repr__(self) -> str:
        return f"FileHold(slot={self.slot}, held={self._fd is not None})"


class BulkheadSlots:
    """A bulkhead's slot files, its info record (name, size) and the lock guarding the record."""

    def __init__(self, lock: LockFile, info_fd: int, slot_file: list[LockFile]) -> None:
        self.lock = lock
        self.info_fd = info_fd
        self.slots = slot_file
        self.described = False

    def try_hold(self, count: int) -> FileHold | None:
        """Lock a free slot among the first ``count`` (random start), or None if all are held."""
        start = random.randrange(count)
        for j in range(count):
            slot = (start + j) % count
            fd = self.slots[slot].try_acquire()
            if fd is not None:
                return FileHold(self.slots[slot], fd, slot)
        return None

    def holders(self, count: int) -> int:
        """How many of the first ``count`` slots are locked now (probing non-blockingly)."""
        held = 0
        for slot_file in self.slots[:count]:
            fd = slot_file.try_acquire()
            if fd is None:
                held += 1
            else:
                slot_file.release(fd)
        return held

    def describe(self, max_concurrent: int, name: str) -> None:
        """Write the info record if it is missing or different (needs the lock)."""
        record = encode_bulkhead(max_concurrent, name)
        if os.pread(self.info_fd, len(record) + 1, 0) != record:
            os.ftruncate(self.info_fd, 0)
            os.pwrite(self.info_fd, record, 0)
        self.described = True

    def info(self) -> tuple[int, str] | None:
        """``(max_concurrent, name)`` as recorded (needs the lock); None if absent or bad."""
        try:
            return decode_bulkhead(os.pread(self.info_fd, 8192, 0))
        except NewerRecord as exc:
            raise StoreUnavailableError(str(exc)) from exc
        except BadRecord:
            return None

    def wipe(self) -> int:
        """Forget the info record (held slots stay held); return 1 if there was one."""
        had = bool(os.pread(self.info_fd, 16, 0).strip(b"\0"))
        os.ftruncate(self.info_fd, 0)
        self.described = False
        return int(had)
