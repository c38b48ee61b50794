"""Secrets stay secret: a Redis password never shows in logs, reprs, events or CLI output.

Every test runs against a real redis-server that requires a password and looks for that
password (and the wrong one it is given) wherever seawall writes text.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator

import anyio
import pytest

from _flaky_store import FlakyStore
from _redis_server import REDIS_PASSWORD, RedisServer
from seawall import Bulkhead, CircuitBreaker, KeyedRateLimiter, RateLimiter, StoreError
from seawall._cli.main import main
from seawall._redact import redact_url
from seawall.events import StoreDegraded, add_listener
from seawall.stores import RedisStore, open_store
from seawall.testing import FakeClock

pytestmark = pytest.mark.slow

WRONG = "wrong-Zk9-secret"
SECRETS = (REDIS_PASSWORD, WRONG)


def shown(server: RedisServer) -> str:
    """The URL of ``server`` as seawall may show it."""
    return f"redis://:***@127.0.0.1:{server.port}/0"


def wrong_url(server: RedisServer) -> str:
    """A URL for ``server`` with the wrong password."""
    return f"redis://:{WRONG}@127.0.0.1:{server.port}/0"


def assert_no_secret(text: str) -> None:
    """Neither the real nor the wrong password appears in ``text``."""
    for secret in SECRETS:
        assert secret not in text


@pytest.fixture
def locked_server() -> Iterator[RedisServer]:
    """A password-protected redis-server of its own, for a test that kills and restarts it."""
    server = RedisServer(password=REDIS_PASSWORD)
    try:
        server.start()
        yield server
    finally:
        server.close()


# -- the one redaction helper ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://alice:pw@h:6380/2", "rediss://alice:***@h:6380/2"),
        ("redis+cluster://:pw@h:7000", "redis+cluster://:***@h:7000"),
        ("redis://lone@h/0", "redis://***@h/0"),
        ("redis://:p@ss@h/0", "redis://:***@h/0"),
        ("redis://:pa/ss@h/0", "redis://***@h/0"),
        ("redis://h/0?password=pw&db=1", "redis://h/0?password=***&db=1"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("file:///var/lib/a@b", "file:///var/lib/a@b"),
        ("memory://", "memory://"),
        ("redis:/:pw@h/0", "***@h/0"),
    ],
)
def test_redact_url_keeps_where_and_hides_the_password(url: str, expected: str) -> None:
    """Scheme, user, host, port and db stay; a password (in userinfo or query) reads ***."""
    assert redact_url(url) == expected


# -- reprs -----------------------------------------------------------------------------------


def test_the_store_url_and_repr_hide_the_password(locked_redis_server: RedisServer) -> None:
    """RedisStore.url and repr() show the password as *** (the store still connects)."""
    store = RedisStore(locked_redis_server.url)
    assert store.url == shown(locked_redis_server)
    assert repr(store) == f"RedisStore({shown(locked_redis_server)!r}, time_source='server')"
    assert store.status() == []
    store.close()


@pytest.mark.parametrize("kind", ["limiter", "keyed", "breaker", "bulkhead"])
def test_store_backed_policy_reprs_hide_the_password(
    locked_redis_server: RedisServer, kind: str
) -> None:
    """repr() of each store-backed policy names the store with its password as ***."""
    url = locked_redis_server.url
    policy: object = {
        "limiter": lambda: RateLimiter(5, name="r", store=url),
        "keyed": lambda: KeyedRateLimiter(5, name="k", store=url),
        "breaker": lambda: CircuitBreaker(name="b", store=url),
        "bulkhead": lambda: Bulkhead(3, name="w", store=url),
    }[kind]()
    text = repr(policy)
    assert text.endswith(f", store={shown(locked_redis_server)!r})")
    assert_no_secret(text)


# -- degraded episodes: logs and events --------------------------------------------------------


def test_a_degraded_episode_logs_and_emits_the_url_without_the_password(
    locked_server: RedisServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A password-protected Redis that dies degrades quietly; its log lines and events hide it."""
    events: list[object] = []
    subscription = add_listener(events.append)
    limiter = RateLimiter(1, burst=5, name="deg", store=RedisStore(locked_server.url), clock=clock)
    try:
        assert limiter.try_acquire()
        locked_server.kill()
        with caplog.at_level(logging.INFO, logger="seawall.stores"):
            assert limiter.try_acquire()  # decided locally: the outage is quiet
            locked_server.start()
            clock.advance(1.0)  # past the guard's backoff
            assert limiter.try_acquire()
    finally:
        subscription.remove()
    episode = [e for e in events if isinstance(e, StoreDegraded)]
    assert [(e.store_url, e.active) for e in episode] == [
        (shown(locked_server), True),
        (shown(locked_server), False),
    ]
    records = [r for r in caplog.records if r.name == "seawall.stores"]
    assert [r.levelname for r in records] == ["WARNING", "INFO"]
    assert (
        records[0]
        .getMessage()
        .startswith(
            f"rate limiter 'deg': store {shown(locked_server)} unavailable (Redis store "
            f"{shown(locked_server)}: limiter_reserve failed: "
        )
    )
    for record in records:
        assert_no_secret(record.getMessage())
    assert_no_secret(repr(episode))


@pytest.mark.anyio
async def test_a_custom_store_with_a_password_in_its_url_is_redacted_too(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A third-party store whose url holds a password: reprs, logs and events still hide it."""
    store = FlakyStore(clock=clock)
    store.url = f"redis://admin:{WRONG}@cache:6379/1"
    events: list[object] = []
    breaker = CircuitBreaker(name="custom", store=store, clock=clock)
    with add_listener(events.append), caplog.at_level(logging.INFO, logger="seawall.stores"):
        store.down = True
        assert await breaker.acall(anyio.sleep, 0) is None  # decided locally
        store.down = False
        clock.advance(1.0)
        assert await breaker.acall(anyio.sleep, 0) is None
    where = "redis://admin:***@cache:6379/1"
    others = [
        RateLimiter(5, name="r", store=store),
        KeyedRateLimiter(5, name="k", store=store),
        Bulkhead(2, name="w", store=store),
    ]
    assert [repr(p).endswith(f", store={where!r})") for p in [breaker, *others]] == [True] * 4
    assert [e.store_url for e in events if isinstance(e, StoreDegraded)] == [where, where]
    assert [f"store {where} " in r.getMessage() for r in caplog.records] == [True, True]
    assert_no_secret(repr(events) + caplog.text + repr([breaker, *others]))


# -- exceptions ------------------------------------------------------------------------------


@pytest.mark.parametrize("via_policy", [True, False], ids=["policy-call", "store-status"])
def test_a_refused_password_error_and_its_traceback_hide_it(
    locked_redis_server: RedisServer, via_policy: bool
) -> None:
    """The StoreError for a wrong password, and its whole chained traceback, hide both passwords."""
    store = RedisStore(wrong_url(locked_redis_server))
    breaker = CircuitBreaker(name="tb", store=store)
    with pytest.raises(StoreError) as caught:
        breaker.call(print) if via_policy else store.status()
    text = "".join(traceback.format_exception(caught.value))
    assert f"Redis store {shown(locked_redis_server)} refused our credentials" in text
    assert_no_secret(text)


@pytest.mark.anyio
async def test_an_async_refusal_and_a_degraded_episode_hide_the_password(
    locked_redis_server: RedisServer, async_client: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With either async client: the refusal's traceback, and a dead store's logs, hide both."""
    store = RedisStore(wrong_url(locked_redis_server), async_client=async_client)
    breaker = CircuitBreaker(name="tb-async", store=store)
    with pytest.raises(StoreError) as caught:
        await breaker.acall(anyio.sleep, 0)
    text = "".join(traceback.format_exception(caught.value))
    assert f"Redis store {shown(locked_redis_server)} refused our credentials" in text
    dead = RedisStore(f"redis://:{WRONG}@127.0.0.1:1/0", timeout=0.1, async_client=async_client)
    limiter = RateLimiter(1, name="dead-async", store=dead)
    with caplog.at_level(logging.DEBUG):
        assert await limiter.acquire_async(timeout=0) is True  # decided locally
    assert limiter.degraded_decisions == 1
    assert_no_secret(text + caplog.text + repr(store) + repr(dead) + repr(limiter))
    await store.aclose()
    await dead.aclose()


def test_a_bad_url_error_hides_the_password() -> None:
    """A malformed URL with a password is refused without quoting the password."""
    with pytest.raises(ValueError) as caught:
        open_store(f"redis://:{WRONG}@127.0.0.1:63a79/0")
    assert str(caught.value) == (
        "url is not a valid Redis URL: 'redis://:***@127.0.0.1:63a79/0' (bad port)"
    )
    with pytest.raises(ValueError, match=r"^unsupported store URL 'http://u:\*\*\*@h/0'"):
        open_store(f"http://u:{WRONG}@h/0")
    with pytest.raises(ValueError, match=r"got store='redis://:\*\*\*@h:1/0' and name=None"):
        RateLimiter(5, store=f"redis://:{WRONG}@h:1/0")


# -- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def populated(locked_redis_server: RedisServer) -> Iterator[str]:
    """The password-protected store, holding one limiter named 'cli'."""
    store = open_store(locked_redis_server.url, timeout=2.0)
    assert RateLimiter(1, burst=3, name="cli", store=store).try_acquire()
    try:
        yield locked_redis_server.url
    finally:
        store.reset("cli")
        store.close()


@pytest.mark.parametrize("source", ["option", "environment"])
def test_status_and_reset_output_hide_the_password(
    populated: str,
    source: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """status (table, --json, empty) and reset print the URL with the password as ***."""
    where = redact_url(populated)
    if source == "environment":
        monkeypatch.setenv("SEAWALL_STORE", populated)
        given: list[str] = []
    else:
        monkeypatch.delenv("SEAWALL_STORE", raising=False)
        given = ["--store", populated]
    assert main(["status", "--json", *given]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["store"] == where
    assert main(["reset", "cli", *given]) == 0
    assert capsys.readouterr().out == f"reset 'cli': 1 record removed from {where}\n"
    assert main(["status", *given]) == 0
    assert capsys.readouterr().out == f"no policy state in {where}\n"
    assert main(["reset", "cli", *given]) == 1
    assert capsys.readouterr().err == f"seawall reset: no policy named 'cli' in {where}\n"
    assert_no_secret(out)


@pytest.mark.parametrize("source", ["option", "environment"])
@pytest.mark.parametrize("command", [["status"], ["reset", "x"]])
def test_cli_errors_for_a_wrong_password_hide_it(
    locked_redis_server: RedisServer,
    source: str,
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A refused password is exit 2 with a message naming the URL, password as ***."""
    url = wrong_url(locked_redis_server)
    if source == "environment":
        monkeypatch.setenv("SEAWALL_STORE", url)
        given: list[str] = []
    else:
        given = ["--store", url]
    assert main([*command, *given]) == 2
    out, err = capsys.readouterr()
    where = shown(locked_redis_server)
    assert err.startswith(
        f"seawall {command[0]}: cannot use the store at {where}: Redis store {where} "
        "refused our credentials ("
    )
    assert_no_secret(out + err)


def test_cli_errors_for_a_dead_store_hide_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    """An unreachable password-protected store is exit 2 naming the URL, password as ***."""
    server = RedisServer(password=REDIS_PASSWORD)
    server.start()
    server.close()  # nothing listens on its port any more
    assert main(["status", "--store", server.url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"seawall status: cannot use the store at {shown(server)}: ")
    assert_no_secret(err)


def test_a_separate_seawall_process_hides_the_password(populated: str) -> None:
    """`python -m seawall status` with SEAWALL_STORE prints the URL with the password as ***."""
    env = {**os.environ, "SEAWALL_STORE": populated}
    done = subprocess.run(
        [sys.executable, "-m", "seawall", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["store"] == redact_url(populated)
    assert_no_secret(done.stdout + done.stderr)
