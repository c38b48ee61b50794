"""A limiter's table file: fixed-size key slots addressed by a digest of the key.

Layout: one 4 KiB header page (:class:`~._file_records.TableHeader`), then ``groups`` groups
of ``group_slots`` slots of 128 bytes. A key's BLAKE2b digest picks its group; the key lives
in any slot of that group (open addressing bounded by the group: one ``pread`` of 4 KiB,
searched with ``bytes.find``), so a decision costs the same with ten keys or ten thousand.
The file is created sparse: untouched groups take no disk space.

A new key takes a free slot, a slot whose bucket is full again (indistinguishable from absent,
``bucket_ttl == 0``), or a slot found unreadable (with the safe reset). When every slot of the
group carries quota, the new key is refused until the soonest of them is full again: the
limiter fails closed rather than hand anyone a fresh bucket.

A table remembers the slots it wrote last (at most :data:`KEPT_KEYS` keys: offset, bytes and
bucket): when a key's slot still holds exactly those bytes (one 128-byte ``pread`` under the
lock, every time), they are that key's record and the group search and decode are skipped.
Any other bytes (another process's write, a corrupt slot, a wipe) take the full path.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import NamedTuple

from ..._core.limiter import EPSILON, Bucket
from .._base import LimiterSpec, StoreUnavailableError
from .._rules import bucket_ttl
from .lock import LockFile
from .records import (
    DIGEST_AT,
    SLOT_SIZE,
    BadRecord,
    KeySlot,
    NewerRecord,
    TableHeader,
    decode_slot,
    decode_table,
    encode_slot,
    encode_table,
)

__all__ = [
    "GROUP_SLOTS",
    "HEADER_PAGE",
    "KEPT_KEYS",
    "KEYED_GROUPS",
    "Found",
    "LimiterTable",
    "key_digest",
]

HEADER_PAGE = 4096
GROUP_SLOTS = 32
KEYED_GROUPS = 2048
"""65,536 slots per keyed limiter (8 MiB sparse); about 10,000 busy keys fit with room."""
GROUP_BYTES = GROUP_SLOTS * SLOT_SIZE
KEPT_KEYS = 1024
"""Keys whose last written slot a table remembers (forgotten all at once when full)."""
_FREE = bytes(SLOT_SIZE)

OnBad = Callable[[str, bytes, str], None]
"""Called with (file name, unreadable bytes, reason) before a record is reset."""


def key_digest(key: str | None) -> bytes:
    """16 bytes identifying ``key`` (None, the unkeyed bucket, differs from every string)."""
    raw = b"n" if key is None else b"k" + key.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(raw, digest_size=16).digest()


def empty_bucket(spec: LimiterSpec, now: float) -> Bucket:
    """The safe reset: no tokens left, as if the whole burst had just been spent."""
    b = Bucket(spec.interval, spec.burst)
    b.full_at = now + b.span
    b.last_now = now
    return b


class Found(NamedTuple):
    """A key's slot: its byte offset, its bucket, and whether the slot holds its record yet."""

    offset: int
    bucket: Bucket
    stored: bool


class LimiterTable:
    """One limiter's table file and its lock; every method but the constructor needs the lock."""

    def __init__(self, lock: LockFile, fd: int, data_name: str, on_bad: OnBad) -> None:
        self.lock = lock
        self.fd = fd
        self.data_name = data_name
        self._on_bad = on_bad
        self.header: TableHeader | None = None
        # key -> (offset, slot bytes written, full_at, last_now, blocked_until); valid only
        # for the header it was written under (a new header may place keys elsewhere).
        self._kept: dict[str | None, tuple[int, bytes, float, float, float]] = {}
        self._kept_for: TableHeader | None = None

    def ensure(self, spec: LimiterSpec) -> TableHeader:
        """Read (or write) the header page; keep it in step with ``spec``."""
        h = self.header
        if h is None or h.interval != spec.interval or h.burst != spec.burst:
            h = self._read_header(spec)
            if h.interval != spec.interval or h.burst != spec.burst or h.keyed != spec.keyed:
                h = h._replace(interval=spec.interval, burst=spec.burst, keyed=spec.keyed)
                os.pwrite(self.fd, encode_table(h), 0)
            self.header = h
        return h

    def _read_header(self, spec: LimiterSpec) -> TableHeader:
        raw = os.pread(self.fd, HEADER_PAGE, 0)
        try:
            found = decode_table(raw)
        except NewerRecord as exc:
            raise StoreUnavailableError(f"{self.data_name}: {exc}") from exc
        except BadRecord as exc:
            self._on_bad(self.data_name, raw, str(exc))
            found = None
        if found is not None:
            return found
        groups = KEYED_GROUPS if spec.keyed else 1
        h = TableHeader(groups, GROUP_SLOTS, SLOT_SIZE, spec.keyed, 0.0, 0.0, spec.name)
        os.pwrite(self.fd, encode_table(h), 0)
        if os.fstat(self.fd).st_size < HEADER_PAGE + groups * GROUP_BYTES:
            os.ftruncate(self.fd, HEADER_PAGE + groups * GROUP_BYTES)
        return h

    def load(self, spec: LimiterSpec, key: str | None, now: float) -> Found | float:
        """Where ``key``'s bucket is and its state, or the wait until its group has room."""
        h = self.ensure(spec)
        if self._kept_for is not h:
            self._kept.clear()
            self._kept_for = h
        kept = self._kept.get(key)
        if kept is not None:
            offset, record, full_at, last_now, blocked_until = kept
            if os.pread(self.fd, SLOT_SIZE, offset) == record:
                b = Bucket(spec.interval, spec.burst)
                b.full_at, b.last_now, b.blocked_until = full_at, last_now, blocked_until
                return Found(offset, b, True)
        digest = key_digest(key)
        base = HEADER_PAGE + (int.from_bytes(digest[:8], "little") % h.groups) * GROUP_BYTES
        group = os.pread(self.fd, GROUP_BYTES, base).ljust(GROUP_BYTES, b"\0")
        at = group.find(digest, DIGEST_AT)
        while at >= 0 and (at - DIGEST_AT) % SLOT_SIZE:
            at = group.find(digest, at + 1)
        if at >= 0:
            index = (at - DIGEST_AT) // SLOT_SIZE
            found = self._decode(group, index, base)
            if found is not None and found.digest == digest:
                return Found(base + index * SLOT_SIZE, self._bucket(spec, found), True)
            if found is None:  # unreadable: maybe this key's record, so the safe reset
                return self._reset(base + index * SLOT_SIZE, spec, key, now)
        return self._place(spec, key, group, base, now)

    def _reset(self, offset: int, spec: LimiterSpec, key: str | None, now: float) -> Found:
        b = empty_bucket(spec, now)
        self.save(offset, key, b)  # at once, so even a peek leaves the reset behind
        return Found(offset, b, True)

    def _place(
        self, spec: LimiterSpec, key: str | None, group: bytes, base: int, now: float
    ) -> Found | float:
        free, bad, soonest = -1, -1, float("inf")
        for i in range(GROUP_SLOTS):
            if group[i * SLOT_SIZE : (i + 1) * SLOT_SIZE] == _FREE:
                free = i if free < 0 else free
                continue
            found = self._decode(group, i, base)
            if found is None:
                bad = i if bad < 0 else bad
                continue
            ttl = bucket_ttl(self._bucket(spec, found), now)
            if ttl <= 0.0:
                free = i if free < 0 else free
            soonest = min(soonest, ttl)
        if bad >= 0:  # the unreadable slot may have been this key's: no fresh bucket
            return self._reset(base + bad * SLOT_SIZE, spec, key, now)
        if free >= 0:
            return Found(base + free * SLOT_SIZE, Bucket(spec.interval, spec.burst), False)
        return max(soonest, 2 * EPSILON)

    def _decode(self, group: bytes, index: int, base: int) -> KeySlot | None:
        raw = group[index * SLOT_SIZE : (index + 1) * SLOT_SIZE]
        try:
            found = decode_slot(raw)
        except NewerRecord as exc:
            raise StoreUnavailableError(f"{self.data_name}: {exc}") from exc
        except BadRecord as exc:
            where = f"{self.data_name} slot at byte {base + index * SLOT_SIZE}"
            self._on_bad(self.data_name, raw, f"{where}: {exc}")
            os.pwrite(self.fd, _FREE, base + index * SLOT_SIZE)
            return None
        return found

    @staticmethod
    def _bucket(spec: LimiterSpec, s: KeySlot) -> Bucket:
        b = Bucket(spec.interval, spec.burst)
        b.full_at, b.last_now, b.blocked_until = s.full_at, s.last_now, s.blocked_until
        return b

    def save(self, offset: int, key: str | None, b: Bucket) -> None:
        """Write ``key``'s bucket into its slot (one ``pwrite``)."""
        slot = KeySlot(key_digest(key), b.full_at, b.last_now, b.blocked_until, key or "")
        record = encode_slot(slot)
        kept = self._kept
        kept.pop(key, None)
        if os.pwrite(self.fd, record, offset) == SLOT_SIZE and self._kept_for is self.header:
            if len(kept) >= KEPT_KEYS:
                kept.clear()
            kept[key] = (offset, record, b.full_at, b.last_now, b.blocked_until)

    def read_header(self) -> TableHeader | None:
        """The header page as stored, or None if it is empty or unreadable (for status)."""
        try:
            self.header = decode_table(os.pread(self.fd, HEADER_PAGE, 0))
        except (BadRecord, NewerRecord):
            self.header = None
        return self.header

    def entries(self) -> list[KeySlot]:
        """Every readable key slot (for status); unreadable ones are skipped."""
        h = self.header or self.read_header()
        if h is None:
            return []
        found: list[KeySlot] = []
        for g in range(h.groups):
            group = os.pread(self.fd, GROUP_BYTES, HEADER_PAGE + g * GROUP_BYTES)
            if not group.strip(b"\0"):
                continue
            for i in range(len(group) // SLOT_SIZE):
                try:
                    s = decode_slot(group[i * SLOT_SIZE : (i + 1) * SLOT_SIZE])
                except (BadRecord, NewerRecord):
                    continue
                if s is not None:
                    found.append(s)
        return found

    def wipe(self) -> int:
        """Free every slot, keeping the header page; return how many keys were dropped."""
        dropped = len(self.entries())
        self._kept.clear()
        size = os.fstat(self.fd).st_size
        os.ftruncate(self.fd, HEADER_PAGE)
        os.ftruncate(self.fd, size)
        return dropped
