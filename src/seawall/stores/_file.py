"""The file store: policy state shared by the processes of one machine through a directory.

Each policy has its own never-replaced lock file and its own data file, named after a BLAKE2b
digest of the policy name (user text never reaches a file name)::

    lim-<digest>.lock / .tab      rate limiter: header page + key slots (see _file_table)
    brk-<digest>.lock / .rec      circuit breaker: one record (see _file_breaker)
    blk-<digest>.lock / .info     bulkhead: name and size, guarded by the lock
    blk-<digest>.<n>.slot         bulkhead slot n, held by an flock (see _file_slots)

Every operation takes the policy's lock (bounded by ``timeout``, else
:class:`StoreUnavailableError`), reads the record, runs the shared rule from
:mod:`~seawall.stores._rules` on wall time (``clock.time()``), and rewrites the record in
place with one ``pwrite``; nothing is ever written without the lock. Unreadable records are
copied aside and reset with one warning on the ``seawall.stores`` logger.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
from collections.abc import Callable
from typing import TypeVar

from .._breaker_core import BreakerConfig, BreakerState, Ticket, Transition
from .._clock import SYSTEM_CLOCK, Clock
from .._validate import check_number
from . import _rules
from ._base import (
    BreakerSpec,
    BreakerView,
    BulkheadSpec,
    Hold,
    LimiterSpec,
    PolicyStatus,
    Reservation,
    Store,
    StoreUnavailableError,
)
from ._file_breaker import BreakerFile
from ._file_fs import LOG, open_dir, open_private, remote_fs_type, set_aside
from ._file_lock import LockFile
from ._file_slots import BulkheadSlots
from ._file_status import breaker_status, limiter_status
from ._file_table import Found, LimiterTable

__all__ = ["FileStore"]

T = TypeVar("T")

_ENTRY = re.compile(r"^(lim|brk|blk)-([0-9a-f]{24})\.(tab|rec|info)$")


def _base_name(kind: str, name: str) -> str:
    digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=12)
    return f"{kind}-{digest.hexdigest()}"


class FileStore(Store):
    """Policy state in ``path``, shared by every process of this machine that opens it.

    ``timeout`` bounds each operation's wait for a policy's lock (default 100 ms); ``clock``
    supplies wall time (``time()``) and the pauses between lock attempts. Nothing is touched
    until the first operation: the directory is then created 0700, or checked to be ours, not
    a symlink, and not writable by others.
    """

    supports_breaker_windows = True

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 0.1, clock: Clock | None = None
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or os.PathLike, got {path!r}")
        raw = os.fspath(path)
        if not isinstance(raw, str) or not raw or "\0" in raw:
            raise ValueError(f"path must be a non-empty directory path, got {path!r}")
        self.path = os.path.abspath(raw)
        self.url = "file://" + self.path
        self.timeout = check_number("timeout", timeout, inclusive=True)
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._mutex = threading.RLock()  # guards the caches; held only to fill them
        self._dir_fd = -1
        self._names: dict[tuple[str, str], str] = {}
        self._tables: dict[str, LimiterTable] = {}
        self._breakers: dict[str, BreakerFile] = {}
        self._bulkheads: dict[str, BulkheadSlots] = {}

    def __repr__(self) -> str:
        return f"FileStore({self.path!r}, timeout={self.timeout!r})"

    # -- files --------------------------------------------------------------------------------

    def _dir(self) -> int:
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

    def _base(self, kind: str, name: str) -> str:
        base = self._names.get((kind, name))
        if base is None:
            base = self._names[kind, name] = _base_name(kind, name)
        return base

    def _bad(self, data_name: str, raw: bytes, reason: str) -> None:
        copy = set_aside(self._dir(), data_name, raw)
        LOG.warning(
            "file store %s: unreadable record in %s (%s); %s, and the record was reset",
            self.path,
            data_name,
            reason,
            f"its bytes were set aside as {copy}" if copy else "too many copies already kept",
        )

    def _open(self, base: str, suffix: str) -> tuple[LockFile, int]:
        dir_fd = self._dir()
        lock = LockFile(dir_fd, base + ".lock", self.path)
        return lock, open_private(dir_fd, base + suffix, self.path)

    def _table(self, base: str) -> LimiterTable:
        table = self._tables.get(base)
        if table is None:
            with self._mutex:
                table = self._tables.get(base)
                if table is None:
                    lock, fd = self._open(base, ".tab")
                    table = LimiterTable(lock, fd, base + ".tab", self._bad)
                    self._tables[base] = table
        return table

    def _breaker(self, base: str) -> BreakerFile:
        f = self._breakers.get(base)
        if f is None:
            with self._mutex:
                f = self._breakers.get(base)
                if f is None:
                    lock, fd = self._open(base, ".rec")
                    f = self._breakers[base] = BreakerFile(lock, fd, base + ".rec", self._bad)
        return f

    def _bulkhead(self, base: str, slots: int) -> BulkheadSlots:
        b = self._bulkheads.get(base)
        if b is None or len(b.slots) < slots:
            with self._mutex:
                b = self._bulkheads.get(base)
                if b is None:
                    lock, fd = self._open(base, ".info")
                    b = self._bulkheads[base] = BulkheadSlots(lock, fd, [])
                dir_fd = self._dir()
                for n in range(len(b.slots), slots):
                    b.slots.append(LockFile(dir_fd, f"{base}.{n}.slot", self.path))
        return b

    def _locked(self, lock: LockFile, work: Callable[[], T]) -> T:
        fd = lock.acquire(self._clock, self.timeout)
        try:
            return work()
        except OSError as exc:
            raise StoreUnavailableError(f"file store {self.path}: {exc}") from exc
        finally:
            lock.release(fd)

    async def _alocked(self, lock: LockFile, work: Callable[[], T]) -> T:
        fd = await lock.aacquire(self._clock, self.timeout)
        try:
            return work()
        except OSError as exc:
            raise StoreUnavailableError(f"file store {self.path}: {exc}") from exc
        finally:
            lock.release(fd)

    # -- rate limiter -------------------------------------------------------------------------

    def _reserve(
        self, t: LimiterTable, spec: LimiterSpec, key: str | None, tokens: int, max_wait: float
    ) -> Reservation:
        now = self._clock.time()
        found = t.load(spec, key, now)
        if isinstance(found, float):  # no slot for a new key: refused, never committed
            wait = found if found > max_wait else math.nextafter(max_wait, math.inf)
            return Reservation(wait, math.nan, 0, found)
        went_back = _went_back(found, now)
        result = _rules.bucket_reserve(found.bucket, now, tokens, max_wait)
        if result.wait <= max_wait or went_back:
            t.save(found.offset, key, found.bucket)
        return result

    def reserve(
        self, spec: LimiterSpec, key: str | None, tokens: int, max_wait: float
    ) -> Reservation:
        t = self._table(self._base("lim", spec.name))
        return self._locked(t.lock, lambda: self._reserve(t, spec, key, tokens, max_wait))

    async def areserve(
        self, spec: LimiterSpec, key: str | None, tokens: int, max_wait: float
    ) -> Reservation:
        t = self._table(self._base("lim", spec.name))
        return await self._alocked(t.lock, lambda: self._reserve(t, spec, key, tokens, max_wait))

    def _cancel(
        self, t: LimiterTable, spec: LimiterSpec, key: str | None, ticket: float, tokens: int
    ) -> bool:
        found = t.load(spec, key, self._clock.time())
        if isinstance(found, float) or not _rules.bucket_cancel(found.bucket, ticket, tokens):
            return False
        t.save(found.offset, key, found.bucket)
        return True

    def cancel(self, spec: LimiterSpec, key: str | None, ticket: float, tokens: int) -> bool:
        t = self._table(self._base("lim", spec.name))
        return self._locked(t.lock, lambda: self._cancel(t, spec, key, ticket, tokens))

    async def acancel(self, spec: LimiterSpec, key: str | None, ticket: float, tokens: int) -> bool:
        t = self._table(self._base("lim", spec.name))
        return await self._alocked(t.lock, lambda: self._cancel(t, spec, key, ticket, tokens))

    def _block(self, t: LimiterTable, spec: LimiterSpec, key: str | None, seconds: float) -> bool:
        now = self._clock.time()
        found = t.load(spec, key, now)
        if isinstance(found, float):
            return False  # a key without a slot is refused anyway
        went_back = _went_back(found, now)
        blocked = _rules.bucket_block(found.bucket, now, seconds, spec.max_block)
        if blocked or went_back:
            t.save(found.offset, key, found.bucket)
        return blocked

    def block(self, spec: LimiterSpec, key: str | None, seconds: float) -> bool:
        seconds = check_number("seconds", seconds, inclusive=True, allow_inf=True)
        t = self._table(self._base("lim", spec.name))
        return self._locked(t.lock, lambda: self._block(t, spec, key, seconds))

    async def ablock(self, spec: LimiterSpec, key: str | None, seconds: float) -> bool:
        seconds = check_number("seconds", seconds, inclusive=True, allow_inf=True)
        t = self._table(self._base("lim", spec.name))
        return await self._alocked(t.lock, lambda: self._block(t, spec, key, seconds))

    def _peek(self, t: LimiterTable, spec: LimiterSpec, key: str | None) -> tuple[float, float]:
        now = self._clock.time()
        found = t.load(spec, key, now)
        if isinstance(found, float):
            return 0.0, found
        went_back = _went_back(found, now)
        result = _rules.bucket_peek(found.bucket, now)
        if went_back:
            t.save(found.offset, key, found.bucket)
        return result

    def peek(self, spec: LimiterSpec, key: str | None) -> tuple[float, float]:
        t = self._table(self._base("lim", spec.name))
        return self._locked(t.lock, lambda: self._peek(t, spec, key))

    # -- circuit breaker ----------------------------------------------------------------------

    def _run_breaker(
        self,
        f: BreakerFile,
        spec: BreakerSpec,
        rule: Callable[[BreakerState, float], T],
        always: bool = True,
    ) -> T:
        now = self._clock.time()
        state, stored_now = f.load(now)
        last_now = _rules.rebase_breaker(state, stored_now, now)
        before = (state.generation, state.rejected_calls, state.next_probe, state.opened_at)
        result = rule(state, now)
        after = (state.generation, state.rejected_calls, state.next_probe, state.opened_at)
        # A closed breaker's admission changes nothing: skip the write on the hot path. A
        # rebase (clock went back) is always written, or the time since would be lost again.
        if always or f.was_empty or before != after or now < stored_now:
            f.save(state, last_now, spec.config.reset_timeout, spec.name)
        return result

    def admit(self, spec: BreakerSpec) -> tuple[Ticket | float, Transition | None]:
        f = self._breaker(self._base("brk", spec.name))
        rule = _admit(spec.config)
        return self._locked(f.lock, lambda: self._run_breaker(f, spec, rule, always=False))

    async def aadmit(self, spec: BreakerSpec) -> tuple[Ticket | float, Transition | None]:
        f = self._breaker(self._base("brk", spec.name))
        rule = _admit(spec.config)
        return await self._alocked(f.lock, lambda: self._run_breaker(f, spec, rule, always=False))

    def record(
        self, spec: BreakerSpec, ticket: Ticket, outcome: int, duration: float
    ) -> Transition | None:
        f = self._breaker(self._base("brk", spec.name))
        rule = _record(spec.config, ticket, outcome, duration)
        return self._locked(f.lock, lambda: self._run_breaker(f, spec, rule))

    async def arecord(
        self, spec: BreakerSpec, ticket: Ticket, outcome: int, duration: float
    ) -> Transition | None:
        f = self._breaker(self._base("brk", spec.name))
        rule = _record(spec.config, ticket, outcome, duration)
        return await self._alocked(f.lock, lambda: self._run_breaker(f, spec, rule))

    def force(self, spec: BreakerSpec, action: str) -> Transition | None:
        if action not in ("open", "closed", "reset"):
            raise ValueError(f"action must be 'open', 'closed' or 'reset', got {action!r}")
        f = self._breaker(self._base("brk", spec.name))

        def rule(s: BreakerState, now: float) -> Transition | None:
            return _rules.breaker_force(s, action, now)

        return self._locked(f.lock, lambda: self._run_breaker(f, spec, rule))

    def _view(self, f: BreakerFile, cfg: BreakerConfig) -> BreakerView:
        now = self._clock.time()
        state, stored_now = f.load(now)
        _rules.rebase_breaker(state, stored_now, now)
        if now < stored_now and not f.was_empty:
            f.save(state, now, cfg.reset_timeout, f.name)
        return _rules.breaker_view(state, cfg, now)

    def view(self, spec: BreakerSpec) -> BreakerView:
        f = self._breaker(self._base("brk", spec.name))
        return self._locked(f.lock, lambda: self._view(f, spec.config))

    # -- bulkhead -----------------------------------------------------------------------------

    def _slots(self, spec: BulkheadSpec) -> BulkheadSlots:
        b = self._bulkhead(self._base("blk", spec.name), spec.max_concurrent)
        if not b.described:
            self._locked(b.lock, lambda: b.describe(spec.max_concurrent, spec.name))
        return b

    def try_hold(self, spec: BulkheadSpec) -> Hold | None:
        b = self._slots(spec)
        try:
            # Twice: a slot may be locked for an instant by another process's holders() probe.
            return b.try_hold(spec.max_concurrent) or b.try_hold(spec.max_concurrent)
        except OSError as exc:
            raise StoreUnavailableError(f"file store {self.path}: {exc}") from exc

    async def atry_hold(self, spec: BulkheadSpec) -> Hold | None:
        b = self._bulkhead(self._base("blk", spec.name), spec.max_concurrent)
        if not b.described:
            await self._alocked(b.lock, lambda: b.describe(spec.max_concurrent, spec.name))
        return self.try_hold(spec)  # non-blocking flocks only: safe on the event loop

    def holders(self, spec: BulkheadSpec) -> int:
        b = self._slots(spec)
        try:
            return b.holders(spec.max_concurrent)
        except OSError as exc:
            raise StoreUnavailableError(f"file store {self.path}: {exc}") from exc

    # -- administration -----------------------------------------------------------------------

    def status(self) -> list[PolicyStatus]:
        try:
            names = sorted(os.listdir(self._dir()))
        except OSError as exc:
            raise StoreUnavailableError(f"file store {self.path}: {exc}") from exc
        found: list[PolicyStatus] = []
        for entry in names:
            match = _ENTRY.match(entry)
            if match is not None:
                found += self._status_of(match[1], f"{match[1]}-{match[2]}")
        return sorted(found, key=lambda p: (p.kind, p.name, p.key or ""))

    def _status_of(self, kind: str, base: str) -> list[PolicyStatus]:
        now = self._clock.time()
        if kind == "lim":
            t = self._table(base)
            return self._locked(t.lock, lambda: limiter_status(t, now))
        if kind == "brk":
            f = self._breaker(base)
            return self._locked(f.lock, lambda: breaker_status(f, now))
        info = self._locked(self._bulkhead(base, 0).lock, self._bulkhead(base, 0).info)
        if info is None:
            return []
        size, name = info
        held = self._bulkhead(base, size).holders(size)
        return [PolicyStatus("bulkhead", name, None, {"holders": held, "max_concurrent": size})]

    def reset(self, name: str) -> int:
        removed = 0
        dir_fd = self._dir()
        for kind, suffix in (("lim", ".tab"), ("brk", ".rec"), ("blk", ".info")):
            base = self._base(kind, name)
            try:
                os.stat(base + suffix, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if kind == "lim":
                t = self._table(base)
                removed += self._locked(t.lock, t.wipe)
            elif kind == "brk":
                f = self._breaker(base)
                removed += self._locked(f.lock, f.wipe)
            else:
                b = self._bulkhead(base, 0)
                removed += self._locked(b.lock, b.wipe)
        return removed

    def close(self) -> None:
        with self._mutex:
            tables, self._tables = self._tables, {}
            breakers, self._breakers = self._breakers, {}
            bulkheads, self._bulkheads = self._bulkheads, {}
            dir_fd, self._dir_fd = self._dir_fd, -1
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

    async def aclose(self) -> None:
        self.close()


def _went_back(found: Found, now: float) -> bool:
    """Whether the wall clock is behind the record's stamps, so the rebase must be saved."""
    return found.stored and now < found.bucket.last_now


_Admission = tuple[Ticket | float, Transition | None]


def _admit(cfg: BreakerConfig) -> Callable[[BreakerState, float], _Admission]:
    def rule(s: BreakerState, now: float) -> _Admission:
        return _rules.breaker_admit(s, cfg, now)

    return rule


def _record(
    cfg: BreakerConfig, ticket: Ticket, outcome: int, duration: float
) -> Callable[[BreakerState, float], Transition | None]:
    def rule(s: BreakerState, now: float) -> Transition | None:
        return _rules.breaker_record(s, cfg, now, ticket, outcome, duration)

    return rule
