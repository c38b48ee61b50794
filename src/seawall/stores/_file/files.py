"""The file store's open files: the checked directory and each policy's lock and data files.

Descriptors are opened on first use and kept: a decision then costs one lock, one ``pread``
and at most one ``pwrite``, with no ``open`` on the hot path.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import weakref
from collections.abc import Callable

from .breaker import BreakerFile
from .fs import LOG, open_dir, open_private, remote_fs_type, set_aside
from .lock import LockFile
from .slots import BulkheadSlots
from .table import LimiterTable

__all__ = ["Files", "base_name"]


def base_name(kind: str, name: str) -> str:
    """``<kind>-<digest of name>``: the stem of a policy's file names (no user text in it)."""
    digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=12)
    return f"{kind}-{digest.hexdigest()}"


class Files:
    """Every descriptor one FileStore holds, by file stem; thread-safe and fork-aware."""

    def __init__(self, path: str) -> None:
        _LIVE.add(self)
        self.path = path
        self._mutex = threading.RLock()  # guards the caches; held only to fill them
        self._dir_fd = -1
        self._names: dict[tuple[str, str], str] = {}
        self._tables: dict[str, LimiterTable] = {}
        self._breakers: dict[str, BreakerFile] = {}
        self._bulkheads: dict[str, BulkheadSlots] = {}
        self.generation = 0
        """Bumped when the descriptors are dropped (close, fork): what used them is stale."""

    # -- files --------------------------------------------------------------------------------

    def dir(self) -> int:
        if self._dir_fd < 0:
            fd = open_dir(self.path)
            with self._mutex:
                if self._dir_fd >= 0:
                    os.close(fd)
                    return self._dir_fd
                self._dir_fd = fd
            fstype = remote_fs_type(os.path.realpath(self.path))
            if fstype:
                LOG.warning(
                    "file store %s is on a %s file system: its locks may not exclude other "
                    "hosts and may outlive a crashed holder; use a local directory",
                    self.path,
                    fstype,
                )
        return self._dir_fd

    def base(self, kind: str, name: str) -> str:
        base = self._names.get((kind, name))
        if base is None:
            base = self._names[kind, name] = base_name(kind, name)
        return base

    def bad(self, data_name: str, raw: bytes, reason: str) -> None:
        copy = set_aside(self.dir(), data_name, raw)
        LOG.warning(
            "file store %s: unreadable record in %s (%s); %s, and the record was reset",
            self.path,
            data_name,
            reason,
            f"its bytes were set aside as {copy}" if copy else "too many copies already kept",
        )

    def open(self, base: str, suffix: str) -> tuple[LockFile, int]:
        dir_fd = self.dir()
        lock = LockFile(dir_fd, base + ".lock", self.path)
        return lock, open_private(dir_fd, base + suffix, self.path)

    def table(self, base: str) -> LimiterTable:
        table = self._tables.get(base)
        if table is None:
            with self._mutex:
                table = self._tables.get(base)
                if table is None:
                    lock, fd = self.open(base, ".tab")
                    table = LimiterTable(lock, fd, base + ".tab", self.bad)
                    self._tables[base] = table
        return table

    def breaker(self, base: str) -> BreakerFile:
        f = self._breakers.get(base)
        if f is None:
            with self._mutex:
                f = self._breakers.get(base)
                if f is None:
                    lock, fd = self.open(base, ".rec")
                    f = self._breakers[base] = BreakerFile(lock, fd, base + ".rec", self.bad)
        return f

    def bulkhead(self, base: str, slots: int) -> BulkheadSlots:
        b = self._bulkheads.get(base)
        if b is None or len(b.slots) < slots:
            with self._mutex:
                b = self._bulkheads.get(base)
                if b is None:
                    lock, fd = self.open(base, ".info")
                    b = self._bulkheads[base] = BulkheadSlots(lock, fd, [])
                dir_fd = self.dir()
                for n in range(len(b.slots), slots):
                    b.slots.append(LockFile(dir_fd, f"{base}.{n}.slot", self.path))
        return b

    def close(self) -> None:
        """Close every descriptor; the next use opens them again."""
        with self._mutex:
            tables, self._tables = self._tables, {}
            breakers, self._breakers = self._breakers, {}
            bulkheads, self._bulkheads = self._bulkheads, {}
            dir_fd, self._dir_fd = self._dir_fd, -1
            self.generation += 1
        for t in tables.values():
            t.lock.close()
            os.close(t.fd)
        for f in breakers.values():
            f.lock.close()
            os.close(f.fd)
        for b in bulkheads.values():
            b.lock.close()
            os.close(b.info_fd)
            for slot in b.slots:
                slot.close()
        if dir_fd >= 0:
            os.close(dir_fd)

    def __del__(self, _finalizing: Callable[[], bool] = sys.is_finalizing) -> None:
        # A store dropped without close() would otherwise keep its descriptors, and the idle
        # ones of its lock files, until the process ends: raw descriptors have no finalizer.
        # A hold that outlives the store keeps its own descriptor and closes it on release.
        # At exit the kernel closes them, and module globals (sys, os) may already be None:
        # hence the default argument, bound when the class was made.
        if not _finalizing():
            self.close()

    def after_fork(self) -> None:
        """In a forked child: drop the inherited descriptors and open our own on next use.

        An inherited descriptor shares its open file description, hence its ``flock``, with
        the parent: used in both processes, it would let them into the same lock at once.
        Closing the child's copies releases nothing the parent holds. Locks that another
        parent thread held at the fork may be held still, so nothing here waits for them.
        """
        self._mutex = threading.RLock()
        self.generation += 1
        handles = [t.lock for t in self._tables.values()]
        handles += [f.lock for f in self._breakers.values()]
        fds = [t.fd for t in self._tables.values()] + [f.fd for f in self._breakers.values()]
        for b in self._bulkheads.values():
            handles += [b.lock, *b.slots]
            fds.append(b.info_fd)
        if self._dir_fd >= 0:
            fds.append(self._dir_fd)
        self._tables, self._breakers, self._bulkheads, self._dir_fd = {}, {}, {}, -1
        for handle in handles:
            fds += handle.abandon()
        for fd in fds:
            os.close(fd)


_LIVE: weakref.WeakSet[Files] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for files in list(_LIVE):
        files.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
