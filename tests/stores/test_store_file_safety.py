"""FileStore safety: permissions, symlinks, corrupt records, newer schemas, clock jumps, locks."""

from __future__ import annotations

import logging
import os
import stat
import struct
import zlib
from pathlib import Path

import pytest

from _procs.file_store_common import KEYED, LIMITER, POOL, breaker
from seawall._errors import StoreError
from seawall.stores._base import StoreUnavailableError
from seawall.stores._file.files import base_name
from seawall.stores._file.fs import remote_fs_type
from seawall.stores._file.records import FRAME
from seawall.stores._file.store import FileStore
from seawall.stores._file.table import HEADER_PAGE, KEYED_GROUPS, key_digest
from seawall.testing import FakeClock

WALL = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> FileStore:
    """A file store in a fresh directory on the fake clock."""
    return FileStore(tmp_path / "state", clock=clock)


def _data(store: FileStore, kind: str, name: str, suffix: str) -> Path:
    return Path(store.path) / (base_name(kind, name) + suffix)


def _slot_offset(key: str | None, groups: int) -> int:
    group = int.from_bytes(key_digest(key)[:8], "little") % groups
    return HEADER_PAGE + group * 32 * 128


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "seawall.stores"]


# -- permissions and symlinks -----------------------------------------------------------------


def test_directory_is_0700_and_files_are_0600(store: FileStore) -> None:
    """The first call creates the directory 0700 and every file 0600."""
    old = os.umask(0o022)
    try:
        store.reserve(LIMITER, None, 1, 0.0)
        store.admit(breaker())
        hold = store.try_hold(POOL)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o700
    modes = {stat.S_IMODE(p.stat().st_mode) for p in Path(store.path).iterdir()}
    assert modes == {0o600}
    assert hold is not None
    hold.release()


def test_a_group_writable_directory_is_refused(tmp_path: Path) -> None:
    """An existing directory writable by others raises StoreError naming it."""
    path = tmp_path / "shared"
    path.mkdir()
    path.chmod(0o777)
    with pytest.raises(StoreError, match=r"shared.*writable by group or others"):
        FileStore(path).reserve(LIMITER, None, 1, 0.0)


def test_a_symlinked_directory_is_refused(tmp_path: Path) -> None:
    """A directory path that is a symlink raises StoreError and nothing is written."""
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(StoreError, match="is a symlink"):
        FileStore(tmp_path / "link").reserve(LIMITER, None, 1, 0.0)
    assert list(real.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand the directory to another uid")
def test_a_directory_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    """A directory belonging to another uid raises StoreError naming the owner."""
    path = tmp_path / "theirs"
    path.mkdir(mode=0o700)
    os.chown(path, 65534, 65534)
    with pytest.raises(StoreError, match=r"theirs.*belongs to uid 65534"):
        FileStore(path).reserve(LIMITER, None, 1, 0.0)


def test_a_symlinked_data_file_is_refused(store: FileStore, tmp_path: Path) -> None:
    """A record file planted as a symlink is never followed or written through."""
    os.mkdir(store.path, 0o700)
    target = tmp_path / "victim"
    target.write_bytes(b"precious")
    _data(store, "brk", "db", ".rec").symlink_to(target)
    with pytest.raises(StoreError, match="symlink"):
        store.admit(breaker())
    assert target.read_bytes() == b"precious"


def test_a_hard_linked_data_file_is_refused(store: FileStore, tmp_path: Path) -> None:
    """A record file with a second link is refused, the linked file left alone."""
    os.mkdir(store.path, 0o700)
    target = tmp_path / "victim"
    target.write_bytes(b"precious")
    os.link(target, _data(store, "brk", "db", ".rec"))
    with pytest.raises(StoreError, match="2 links"):
        store.admit(breaker())
    assert target.read_bytes() == b"precious"


def test_remote_file_systems_are_recognised(tmp_path: Path) -> None:
    """The mount table lookup names NFS and FUSE mounts and ignores local ones."""
    table = tmp_path / "mountinfo"
    table.write_text(
        "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "40 22 0:50 / /srv/nfs rw - nfs4 host:/export rw\n"
        "41 22 0:51 / /home/me/fuse rw,nosuid - fuse.sshfs me@host: rw\n"
    )
    assert remote_fs_type("/srv/nfs/app/state", str(table)) == "nfs4"
    assert remote_fs_type("/home/me/fuse", str(table)) == "fuse.sshfs"
    assert remote_fs_type("/srv/nfsish", str(table)) is None
    assert remote_fs_type("/var/lib/app", str(table)) is None


# -- unreadable records -----------------------------------------------------------------------


def test_a_corrupt_breaker_record_resets_closed_with_one_warning(
    store: FileStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage in the breaker record is set aside, warned about once, and reset to closed."""
    spec = breaker()
    store.force(spec, "open")
    path = _data(store, "brk", "db", ".rec")
    raw = bytearray(path.read_bytes())
    raw[FRAME.size + 3] ^= 0xFF
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="seawall.stores"):
        assert store.admit(spec) == ((0, 0), None)
        assert store.admit(spec) == ((0, 0), None)
    (message,) = _warnings(caplog)
    assert path.name in message
    assert "checksum mismatch" in message
    aside = path.with_name(path.name + ".corrupt-1")
    assert aside.read_bytes() == bytes(raw)
    assert stat.S_IMODE(aside.stat().st_mode) == 0o600
    assert store.record(spec, (0, 0), 1, 0.0) is None
    assert store.view(spec).failed_calls == 1


def test_a_truncated_limiter_slot_resets_to_an_empty_bucket(
    store: FileStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A slot cut short is reset to zero tokens (not a full bucket) with one warning."""
    store.reserve(LIMITER, None, 1, 0.0)
    path = _data(store, "lim", "api", ".tab")
    offset = _slot_offset(None, 1)
    with path.open("r+b") as f:
        f.seek(offset + 40)
        f.write(bytes(88))  # the tail of the record lost, as after a torn write
    with caplog.at_level(logging.WARNING, logger="seawall.stores"):
        assert store.reserve(LIMITER, None, 1, 0.0).wait == 0.5  # empty: next token in 0.5 s
        assert store.peek(LIMITER, None) == (0.0, 1.0)
    (message,) = _warnings(caplog)
    assert path.name in message
    clock.advance(0.5)
    assert store.reserve(LIMITER, None, 1, 0.0).wait == 0.0
    assert store.reserve(LIMITER, None, 1, 0.0).wait == 0.5


def test_a_corrupt_slot_in_a_keys_group_resets_that_key_safely(
    store: FileStore, caplog: pytest.LogCaptureFixture
) -> None:
    """When the key's own digest is smashed, the key still gets an empty bucket, not a full one."""
    store.reserve(KEYED, "alice", 1, 0.0)
    path = _data(store, "lim", "per-client", ".tab")
    offset = _slot_offset("alice", KEYED_GROUPS)
    with path.open("r+b") as f:
        f.seek(offset + FRAME.size)
        f.write(b"\xff" * 16)  # the digest itself
    with caplog.at_level(logging.WARNING, logger="seawall.stores"):
        assert store.peek(KEYED, "alice") == (0.0, 1.0)
        assert store.reserve(KEYED, "bob", 1, 0.0).wait == 0.0
    assert len(_warnings(caplog)) == 1


def test_a_corrupt_table_header_is_rewritten_and_keys_survive(
    store: FileStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A smashed header page is set aside and rewritten; the key slots keep their state."""
    store.reserve(LIMITER, None, 2, 0.0)
    path = _data(store, "lim", "api", ".tab")
    with path.open("r+b") as f:
        f.write(b"garbage!")
    other = FileStore(store.path, clock=FakeClock())
    with caplog.at_level(logging.WARNING, logger="seawall.stores"):
        assert other.reserve(LIMITER, None, 1, 0.0).wait == 0.5
    assert len(_warnings(caplog)) == 1
    assert [p.name for p in other.status()] == ["api"]


def test_set_aside_copies_are_bounded(store: FileStore, caplog: pytest.LogCaptureFixture) -> None:
    """After five copies the sixth corruption is still reset and warned, but not copied."""
    spec = breaker()
    path = _data(store, "brk", "db", ".rec")
    with caplog.at_level(logging.WARNING, logger="seawall.stores"):
        for _ in range(6):
            store.force(spec, "open")
            path.write_bytes(b"not a breaker record at all")
            assert store.view(spec).state == "closed"
    assert len(_warnings(caplog)) == 6
    assert "too many copies" in _warnings(caplog)[-1]
    assert sorted(p.name for p in Path(store.path).glob("*.corrupt-*")) == [
        f"{path.name}.corrupt-{n}" for n in range(1, 6)
    ]


def test_a_newer_schema_is_refused_not_overwritten(store: FileStore) -> None:
    """A record from a newer seawall raises StoreUnavailableError and stays byte for byte."""
    spec = breaker()
    store.force(spec, "open")
    path = _data(store, "brk", "db", ".rec")
    payload = path.read_bytes()[FRAME.size :]
    head = FRAME.pack(b"SWBR", 99, 0, len(payload), 0)[:12]
    newer = head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload
    path.write_bytes(newer)
    with pytest.raises(StoreUnavailableError, match="schema version 99"):
        store.admit(spec)
    assert path.read_bytes() == newer


def test_a_version_field_hit_by_a_flipped_bit_is_corruption(
    store: FileStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A version that the checksum does not vouch for is reset with a warning, not refused."""
    spec = breaker()
    store.force(spec, "open")
    path = _data(store, "brk", "db", ".rec")
    raw = bytearray(path.read_bytes())
    raw[4] = 99
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="seawall.stores"):
        assert store.view(spec).state == "closed"
    assert len(_warnings(caplog)) == 1


# -- clock jumps ------------------------------------------------------------------------------


def test_a_backward_jump_grants_no_extra_tokens(store: FileStore, clock: FakeClock) -> None:
    """After spending the burst, stepping the wall clock back 1 h gives nothing for free."""
    store.reserve(LIMITER, None, 2, 0.0)
    clock.jump_wall(-3600.0)
    assert store.reserve(LIMITER, None, 1, 0.0).wait == 0.5
    assert store.peek(LIMITER, None) == (0.0, 1.0)
    clock.advance(0.5)
    assert store.reserve(LIMITER, None, 1, 0.0).wait == 0.0
    assert store.reserve(LIMITER, None, 1, 0.0).wait == 0.5


def test_a_backward_jump_never_wedges_an_open_breaker(store: FileStore, clock: FakeClock) -> None:
    """After a 1 h step back, an open breaker half-opens one reset_timeout later, not 1 h."""
    spec = breaker()
    store.record(spec, (0, 0), 1, 0.0)
    store.record(spec, (0, 0), 1, 0.0)
    clock.advance(4.0)
    clock.jump_wall(-3600.0)
    assert store.admit(spec) == (10.0, None)  # no time passes during a jump: 4 s are lost
    clock.advance(9.0)
    assert store.admit(spec) == (1.0, None)
    clock.advance(1.0)
    ticket, moved = store.admit(spec)
    assert ticket == (2, 1)
    assert moved is not None
    assert moved.at == WALL + 14.0 - 3600.0


def test_time_seen_by_a_refusal_survives_a_backward_jump(
    store: FileStore, clock: FakeClock
) -> None:
    """A refused reservation still records its reading, so a later step back keeps that time."""
    store.reserve(LIMITER, None, 2, 0.0)
    clock.advance(0.25)
    assert store.reserve(LIMITER, None, 1, 0.0).wait == 0.25
    clock.jump_wall(-100.0)
    assert store.reserve(LIMITER, None, 1, 0.0).wait == 0.25


def test_time_seen_by_a_view_survives_a_backward_jump(store: FileStore, clock: FakeClock) -> None:
    """An open breaker viewed 4 s in still has 6 s to go after the wall clock steps back."""
    spec = breaker()
    store.force(spec, "open")
    store.force(spec, "reset")
    store.record(spec, (2, 0), 1, 0.0)
    store.record(spec, (2, 0), 1, 0.0)
    clock.advance(4.0)
    assert store.view(spec).state == "open"
    clock.jump_wall(-3600.0)
    assert store.admit(spec) == (6.0, None)


def test_a_forward_jump_fills_the_bucket_only_to_burst(store: FileStore, clock: FakeClock) -> None:
    """A day's jump forward refills to exactly the burst."""
    store.reserve(LIMITER, None, 2, 0.0)
    clock.jump_wall(86400.0)
    assert store.peek(LIMITER, None) == (2.0, 0.0)
    assert store.reserve(LIMITER, None, 3, 0.0).wait == 0.5


# -- locks ------------------------------------------------------------------------------------


def test_a_lock_held_elsewhere_times_out_after_timeout_and_writes_nothing(
    store: FileStore, clock: FakeClock
) -> None:
    """While another descriptor holds the lock, reserve polls for exactly timeout, then raises."""
    store.reserve(LIMITER, None, 1, 0.0)
    path = _data(store, "lim", "api", ".tab")
    before = path.read_bytes()
    table = store._files.table(base_name("lim", "api"))
    held = table.lock.acquire(clock, 0.0)
    start = clock.monotonic()
    with pytest.raises(StoreUnavailableError, match="stayed locked"):
        store.reserve(LIMITER, None, 1, 0.0)
    assert clock.monotonic() - start == pytest.approx(0.1)
    assert path.read_bytes() == before
    table.lock.release(held)
    assert store.reserve(LIMITER, None, 1, 0.0).remaining == 0


def test_a_zero_timeout_tries_once(tmp_path: Path, clock: FakeClock) -> None:
    """timeout=0 fails at once when the lock is taken, without sleeping."""
    store = FileStore(tmp_path / "s", timeout=0, clock=clock)
    store.reserve(LIMITER, None, 1, 0.0)
    table = store._files.table(base_name("lim", "api"))
    held = table.lock.acquire(clock, 0.0)
    with pytest.raises(StoreUnavailableError):
        store.peek(LIMITER, None)
    assert clock.monotonic() == 0.0
    table.lock.release(held)
