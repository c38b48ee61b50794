"""Heartbeat: beats at start and on interval, atomic 0600 writes, stop marker, total reader."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import threading
from pathlib import Path

import anyio
import pytest

from seawall import Heartbeat, HeartbeatError, HeartbeatState
from seawall.testing import FakeClock

START_ISO = "2023-11-14T22:13:20+00:00"  # FakeClock's default wall time, 1_700_000_000


def make(path: Path, clock: FakeClock, **kwargs: object) -> Heartbeat:
    return Heartbeat(path, interval=10, clock=clock, **kwargs)  # type: ignore[arg-type]


def test_start_writes_the_first_beat_at_once(tmp_path: Path, clock: FakeClock) -> None:
    """start() writes the state before returning, with timestamp, pid, hostname and metadata."""
    path = tmp_path / "svc.heartbeat"
    with make(path, clock, metadata={"version": "1.0.0"}):
        state = Heartbeat.read_state(path)
        assert state == HeartbeatState(
            timestamp=START_ISO,
            pid=os.getpid(),
            hostname=socket.gethostname(),
            metadata={"version": "1.0.0"},
            stopped=False,
        )


def test_thread_beats_once_per_interval(tmp_path: Path, clock: FakeClock) -> None:
    """The background thread writes again exactly when each interval has passed."""
    path = tmp_path / "svc.heartbeat"
    heartbeat = make(path, clock)
    heartbeat.start()
    try:
        clock.wait_for_sleepers(1)
        clock.advance(9.5)
        assert heartbeat.beats == 1
        clock.advance(0.5)
        clock.wait_for_sleepers(1)
        assert heartbeat.beats == 2
        state = Heartbeat.read_state(path)
        assert state is not None
        assert state.timestamp == "2023-11-14T22:13:30+00:00"
        clock.advance(10)
        clock.wait_for_sleepers(1)
        assert heartbeat.beats == 3
    finally:
        heartbeat.stop()


def test_stop_marks_the_file_stopped(tmp_path: Path, clock: FakeClock) -> None:
    """After stop() the file says stopped, so is_alive is False at once."""
    path = tmp_path / "svc.heartbeat"
    heartbeat = make(path, clock)
    heartbeat.start()
    assert Heartbeat.is_alive(path, 30, clock=clock) is True
    heartbeat.stop()
    state = Heartbeat.read_state(path)
    assert state is not None
    assert state.stopped is True
    assert Heartbeat.is_alive(path, 30, clock=clock) is False
    assert heartbeat.is_running is False
    assert heartbeat.beats == 2
    heartbeat.stop()  # idempotent
    assert heartbeat.beats == 2


def test_is_alive_compares_age_with_max_age(tmp_path: Path, clock: FakeClock) -> None:
    """A beat exactly max_age old is alive; one a moment older is not."""
    path = tmp_path / "svc.heartbeat"
    make(path, clock).beat()
    clock.advance(30)
    assert Heartbeat.is_alive(path, 30, clock=clock) is True
    clock.advance(0.5)
    assert Heartbeat.is_alive(path, 30, clock=clock) is False
    assert Heartbeat.is_alive(tmp_path / "missing", 30, clock=clock) is False


def test_state_age_and_when(clock: FakeClock) -> None:
    """HeartbeatState.age measures from the beat to a wall time; when is an aware datetime."""
    state = HeartbeatState(START_ISO, 1, "host", {})
    assert state.age(1_700_000_042.5) == 42.5
    assert state.when.timestamp() == 1_700_000_000.0


def test_double_start_raises(tmp_path: Path, clock: FakeClock) -> None:
    """Starting a running heartbeat raises HeartbeatError and leaves it running."""
    heartbeat = make(tmp_path / "svc.heartbeat", clock)
    heartbeat.start()
    try:
        with pytest.raises(HeartbeatError, match="already running"):
            heartbeat.start()
        assert heartbeat.is_running is True
    finally:
        heartbeat.stop()


def test_file_mode_is_0600_whatever_the_umask(tmp_path: Path, clock: FakeClock) -> None:
    """The heartbeat file is readable by its owner only, even under umask 0."""
    path = tmp_path / "svc.heartbeat"
    old = os.umask(0)
    try:
        make(path, clock).beat()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_symlink_at_the_path_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    """A symlink planted at the path makes start() raise, naming the path; the target is kept."""
    target = tmp_path / "precious.txt"
    target.write_text("do not overwrite")
    path = tmp_path / "svc.heartbeat"
    path.symlink_to(target)
    heartbeat = make(path, clock)
    with pytest.raises(HeartbeatError, match=r"svc\.heartbeat.*symlink"):
        heartbeat.start()
    assert heartbeat.is_running is False
    assert target.read_text() == "do not overwrite"
    assert path.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt", "svc.heartbeat"]


def test_a_directory_at_the_path_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    """A non-regular file at the path raises HeartbeatError instead of being replaced."""
    path = tmp_path / "svc.heartbeat"
    path.mkdir()
    with pytest.raises(HeartbeatError, match="not a regular file"):
        make(path, clock).beat()


def test_missing_parent_directory_is_created_0700(tmp_path: Path, clock: FakeClock) -> None:
    """A missing parent directory is created, private to the owner."""
    path = tmp_path / "run" / "svc.heartbeat"
    make(path, clock).beat()
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert Heartbeat.read_state(path) is not None


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"[1, 2, 3]",
        b"42",
        b"null",
        b'"text"',
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",
        b'{"timestamp": "\xff\xfe", "pid": 1, "hostname": "h", "metadata": {}}',
        b"[" * 100_000,
        b'{"pid": 1, "hostname": "h", "metadata": {}}',
        b'{"timestamp": "2023-11-14T22:13:20+00:00", "pid": "1", "hostname": "h"}',
        b'{"timestamp": "2023-11-14T22:13:20+00:00", "pid": true, "hostname": "h"}',
        b'{"timestamp": "2023-11-14T22:13:20+00:00", "pid": 1, "hostname": 7}',
        b'{"timestamp": "2023-11-14T22:13:20+00:00", "pid": 1, "hostname": "h", "metadata": []}',
        b'{"timestamp": "2023-11-14T22:13:20", "pid": 1, "hostname": "h"}',
        b'{"timestamp": "yesterday", "pid": 1, "hostname": "h"}',
        b'{"timestamp": 1700000000, "pid": 1, "hostname": "h"}',
        b'{"timestamp": "2023-11-14T22:13:20+00:00", "pid": 1, "hostname": "h", "stopped": 1}',
    ],
)
def test_read_state_returns_none_for_malformed_content(tmp_path: Path, content: bytes) -> None:
    """read_state never raises on content: anything that is not a heartbeat reads as None."""
    path = tmp_path / "svc.heartbeat"
    path.write_bytes(content)
    assert Heartbeat.read_state(path) is None


def test_read_state_returns_none_for_missing_or_unreadable_paths(tmp_path: Path) -> None:
    """A missing file, a directory and a path with a NUL byte all read as None."""
    assert Heartbeat.read_state(tmp_path / "missing") is None
    assert Heartbeat.read_state(tmp_path) is None
    assert Heartbeat.read_state(str(tmp_path / "a\x00b")) is None


def test_read_state_accepts_a_minimal_foreign_file(tmp_path: Path) -> None:
    """A file without metadata or stopped (e.g. from the reference module) still reads."""
    path = tmp_path / "svc.heartbeat"
    path.write_text('{"timestamp": "2023-11-14T22:13:20Z", "pid": 7, "hostname": "h"}')
    assert Heartbeat.read_state(path) == HeartbeatState("2023-11-14T22:13:20Z", 7, "h", {}, False)


def test_two_heartbeats_in_one_directory_never_mix(tmp_path: Path, clock: FakeClock) -> None:
    """Concurrent writers in one directory use distinct temp files and never swap content."""
    paths = {name: tmp_path / f"svc.{name}" for name in ("heartbeat", "status")}
    beats = {name: make(path, clock, metadata={"name": name}) for name, path in paths.items()}
    seen: dict[str, set[str]] = {name: set() for name in paths}

    def write_and_read(name: str) -> None:
        for _ in range(300):
            beats[name].beat()
            state = Heartbeat.read_state(paths[name])
            assert state is not None
            seen[name].add(state.metadata["name"])

    threads = [threading.Thread(target=write_and_read, args=(name,)) for name in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"heartbeat": {"heartbeat"}, "status": {"status"}}
    assert {name: hb.failures for name, hb in beats.items()} == {"heartbeat": 0, "status": 0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc.heartbeat", "svc.status"]


def test_a_reader_never_sees_a_partial_file(tmp_path: Path, clock: FakeClock) -> None:
    """While one thread rewrites the file, every read in a loop gets a complete state."""
    path = tmp_path / "svc.heartbeat"
    heartbeat = make(path, clock, metadata={"padding": "x" * 20_000})
    heartbeat.beat()
    done = threading.Event()
    reads: list[HeartbeatState | None] = []

    def writer() -> None:
        for _ in range(200):
            heartbeat.beat()
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not done.is_set():
        reads.append(Heartbeat.read_state(path))
    thread.join()
    assert None not in reads
    assert heartbeat.beats == 201


def test_background_write_failure_is_logged_and_counted(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed write in the thread is logged under seawall and counted; the thread survives."""
    path = tmp_path / "svc.heartbeat"
    heartbeat = make(path, clock)
    heartbeat.start()
    try:
        clock.wait_for_sleepers(1)
        path.unlink()
        path.mkdir()
        with caplog.at_level(logging.WARNING, logger="seawall"):
            clock.advance(10)
            clock.wait_for_sleepers(1)
        assert heartbeat.failures == 1
        assert isinstance(heartbeat.last_error, HeartbeatError)
        assert [r.name for r in caplog.records] == ["seawall"]
        assert "heartbeat write failed" in caplog.records[0].getMessage()
        path.rmdir()
        clock.advance(10)
        clock.wait_for_sleepers(1)
        assert (heartbeat.beats, heartbeat.failures) == (2, 1)
    finally:
        heartbeat.stop()


def test_metadata_is_kept_by_reference(tmp_path: Path, clock: FakeClock) -> None:
    """Changing the metadata dict shows in the next beat, as in the reference guide."""
    path = tmp_path / "svc.heartbeat"
    metadata = {"status": "starting"}
    heartbeat = make(path, clock, metadata=metadata)
    heartbeat.beat()
    metadata["status"] = "ready"
    heartbeat.beat()
    assert json.loads(path.read_text())["metadata"] == {"status": "ready"}


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"interval": 0}, ValueError, "interval"),
        ({"interval": -1}, ValueError, "interval"),
        ({"interval": float("nan")}, ValueError, "interval"),
        ({"interval": "10"}, TypeError, "interval"),
        ({"metadata": ["a"]}, TypeError, "metadata"),
        ({"metadata": {"a": object()}}, TypeError, "metadata"),
    ],
)
def test_bad_arguments_raise(
    tmp_path: Path, kwargs: dict[str, object], error: type[Exception], pattern: str
) -> None:
    """Invalid settings raise ValueError or TypeError naming the parameter."""
    with pytest.raises(error, match=pattern):
        Heartbeat(tmp_path / "x", **kwargs)  # type: ignore[arg-type]


def test_state_file_must_be_a_path() -> None:
    """A state_file that is not a path raises TypeError."""
    with pytest.raises(TypeError, match="state_file"):
        Heartbeat(None)  # type: ignore[arg-type]


def test_constructor_does_no_io(tmp_path: Path) -> None:
    """Creating a Heartbeat writes nothing and starts nothing."""
    heartbeat = Heartbeat(tmp_path / "svc.heartbeat")
    assert list(tmp_path.iterdir()) == []
    assert heartbeat.is_running is False


@pytest.mark.anyio
async def test_async_heartbeat_beats_on_the_loop(tmp_path: Path, clock: FakeClock) -> None:
    """async with beats at once, then once per interval from a task, then marks stopped."""
    path = tmp_path / "svc.heartbeat"
    async with make(path, clock) as heartbeat:
        assert heartbeat.beats == 1
        await anyio.wait_all_tasks_blocked()
        clock.advance(9.5)
        assert heartbeat.beats == 1
        clock.advance(0.5)
        await anyio.to_thread.run_sync(clock.wait_for_sleepers, 1)
        assert heartbeat.beats == 2
        state = Heartbeat.read_state(path)
        assert state is not None
        assert (state.timestamp, state.stopped) == ("2023-11-14T22:13:30+00:00", False)
    state = Heartbeat.read_state(path)
    assert state is not None
    assert state.stopped is True
    assert heartbeat.is_running is False
    assert heartbeat.beats == 3


@pytest.mark.anyio
async def test_astart_astop_and_modes(tmp_path: Path, clock: FakeClock) -> None:
    """astart twice raises, stop() refuses an async heartbeat, astop is idempotent."""
    heartbeat = make(tmp_path / "svc.heartbeat", clock)
    await heartbeat.astart()
    try:
        with pytest.raises(HeartbeatError, match="already running"):
            await heartbeat.astart()
        with pytest.raises(HeartbeatError, match="astop"):
            heartbeat.stop()
    finally:
        await heartbeat.astop()
    await heartbeat.astop()
    assert heartbeat.beats == 2


@pytest.mark.anyio
async def test_failed_astart_leaves_the_heartbeat_idle(tmp_path: Path, clock: FakeClock) -> None:
    """When the first beat fails, astart raises and the heartbeat can be started again."""
    path = tmp_path / "svc.heartbeat"
    path.mkdir()
    heartbeat = make(path, clock)
    with pytest.raises(HeartbeatError):
        await heartbeat.astart()
    assert heartbeat.is_running is False
    path.rmdir()
    async with heartbeat:
        assert heartbeat.is_running is True
