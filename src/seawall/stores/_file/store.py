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

import os
import re
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

from ..._clock import SYSTEM_CLOCK, Clock
from ..._core.breaker import BreakerState, Ticket, Transition
from ..._core.validate import check_number
from .. import _admit
from .._base import (
    Admission,
    BreakerSpec,
    BreakerView,
    BulkheadSpec,
    Gates,
    Hold,
    LimiterSpec,
    PolicyStatus,
    Reservation,
    Settlement,
    Store,
    StoreUnavailableError,
)
from .._rules import breaker_force
from . import admit as _file_admit
from . import decide as _decide
from .breaker import BreakerFile
from .files import Files
from .lock import LockFile
from .slots import BulkheadSlots
from .status import breaker_status, limiter_status

__all__ = ["FileStore"]

T = TypeVar("T")
P = ParamSpec("P")

_ENTRY = re.compile(r"^(lim|brk|blk)-([0-9a-f]{24})\.(tab|rec|info)$")


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
        self._files = Files(self.path)
        # The latest admission's open records and lock order, for the Gates object it was
        # built for (the middleware passes the same one each request) and the descriptors'
        # generation (a close or a fork makes it stale).
        self._admission: tuple[Gates, int, _file_admit.Records, list[LockFile]] | None = None

    def __repr__(self) -> str:
        return f"FileStore({self.path!r}, timeout={self.timeout!r})"

    def _locked(self, lock: LockFile, work: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
        fd = lock.acquire(self._clock, self.timeout)
        try:
            return work(*args, **kw)
        except OSError as exc:
            raise StoreUnavailableError(f"file store {self.path}: {exc}") from exc
        finally:
            lock.release(fd)

    async def _alocked(
        self, lock: LockFile, work: Callable[P, T], *args: P.args, **kw: P.kwargs
    ) -> T:
        fd = await lock.aacquire(self._clock, self.timeout)
        try:
            return work(*args, **kw)
        except OSError as exc:
            raise StoreUnavailableError(f"file store {self.path}: {exc}") from exc
        finally:
            lock.release(fd)

    # -- rate limiter -------------------------------------------------------------------------

    def reserve(
        self, spec: LimiterSpec, key: str | None, tokens: int, max_wait: float
    ) -> Reservation:
        t = self._files.table(self._files.base("lim", spec.name))
        return self._locked(t.lock, _decide.reserve, self._clock, t, spec, key, tokens, max_wait)

    async def areserve(
        self, spec: LimiterSpec, key: str | None, tokens: int, max_wait: float
    ) -> Reservation:
        t = self._files.table(self._files.base("lim", spec.name))
        return await self._alocked(
            t.lock, _decide.reserve, self._clock, t, spec, key, tokens, max_wait
        )

    def cancel(self, spec: LimiterSpec, key: str | None, ticket: float, tokens: int) -> bool:
        t = self._files.table(self._files.base("lim", spec.name))
        return self._locked(t.lock, _decide.cancel, self._clock, t, spec, key, ticket, tokens)

    async def acancel(self, spec: LimiterSpec, key: str | None, ticket: float, tokens: int) -> bool:
        t = self._files.table(self._files.base("lim", spec.name))
        return await self._alocked(
            t.lock, _decide.cancel, self._clock, t, spec, key, ticket, tokens
        )

    def block(self, spec: LimiterSpec, key: str | None, seconds: float) -> bool:
        seconds = check_number("seconds", seconds, inclusive=True, allow_inf=True)
        t = self._files.table(self._files.base("lim", spec.name))
        return self._locked(t.lock, _decide.block, self._clock, t, spec, key, seconds)

    async def ablock(self, spec: LimiterSpec, key: str | None, seconds: float) -> bool:
        seconds = check_number("seconds", seconds, inclusive=True, allow_inf=True)
        t = self._files.table(self._files.base("lim", spec.name))
        return await self._alocked(t.lock, _decide.block, self._clock, t, spec, key, seconds)

    def peek(self, spec: LimiterSpec, key: str | None) -> tuple[float, float]:
        t = self._files.table(self._files.base("lim", spec.name))
        return self._locked(t.lock, _decide.peek, self._clock, t, spec, key)

    def withdraw(self, spec: LimiterSpec, key: str | None, deposit: float) -> Reservation:
        t = self._files.table(self._files.base("lim", spec.name))
        return self._locked(t.lock, _decide.withdraw, self._clock, t, spec, key, deposit)

    async def awithdraw(self, spec: LimiterSpec, key: str | None, deposit: float) -> Reservation:
        t = self._files.table(self._files.base("lim", spec.name))
        return await self._alocked(t.lock, _decide.withdraw, self._clock, t, spec, key, deposit)

    # -- circuit breaker ----------------------------------------------------------------------

    def admit(self, spec: BreakerSpec) -> tuple[Ticket | float, Transition | None]:
        f = self._files.breaker(self._files.base("brk", spec.name))
        rule = _decide.admit_rule(spec.config)
        return self._locked(f.lock, _decide.run_breaker, self._clock, f, spec, rule)

    async def aadmit(self, spec: BreakerSpec) -> tuple[Ticket | float, Transition | None]:
        f = self._files.breaker(self._files.base("brk", spec.name))
        rule = _decide.admit_rule(spec.config)
        return await self._alocked(f.lock, _decide.run_breaker, self._clock, f, spec, rule)

    def record(
        self, spec: BreakerSpec, ticket: Ticket, outcome: int, duration: float
    ) -> Transition | None:
        f = self._files.breaker(self._files.base("brk", spec.name))
        rule = _decide.record_rule(spec.config, ticket, outcome, duration)
        return self._locked(f.lock, _decide.run_breaker, self._clock, f, spec, rule)

    async def arecord(
        self, spec: BreakerSpec, ticket: Ticket, outcome: int, duration: float
    ) -> Transition | None:
        f = self._files.breaker(self._files.base("brk", spec.name))
        rule = _decide.record_rule(spec.config, ticket, outcome, duration)
        return await self._alocked(f.lock, _decide.run_breaker, self._clock, f, spec, rule)

    def force(self, spec: BreakerSpec, action: str) -> Transition | None:
        if action not in ("open", "closed", "reset"):
            raise ValueError(f"action must be 'open', 'closed' or 'reset', got {action!r}")
        f = self._files.breaker(self._files.base("brk", spec.name))

        def rule(s: BreakerState, now: float) -> Transition | None:
            return breaker_force(s, action, now)

        return self._locked(f.lock, _decide.run_breaker, self._clock, f, spec, rule)

    def view(self, spec: BreakerSpec) -> BreakerView:
        f = self._files.breaker(self._files.base("brk", spec.name))
        return self._locked(f.lock, _decide.view, self._clock, f, spec)

    # -- bulkhead -----------------------------------------------------------------------------

    def _slots(self, spec: BulkheadSpec) -> BulkheadSlots:
        b = self._files.bulkhead(self._files.base("blk", spec.name), spec.max_concurrent)
        if not b.described:
            self._locked(b.lock, b.describe, spec.max_concurrent, spec.name)
        return b

    def _hold(self, b: BulkheadSlots, count: int) -> Hold | None:
        try:
            # Twice: a slot may be locked for an instant by another process's holders() probe.
            return b.try_hold(count) or b.try_hold(count)
        except OSError as exc:
            raise StoreUnavailableError(f"file store {self.path}: {exc}") from exc

    def try_hold(self, spec: BulkheadSpec) -> Hold | None:
        return self._hold(self._slots(spec), spec.max_concurrent)

    async def atry_hold(self, spec: BulkheadSpec) -> Hold | None:
        b = self._files.bulkhead(self._files.base("blk", spec.name), spec.max_concurrent)
        if not b.described:
            await self._alocked(b.lock, b.describe, spec.max_concurrent, spec.name)
        return self._hold(b, spec.max_concurrent)  # non-blocking flocks: safe on the loop

    def holders(self, spec: BulkheadSpec) -> int:
        b = self._slots(spec)
        try:
            return b.holders(spec.max_concurrent)
        except OSError as exc:
            raise StoreUnavailableError(f"file store {self.path}: {exc}") from exc

    # -- one request's admission -----------------------------------------------------------------

    def _records(self, gates: Gates) -> tuple[_file_admit.Records, list[LockFile]]:
        kept = self._admission
        generation = self._files.generation
        if kept is not None and kept[0] is gates and kept[1] == generation:
            slots = kept[2].slots
            if slots is None or slots.described:
                return kept[2], kept[3]
        records = self._open_records(gates)
        locks = _file_admit.locks_of(records)
        self._admission = (gates, generation, records, locks)
        return records, locks

    def _open_records(self, gates: Gates) -> _file_admit.Records:
        tables = [self._files.table(self._files.base("lim", s.name)) for s in gates.limits]
        slots = None if gates.bulkhead is None else self._slots(gates.bulkhead)
        breaker = gates.breaker
        found = (
            None if breaker is None else self._files.breaker(self._files.base("brk", breaker.name))
        )
        return _file_admit.Records(tables, slots, found)

    def admit_request(
        self, gates: Gates, key: str | None, costs: Sequence[int] | None = None
    ) -> Admission:
        charge = _admit.check_costs(gates, costs)
        records, locks = self._records(gates)
        deadline: float | None = None  # read from the clock only once a lock is found busy
        held: list[tuple[LockFile, int]] = []
        try:
            for lock in locks:
                fd = lock.try_acquire()
                if fd is None:
                    if deadline is None:
                        deadline = self._clock.monotonic() + self.timeout
                    left = max(0.0, deadline - self._clock.monotonic())
                    fd = lock.acquire(self._clock, left)
                held.append((lock, fd))
            return _file_admit.decide_locked(self._clock, gates, key, charge, records)
        except OSError as exc:
            raise StoreUnavailableError(f"file store {self.path}: {exc}") from exc
        finally:
            for lock, fd in reversed(held):
                lock.release(fd)

    async def aadmit_request(
        self, gates: Gates, key: str | None, costs: Sequence[int] | None = None
    ) -> Admission:
        charge = _admit.check_costs(gates, costs)
        bulkhead = gates.bulkhead
        if bulkhead is not None:
            b = self._files.bulkhead(
                self._files.base("blk", bulkhead.name), bulkhead.max_concurrent
            )
            if not b.described:
                await self._alocked(b.lock, b.describe, bulkhead.max_concurrent, bulkhead.name)
        records, locks = self._records(gates)
        deadline: float | None = None
        held: list[tuple[LockFile, int]] = []
        try:
            for lock in locks:
                fd = lock.try_acquire()
                if fd is None:
                    if deadline is None:
                        deadline = self._clock.monotonic() + self.timeout
                    left = max(0.0, deadline - self._clock.monotonic())
                    fd = await lock.aacquire(self._clock, left)
                held.append((lock, fd))
            return _file_admit.decide_locked(self._clock, gates, key, charge, records)
        except OSError as exc:
            raise StoreUnavailableError(f"file store {self.path}: {exc}") from exc
        finally:
            for lock, fd in reversed(held):
                lock.release(fd)

    def settle_requests(self, gates: Gates, items: Sequence[Settlement]) -> list[Transition | None]:
        """Give back every slot, then record every outcome under one lock of the breaker."""
        for item in items:
            if item.hold is not None:
                item.hold.release()
        breaker = self._settled_breaker(gates, items)
        if breaker is None:
            return [None] * len(items)
        spec, f = breaker
        return self._locked(f.lock, _decide.record_all, self._clock, f, spec, items)

    async def asettle_requests(
        self, gates: Gates, items: Sequence[Settlement]
    ) -> list[Transition | None]:
        """:meth:`settle_requests` for tasks (waits for the breaker's lock without blocking)."""
        for item in items:
            if item.hold is not None:
                item.hold.release()  # flock(LOCK_UN) never blocks
        breaker = self._settled_breaker(gates, items)
        if breaker is None:
            return [None] * len(items)
        spec, f = breaker
        return await self._alocked(f.lock, _decide.record_all, self._clock, f, spec, items)

    def _settled_breaker(
        self, gates: Gates, items: Sequence[Settlement]
    ) -> tuple[BreakerSpec, BreakerFile] | None:
        spec = gates.breaker
        if spec is None or all(item.ticket is None for item in items):
            return None
        return spec, self._files.breaker(self._files.base("brk", spec.name))

    # -- administration -----------------------------------------------------------------------

    def status(self) -> list[PolicyStatus]:
        try:
            names = sorted(os.listdir(self._files.dir()))
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
            t = self._files.table(base)
            return self._locked(t.lock, limiter_status, t, now)
        if kind == "brk":
            f = self._files.breaker(base)
            return self._locked(f.lock, breaker_status, f, now)
        info = self._locked(self._files.bulkhead(base, 0).lock, self._files.bulkhead(base, 0).info)
        if info is None:
            return []
        size, name = info
        held = self._files.bulkhead(base, size).holders(size)
        return [PolicyStatus("bulkhead", name, None, {"held": held, "slots": size})]

    def reset(self, name: str) -> int:
        removed = 0
        dir_fd = self._files.dir()
        for kind, suffix in (("lim", ".tab"), ("brk", ".rec"), ("blk", ".info")):
            base = self._files.base(kind, name)
            try:
                os.stat(base + suffix, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if kind == "lim":
                t = self._files.table(base)
                removed += self._locked(t.lock, t.wipe)
            elif kind == "brk":
                f = self._files.breaker(base)
                removed += self._locked(f.lock, f.wipe)
            else:
                b = self._files.bulkhead(base, 0)
                removed += self._locked(b.lock, b.wipe)
        return removed

    def close(self) -> None:
        self._files.close()

    async def aclose(self) -> None:
        self.close()
