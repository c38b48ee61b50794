"""The file store's on-disk records: a checksummed frame around each kind of payload.

Every record starts with one 16-byte frame header::

    magic (4 bytes) | schema version (u16) | reserved (u16) | payload length (u32) | CRC-32 (u32)

The CRC (``zlib.crc32``) covers the first 12 header bytes and the payload, so a torn write, a
flipped bit, a wrong length or a stray file all fail to decode. This frame is the same in every
schema version; a version newer than ours (with a valid checksum) is refused, never
overwritten. A reader parses exactly the
declared length and ignores any bytes after it: records are rewritten in place with one
``pwrite``, and a shorter record simply leaves old bytes behind it. An all-zero frame is an
empty record (a new file, or a free slot of a limiter table).

Payloads (little-endian, version 1):

* limiter table header (``SWLT``): groups, slots per group, slot size, keyed flag, interval,
  burst, policy name;
* limiter slot (``SWLK``, in a fixed 128-byte slot): key digest, ``full_at``, ``last_now``,
  ``blocked_until``, the key text (cut to fit, for ``seawall status``);
* breaker (``SWBR``): every field of :class:`~seawall._core.breaker.BreakerState`, the last
  wall time seen, the reset timeout (for status), probes, the sliding window and the name;
  then, only for a time-window breaker holding calls, the count of its buckets and each bucket
  (index, calls, failures, slow), so count-window records read as they always did;
* bulkhead info (``SWBH``): max_concurrent and the name.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, NamedTuple

from ..._core.breaker import BreakerState, CircuitState

__all__ = [
    "BREAKER",
    "BULKHEAD",
    "FRAME",
    "SLOT",
    "SLOT_SIZE",
    "TABLE",
    "VERSION",
    "BadRecord",
    "KeySlot",
    "NewerRecord",
    "TableHeader",
    "decode_breaker",
    "decode_bulkhead",
    "decode_slot",
    "decode_table",
    "encode_breaker",
    "encode_bulkhead",
    "encode_slot",
    "encode_table",
    "frame",
    "unframe",
]

VERSION = 1
TABLE, SLOT, BREAKER, BULKHEAD = b"SWLT", b"SWLK", b"SWBR", b"SWBH"
FRAME = struct.Struct("<4sHHII")
SLOT_SIZE = 128

_EMPTY = bytes(FRAME.size)


class BadRecord(Exception):
    """Internal: bytes that are not a readable record (torn, corrupt, foreign)."""


class NewerRecord(Exception):
    """Internal: a record written by a newer schema, which this version must not overwrite."""


def frame(magic: bytes, payload: bytes) -> bytes:
    """``payload`` behind a frame header carrying its length and checksum."""
    head = FRAME.pack(magic, VERSION, 0, len(payload), 0)[:12]
    return head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload


def unframe(data: bytes, magic: bytes) -> bytes | None:
    """The payload in ``data``, None for an empty record; raises BadRecord / NewerRecord."""
    if len(data) < FRAME.size:
        if not data.strip(b"\0"):
            return None
        raise BadRecord(f"truncated header ({len(data)} bytes)")
    head = data[: FRAME.size]
    if head == _EMPTY:
        return None
    found, version, _, length, crc = FRAME.unpack(head)
    if found != magic:
        raise BadRecord(f"magic {found!r}, expected {magic!r}")
    end = FRAME.size + length
    if end > len(data):
        raise BadRecord(f"length {length} but only {len(data) - FRAME.size} bytes follow")
    payload = data[FRAME.size : end]
    if zlib.crc32(payload, zlib.crc32(head[:12])) != crc:
        raise BadRecord("checksum mismatch")
    # The frame itself never changes between versions, so a version is trusted only once the
    # checksum vouches for it: a flipped bit there is corruption, not a newer writer.
    if version > VERSION:
        raise NewerRecord(f"schema version {version}, this seawall writes {VERSION}")
    if version < 1:
        raise BadRecord(f"schema version {version}")
    return payload


def _text(raw: bytes, limit: int) -> bytes:
    return raw[:limit].decode("utf-8", "ignore").encode()


def _unpack(fmt: struct.Struct, payload: bytes) -> tuple[Any, ...]:
    if len(payload) < fmt.size:
        raise BadRecord(f"payload of {len(payload)} bytes, need {fmt.size}")
    return fmt.unpack_from(payload)


# -- limiter table ----------------------------------------------------------------------------

_TABLE = struct.Struct("<IHH?dd")


class TableHeader(NamedTuple):
    """The first page of a limiter table file."""

    groups: int
    group_slots: int
    slot_size: int
    keyed: bool
    interval: float
    burst: float
    name: str


def encode_table(h: TableHeader) -> bytes:
    """The framed table header."""
    fixed = _TABLE.pack(h.groups, h.group_slots, h.slot_size, h.keyed, h.interval, h.burst)
    return frame(TABLE, fixed + _text(h.name.encode(), 3900))


def decode_table(data: bytes) -> TableHeader | None:
    """The table header in ``data`` (None if empty)."""
    payload = unframe(data, TABLE)
    if payload is None:
        return None
    groups, slots, size, keyed, interval, burst = _unpack(_TABLE, payload)
    name = payload[_TABLE.size :].decode("utf-8", "replace")
    header = TableHeader(groups, slots, size, keyed, interval, burst, name)
    if header.groups < 1 or header.group_slots < 1 or header.slot_size != SLOT_SIZE:
        raise BadRecord(f"impossible table geometry {header[:3]}")
    return header


# -- limiter slot -----------------------------------------------------------------------------

_SLOT = struct.Struct("<16sddd")
KEY_ROOM = SLOT_SIZE - FRAME.size - _SLOT.size
DIGEST_AT = FRAME.size
"""Where a slot's key digest starts, so a group can be searched with ``bytes.find``."""


class KeySlot(NamedTuple):
    """One key's bucket in a limiter table."""

    digest: bytes
    full_at: float
    last_now: float
    blocked_until: float
    key: str


def encode_slot(s: KeySlot) -> bytes:
    """The framed slot, exactly :data:`SLOT_SIZE` bytes."""
    fixed = _SLOT.pack(s.digest, s.full_at, s.last_now, s.blocked_until)
    return frame(SLOT, fixed + _text(s.key.encode(), KEY_ROOM)).ljust(SLOT_SIZE, b"\0")


def decode_slot(data: bytes) -> KeySlot | None:
    """The slot in ``data`` (None if free)."""
    payload = unframe(data, SLOT)
    if payload is None:
        return None
    digest, full_at, last_now, blocked_until = _unpack(_SLOT, payload)
    key = payload[_SLOT.size :].decode("utf-8", "replace")
    return KeySlot(digest, full_at, last_now, blocked_until, key)


# -- breaker ----------------------------------------------------------------------------------

_BREAKER = struct.Struct("<BQIdIQ???IIQQQQQddHIH")
_PROBE = struct.Struct("<Qd")
_BUCKETS = struct.Struct("<I")
_BUCKET = struct.Struct("<qQQQ")


def encode_breaker(s: BreakerState, last_now: float, reset_timeout: float, name: str) -> bytes:
    """The framed breaker record."""
    raw_name = _text(name.encode(), 4000)
    fixed = _BREAKER.pack(
        s.state.value, s.generation, s.failure_count, s.opened_at, s.successes, s.next_probe,
        s.isolated, s.disabled, s.quiet, s.window_failures, s.window_slow, s.successful_calls,
        s.failed_calls, s.rejected_calls, s.neutral_calls, s.state_changes, last_now,
        reset_timeout, len(s.probes), len(s.window), len(raw_name),
    )  # fmt: skip
    probes = b"".join(_PROBE.pack(pid, at) for pid, at in s.probes.items())
    buckets = b""
    if s.buckets:
        buckets = _BUCKETS.pack(len(s.buckets)) + b"".join(_BUCKET.pack(*b) for b in s.buckets)
    return frame(BREAKER, fixed + probes + bytes(s.window) + raw_name + buckets)


class BreakerRecord(NamedTuple):
    """A decoded breaker record."""

    state: BreakerState
    last_now: float
    reset_timeout: float
    name: str


def decode_breaker(data: bytes) -> BreakerRecord | None:
    """The breaker record in ``data`` (None if empty)."""
    payload = unframe(data, BREAKER)
    if payload is None:
        return None
    f = _unpack(_BREAKER, payload)
    n_probes, n_window, n_name = f[18], f[19], f[20]
    at = _BREAKER.size + n_probes * _PROBE.size
    end = at + n_window + n_name
    n_buckets = 0
    if end + _BUCKETS.size <= len(payload):
        (n_buckets,) = _BUCKETS.unpack_from(payload, end)
    if end + (_BUCKETS.size + n_buckets * _BUCKET.size if n_buckets else 0) != len(payload):
        raise BadRecord("breaker record lengths do not add up")
    s = BreakerState()
    try:
        s.state = CircuitState(f[0])
    except ValueError as exc:
        raise BadRecord(f"unknown breaker state {f[0]!r}") from exc
    (s.generation, s.failure_count, s.opened_at, s.successes, s.next_probe, s.isolated,
     s.disabled, s.quiet, s.window_failures, s.window_slow, s.successful_calls, s.failed_calls,
     s.rejected_calls, s.neutral_calls, s.state_changes) = f[1:16]  # fmt: skip
    s.closed_ticket = (s.generation, 0) if s.state is CircuitState.CLOSED else None
    for i in range(n_probes):
        pid, admitted = _PROBE.unpack_from(payload, _BREAKER.size + i * _PROBE.size)
        s.probes[pid] = admitted
    s.window.extend(payload[at : at + n_window])
    name = payload[at + n_window : end].decode("utf-8", "replace")
    for i in range(n_buckets):
        s.buckets.append(list(_BUCKET.unpack_from(payload, end + _BUCKETS.size + i * _BUCKET.size)))
    return BreakerRecord(s, f[16], f[17], name)


# -- bulkhead ---------------------------------------------------------------------------------

_BULKHEAD = struct.Struct("<I")


def encode_bulkhead(max_concurrent: int, name: str) -> bytes:
    """The framed bulkhead info record."""
    return frame(BULKHEAD, _BULKHEAD.pack(max_concurrent) + _text(name.encode(), 4000))


def decode_bulkhead(data: bytes) -> tuple[int, str] | None:
    """``(max_concurrent, name)`` from ``data`` (None if empty)."""
    payload = unframe(data, BULKHEAD)
    if payload is None:
        return None
    (max_concurrent,) = _unpack(_BULKHEAD, payload)
    return max_concurrent, payload[_BULKHEAD.size :].decode("utf-8", "replace")
