"""`seawall status` and `seawall reset` against real file and Redis stores."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from _redis_server import RedisServer
from seawall import Bulkhead, CircuitBreaker, KeyedRateLimiter
from seawall._cli.main import main
from seawall.stores import open_store

pytestmark = pytest.mark.slow

ROWS = [
    ("breaker", "payments", "-", "open"),
    ("bulkhead", "workers", "-", "1/3"),
    ("limiter", "api", "alice", "3"),
    ("limiter", "api", "bob", "4"),
]


@pytest.fixture(params=["file", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty file store or of a fresh redis-server."""
    if request.param == "file":
        (tmp_path / "state").mkdir()
        return f"file://{tmp_path}/state"
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture
def populated(url: str) -> Iterator[str]:
    """The store at ``url`` holding an open breaker, two limiter keys and one held slot."""
    store = open_store(url, timeout=2.0)
    breaker = CircuitBreaker(max_failures=2, reset_timeout=3600, name="payments", store=store)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(_fail)
    limiter = KeyedRateLimiter(1, 36_000, burst=5, name="api", store=store)
    assert [limiter.try_acquire("alice") for _ in range(2)] == [True, True]
    assert limiter.try_acquire("bob")
    bulkhead = Bulkhead(3, name="workers", store=store)
    assert bulkhead.try_acquire()
    try:
        yield url
    finally:
        bulkhead.release()
        store.close()


def _fail() -> None:
    raise ConnectionError("down")


def columns(line: str, starts: list[int]) -> tuple[str, ...]:
    """The first four cells of a table line, cut where the header's columns start."""
    return tuple(line[starts[i] : starts[i + 1]].strip() for i in range(4))


def test_status_table_lists_every_policy_and_key(
    populated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table has one aligned line per policy and key, led by its state."""
    assert main(["status", "--store", populated]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    starts = [header.index(name) for name in ("KIND", "NAME", "KEY", "STATE", "DETAILS")]
    assert columns(header, starts) == ("KIND", "NAME", "KEY", "STATE")
    assert [columns(line, starts) for line in lines] == ROWS
    assert "failed_calls=2" in lines[0]


def test_status_json_has_the_documented_shape(
    populated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints {"store", "policies": [{kind, name, key, state}]} sorted by kind, name, key."""
    assert main(["status", "--json", "--store", populated]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"store", "policies"}
    assert doc["store"] == populated
    policies = doc["policies"]
    assert all(set(p) == {"kind", "name", "key", "state"} for p in policies)
    assert [(p["kind"], p["name"], p["key"]) for p in policies] == [
        ("breaker", "payments", None),
        ("bulkhead", "workers", None),
        ("limiter", "api", "alice"),
        ("limiter", "api", "bob"),
    ]
    breaker, bulkhead, alice, bob = (p["state"] for p in policies)
    assert (breaker["state"], breaker["failed_calls"], breaker["successful_calls"]) == (
        "open",
        2,
        0,
    )
    assert bulkhead.get("held", bulkhead.get("holders")) == 1
    assert (round(alice["tokens"], 3), round(bob["tokens"], 3)) == (3.0, 4.0)


def test_status_sees_state_held_by_another_process(populated: str) -> None:
    """A separate process reads what this one holds: the open breaker and the held slot."""
    done = subprocess.run(
        [sys.executable, "-m", "seawall", "status", "--json", "--store", populated],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    states = {p["name"]: p["state"] for p in json.loads(done.stdout)["policies"]}
    assert states["payments"]["state"] == "open"
    assert states["workers"].get("held", states["workers"].get("holders")) == 1


def test_status_of_an_empty_store(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty store prints one line saying so (or an empty list with --json) and exits 0."""
    assert main(["status", "--store", url]) == 0
    assert capsys.readouterr().out == f"no policy state in {url}\n"
    assert main(["status", "--store", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"store": url, "policies": []}


def test_reset_forgets_one_policy_only(populated: str, capsys: pytest.CaptureFixture[str]) -> None:
    """reset NAME removes that policy's records (every key), leaves the others, and exits 0."""
    assert main(["reset", "api", "--store", populated]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(rf"reset 'api': [1-9]\d* records? removed from {populated}\n", out)
    assert main(["status", "--store", populated]) == 0
    names = [line.split()[1] for line in capsys.readouterr().out.splitlines()[1:]]
    assert names == ["payments", "workers"]


def test_reset_of_an_unknown_name_exits_1(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing to reset is exit status 1 with a message naming the policy and the store."""
    assert main(["reset", "nobody", "--store", url]) == 1
    assert capsys.readouterr().err == f"seawall reset: no policy named 'nobody' in {url}\n"


def test_store_url_from_the_environment(
    populated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --store, SEAWALL_STORE names the store."""
    monkeypatch.setenv("SEAWALL_STORE", populated)
    assert main(["status"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + len(ROWS)


def test_option_beats_the_environment(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--store wins over SEAWALL_STORE."""
    monkeypatch.setenv("SEAWALL_STORE", "ftp://ignored")
    assert main(["status", "--store", url]) == 0
    assert capsys.readouterr().out == f"no policy state in {url}\n"


@pytest.mark.parametrize("command", [["status"], ["reset", "x"]])
def test_no_store_is_a_usage_error(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With neither --store nor SEAWALL_STORE the command explains what to pass and exits 2."""
    monkeypatch.delenv("SEAWALL_STORE", raising=False)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"seawall {command[0]}: no store given: pass --store URL or set ")


def test_memory_store_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """memory:// cannot be read from another process: a clear message and exit 2."""
    assert main(["status", "--store", "memory://"]) == 2
    assert "in-process memory store" in capsys.readouterr().err


def test_bad_url_names_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown scheme is exit 2 and the message quotes the URL."""
    assert main(["reset", "x", "--store", "ftp://host/dir"]) == 2
    assert capsys.readouterr().err.startswith(
        "seawall reset: unsupported store URL 'ftp://host/dir'"
    )


def test_missing_file_store_directory_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file:// URL naming no directory is exit 2, and the command creates nothing."""
    missing = tmp_path / "typo"
    assert main(["status", "--store", f"file://{missing}"]) == 2
    assert capsys.readouterr().err == (
        f"seawall status: no file store at file://{missing}: {missing} is not a directory\n"
    )
    assert not missing.exists()


@pytest.mark.parametrize("command", [["status"], ["reset", "x"]])
def test_unreachable_redis_names_the_url(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A Redis store that does not answer is exit 2 with a message naming its URL."""
    server = RedisServer()  # started, then killed: nothing listens on its port any more
    server.start()
    server.close()
    assert main([*command, "--store", server.url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"seawall {command[0]}: cannot use the store at {server.url}: ")


def test_status_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    """`seawall status | head -1` ends without a BrokenPipeError traceback."""
    url = (tmp_path / "state").as_uri()
    store = open_store(url)
    for i in range(2000):
        KeyedRateLimiter(5, name="many", store=store).try_acquire(f"client-{i}")
    status = subprocess.Popen(
        [sys.executable, "-m", "seawall", "status", "--store", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert status.stdout is not None
    first = status.stdout.readline()
    status.stdout.close()  # what head does after its line
    _, err = status.communicate(timeout=60)
    assert first.startswith(b"KIND")
    assert (status.returncode, err) == (0, b"")
