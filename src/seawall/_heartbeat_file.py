"""The heartbeat file: its content (:class:`HeartbeatState`), a total reader, a safe writer.

Theory of operation: the writer never edits the file in place. It writes the whole new state to
a fresh temporary file in the same directory (``mkstemp``: an ``O_EXCL`` name no other writer can
share, mode 0600 whatever the umask), fsyncs it and renames it over the target. A reader
therefore sees either the old state or the new one, never half of one, and two heartbeats in
one directory never touch each other's temporary files. ``os.replace`` replaces a symlink at the
target instead of writing through it; on top of that the writer refuses outright when the
target is a symlink or not a regular file, so a planted link is reported instead of silently
replaced.

The reader is total: any content that is not exactly a heartbeat (not UTF-8, not JSON, not an
object, a missing field, a wrong type, an unparseable timestamp, a huge file) reads as None.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._errors import HeartbeatError

__all__ = ["HeartbeatState", "parse_state", "read_state", "write_state"]

#: A heartbeat file is a few hundred bytes; anything far larger is not one of ours.
MAX_FILE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class HeartbeatState:
    """One heartbeat as written to disk.

    ``timestamp`` is the ISO 8601 UTC time of the beat (as in the reference guide, so
    ``datetime.fromisoformat(state.timestamp)`` works); ``stopped`` is True when the process
    stopped its heartbeat cleanly, so a monitor need not wait out the max age.
    """

    timestamp: str
    pid: int
    hostname: str
    metadata: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False

    @property
    def when(self) -> datetime:
        """The beat time as an aware UTC ``datetime``."""
        return datetime.fromisoformat(self.timestamp).astimezone(UTC)

    def age(self, now: float) -> float:
        """Seconds from the beat to ``now`` (wall seconds since the epoch; negative if ahead)."""
        return now - self.when.timestamp()

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to the file."""
        return {
            "timestamp": self.timestamp,
            "pid": self.pid,
            "hostname": self.hostname,
            "metadata": self.metadata,
            "stopped": self.stopped,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeartbeatState:
        """The state held by ``data``, as the guide's ``from_dict`` reads it.

        A missing ``timestamp``, ``pid`` or ``hostname`` raises ``KeyError`` (as in the guide);
        a field of the wrong type raises ``TypeError`` and a timestamp that is not ISO 8601
        with a zone raises ``ValueError``, each naming the field and the value.
        ``read_state`` catches all three and returns None.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"heartbeat state must be a mapping, got {data!r}")
        timestamp, pid, hostname = data["timestamp"], data["pid"], data["hostname"]
        metadata, stopped = data.get("metadata", {}), data.get("stopped", False)
        _check_type("timestamp", timestamp, str)
        if not _is_aware_iso(timestamp):
            raise ValueError(f"heartbeat timestamp must be ISO 8601 with a zone, got {timestamp!r}")
        if isinstance(pid, bool):
            raise TypeError(f"heartbeat pid must be an int, got {pid!r}")
        _check_type("pid", pid, int)
        _check_type("hostname", hostname, str)
        _check_type("metadata", metadata, dict)
        _check_type("stopped", stopped, bool)
        return cls(timestamp, pid, hostname, metadata, stopped)


def _check_type(key: str, value: object, kind: type) -> None:
    if not isinstance(value, kind):
        article = "an" if kind is int else "a"
        raise TypeError(f"heartbeat {key} must be {article} {kind.__name__}, got {value!r}")


def _is_aware_iso(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


def format_timestamp(wall: float) -> str:
    """ISO 8601 UTC text for wall-clock seconds since the epoch."""
    return datetime.fromtimestamp(wall, tz=UTC).isoformat()


def parse_state(raw: bytes) -> HeartbeatState | None:
    """Decode file content; None for anything that is not a heartbeat. Never raises."""
    if len(raw) > MAX_FILE_BYTES:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # ValueError covers JSON and UTF-8 decoding errors
        return None
    try:
        return HeartbeatState.from_dict(data)
    except (KeyError, TypeError, ValueError):
        return None


def read_state(path: str | os.PathLike[str]) -> HeartbeatState | None:
    """Read and decode ``path``; None when it is missing, unreadable or malformed."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except (OSError, ValueError):  # ValueError: e.g. an embedded NUL in the path
        return None
    return parse_state(raw)


def check_target(path: Path) -> None:
    """Raise HeartbeatError unless ``path`` is absent or a regular file (not a symlink)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise HeartbeatError(
            f"Failed to write heartbeat {str(path)!r}: cannot inspect it: {exc}"
        ) from exc
    if stat.S_ISLNK(info.st_mode):
        raise HeartbeatError(f"Failed to write heartbeat {str(path)!r}: it is a symlink")
    if not stat.S_ISREG(info.st_mode):
        raise HeartbeatError(f"Failed to write heartbeat {str(path)!r}: it is not a regular file")


def write_state(path: Path, state: HeartbeatState) -> None:
    """Atomically replace ``path`` with ``state`` (mode 0600); HeartbeatError on failure."""
    try:
        payload = json.dumps(state.to_dict(), indent=2, sort_keys=True).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise HeartbeatError(
            f"Failed to write heartbeat: its metadata is not JSON-serialisable: {exc}"
        ) from exc
    check_target(path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise HeartbeatError(f"Failed to write heartbeat {str(path)!r}: {exc}") from exc
    try:
        _write_all(fd, payload)
        os.replace(temp_name, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        if isinstance(exc, OSError):
            raise HeartbeatError(f"Failed to write heartbeat {str(path)!r}: {exc}") from exc
        raise


def _write_all(fd: int, payload: bytes) -> None:
    try:
        os.fchmod(fd, 0o600)  # mkstemp already uses 0600; say it explicitly, umask-proof
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
