"""A breaker's record file: one framed record, rewritten in place under the breaker's lock.

Decoding and checking a record is most of what a breaker decision costs in Python, and the
record read under the lock is usually the one this process wrote last. So the file keeps the
bytes it wrote with the state they encode: when the file still starts with exactly those bytes
(checked by a ``pread`` under the lock, every time), that state is the record's, and the decode
is skipped. Any other bytes (another process's write, a torn or corrupt record, a wipe) are
decoded and checked as always. The kept state is handed out once: a decision that fails
between load and save leaves nothing kept, so a half-changed state is never reused.
"""

from __future__ import annotations

import os

from ..._core.breaker import BreakerState
from .._base import StoreUnavailableError
from .lock import LockFile
from .records import FRAME, BadRecord, NewerRecord, decode_breaker, encode_breaker
from .table import OnBad

__all__ = ["BreakerFile"]

_Kept = tuple[bytes, BreakerState, float, float, str]
_FIRST_READ = 4096
_WHOLE_NAME = 1000
"""Names this long or shorter are stored whole (4 bytes a character at most, 4000 kept)."""


class BreakerFile:
    """One breaker's record file and its lock; every method but the constructor needs the lock."""

    def __init__(self, lock: LockFile, fd: int, data_name: str, on_bad: OnBad) -> None:
        self.lock = lock
        self.fd = fd
        self.data_name = data_name
        self._on_bad = on_bad
        self.reset_timeout = 0.0
        self.name = ""
        self.was_empty = True
        """Whether the latest :meth:`load` found no record (a fresh breaker)."""
        self._kept: _Kept | None = None
        self._loaded: _Kept | None = None  # what the latest load read, for unchanged()

    def _read(self) -> bytes:
        data = os.pread(self.fd, _FIRST_READ, 0)
        if len(data) >= FRAME.size:
            length = FRAME.unpack_from(data)[3]
            if FRAME.size + length > len(data) and length < (1 << 24):
                data += os.pread(self.fd, FRAME.size + length - len(data), len(data))
        return data

    def load(self, now: float) -> tuple[BreakerState, float]:
        """``(state, last wall time seen)``; a fresh closed breaker if empty or unreadable."""
        kept, self._kept, self._loaded = self._kept, None, None
        if kept is not None:
            record, state, last_now, reset_timeout, name = kept
            if os.pread(self.fd, len(record), 0) == record:
                self.was_empty = False
                self.reset_timeout, self.name = reset_timeout, name
                self._loaded = kept
                return state, last_now
        data = self._read()
        try:
            found = decode_breaker(data)
        except NewerRecord as exc:
            raise StoreUnavailableError(f"{self.data_name}: {exc}") from exc
        except BadRecord as exc:
            self._on_bad(self.data_name, data, str(exc))
            os.ftruncate(self.fd, 0)  # reset now: an empty record is a fresh closed breaker
            found = None
        self.was_empty = found is None
        if found is None:
            return BreakerState(), now
        self.reset_timeout, self.name = found.reset_timeout, found.name
        if len(found.name) <= _WHOLE_NAME:
            record = data[: FRAME.size + FRAME.unpack_from(data)[3]]
            self._loaded = (record, found.state, found.last_now, found.reset_timeout, found.name)
        return found.state, found.last_now

    def unchanged(self) -> None:
        """The state from the latest :meth:`load` was not changed: keep it instead of a save."""
        self._kept, self._loaded = self._loaded, None

    def save(self, s: BreakerState, last_now: float, reset_timeout: float, name: str) -> None:
        """Rewrite the record in place (one ``pwrite``; stale bytes after it are ignored)."""
        record = encode_breaker(s, last_now, reset_timeout, name)
        if os.pwrite(self.fd, record, 0) == len(record) and len(name) <= _WHOLE_NAME:
            self._kept = (record, s, last_now, reset_timeout, name)

    def wipe(self) -> int:
        """Forget the breaker; return 1 if there was a record."""
        self._kept = None
        had = bool(os.pread(self.fd, FRAME.size, 0).strip(b"\0"))
        os.ftruncate(self.fd, 0)
        return int(had)
