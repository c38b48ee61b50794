"""Misconfiguration is loud: a store that can never work raises StoreError, never degrades."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from _redis_server import REDIS_PASSWORD, RedisServer
from seawall import Bulkhead, CircuitBreaker, RateLimiter, StoreError
from seawall.stores import BulkheadSpec, FileStore, LimiterSpec, RedisStore, StoreUnavailableError

pytestmark = pytest.mark.slow

LIMITER = LimiterSpec("x", 1.0, 1.0)
WRONG = "wrong-Zk9-secret"

# What seawall runs on Redis, as docs/redis-store.md ("Access control") tells users to grant
# (INFO: valkey-glide asks for the server's version when it connects).
DOCUMENTED_ACL = (
    "resetkeys ~seawall:* resetchannels -@all +evalsha +eval +exists +expire +hdel +hgetall "
    "+hmget +hset +get +set +time +scan +del +info"
)


def _redis_url(server: RedisServer, userinfo: str) -> str:
    return f"redis://{userinfo}127.0.0.1:{server.port}/0"


# -- file store ----------------------------------------------------------------------------


def test_a_directory_that_cannot_exist_raises_store_error_not_recursion() -> None:
    """A directory under /proc (mkdir: "not found" though /proc exists) is a StoreError."""
    limiter = RateLimiter(10, name="x", store="file:///proc/forbidden")
    with pytest.raises(StoreError) as caught:
        limiter.try_acquire()
    assert str(caught.value) == (
        "cannot create the file store directory '/proc/forbidden': No such file or directory "
        "('/proc' exists but cannot hold it)"
    )
    assert not isinstance(caught.value, StoreUnavailableError)


def test_a_parent_that_cannot_be_created_raises_store_error_naming_it() -> None:
    """file:///proc/nope/x raises StoreError naming the parent that cannot be made."""
    limiter = RateLimiter(10, name="x", store="file:///proc/nope/x")
    with pytest.raises(StoreError) as caught:
        limiter.try_acquire()
    assert str(caught.value) == (
        "cannot create the file store directory '/proc/nope/x': No such file or directory "
        "(at '/proc/nope')"
    )


def test_an_impossible_directory_raises_on_every_call_and_never_degrades() -> None:
    """Each call raises again; no decision is made in degraded mode meanwhile."""
    breaker = CircuitBreaker(name="b", store=FileStore("/proc/nope/y"))
    calls: list[int] = []
    for _ in range(3):
        with pytest.raises(StoreError, match="cannot create the file store directory"):
            breaker.call(calls.append, 1)
    assert (calls, breaker.degraded_decisions) == ([], 0)


@pytest.mark.anyio
async def test_an_impossible_directory_raises_in_async_code_too() -> None:
    """acquire_async on a file store under /proc raises StoreError on asyncio and trio."""
    limiter = RateLimiter(10, name="x", store=FileStore("/proc/nope/z"))
    with pytest.raises(StoreError, match=r"'/proc/nope/z'.*\(at '/proc/nope'\)"):
        await limiter.acquire_async()


def test_missing_parents_are_created_and_the_store_works(tmp_path: Path) -> None:
    """Missing parents of the directory are made; the directory itself is 0700."""
    path = tmp_path / "a" / "b" / "state"
    limiter = RateLimiter(1, burst=1, name="p", store=FileStore(path))
    assert [limiter.try_acquire(), limiter.try_acquire()] == [True, False]
    assert oct(path.stat().st_mode & 0o777) == "0o700"


def test_an_unsafe_directory_raises_through_a_policy(tmp_path: Path) -> None:
    """A world-writable store directory stops a bulkhead with StoreError, not degraded mode."""
    path = tmp_path / "shared"
    path.mkdir()
    os.chmod(path, 0o777)
    bulkhead = Bulkhead(2, name="w", store=FileStore(path))
    with pytest.raises(StoreError, match=r"writable by group or others \(mode 777\)"):
        bulkhead.try_acquire()
    assert bulkhead.degraded_decisions == 0


@contextlib.contextmanager
def read_only_for_us(path: Path) -> Iterator[None]:
    """Make ``path`` refuse new files to this process: mode 0500, or immutable for root."""
    if os.geteuid() != 0:
        path.chmod(0o500)
        try:
            yield
        finally:
            path.chmod(0o700)
        return
    if shutil.which("chattr") is None:
        pytest.skip("root needs chattr (e2fsprogs) to make a directory refuse new files")
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_directory_that_refuses_new_files_raises_store_error(tmp_path: Path) -> None:
    """A store directory in which no file can be created raises StoreError, not degraded mode."""
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    limiter = RateLimiter(10, name="ro", store=FileStore(path))
    with read_only_for_us(path):
        refused = (
            r"state/lim-[0-9a-f]{24}\.(tab|lock): (Operation not permitted|Permission denied); "
        )
        with pytest.raises(StoreError, match=refused + "the store directory must let"):
            limiter.try_acquire()
        assert limiter.stats.degraded_decisions == 0


# -- Redis: refused credentials --------------------------------------------------------------


def test_a_wrong_password_raises_store_error_without_showing_it(
    locked_redis_server: RedisServer,
) -> None:
    """A wrong password is a StoreError naming the store (password as ***), not degraded."""
    url = _redis_url(locked_redis_server, f":{WRONG}@")
    limiter = RateLimiter(10, name="x", store=RedisStore(url))
    with pytest.raises(StoreError) as caught:
        limiter.try_acquire()
    shown = f"redis://:***@127.0.0.1:{locked_redis_server.port}/0"
    assert str(caught.value) == (
        f"Redis store {shown} refused our credentials (invalid username-password pair or user "
        "is disabled.); check the user name and password of the store URL (the password is "
        "not shown here)"
    )
    assert not isinstance(caught.value, StoreUnavailableError)


def test_no_password_for_a_server_that_requires_one_raises_store_error(
    locked_redis_server: RedisServer,
) -> None:
    """A URL without a password, for a server with requirepass, says the password is missing."""
    breaker = CircuitBreaker(name="b", store=RedisStore(_redis_url(locked_redis_server, "")))
    with pytest.raises(StoreError, match=r"requires a password and the store URL gives none"):
        breaker.call(print)
    assert breaker.degraded_decisions == 0


@pytest.mark.parametrize(
    ("userinfo", "message"),
    [
        ("ghost:pw@", "refused our credentials (invalid username-password pair"),
        (f"carol:{WRONG}@", "refused our credentials (invalid username-password pair"),
        ("carol:carol-pw@", "may not run what seawall needs (this user has no permissions"),
    ],
    ids=["unknown-user", "wrong-user-password", "user-without-commands"],
)
def test_a_refused_acl_user_raises_store_error(
    locked_redis_server: RedisServer, userinfo: str, message: str
) -> None:
    """An unknown ACL user, a wrong user password, or a user without EVALSHA is a StoreError."""
    with locked_redis_server.client() as admin:
        admin.execute_command("ACL", "SETUSER", "carol", "on", ">carol-pw", "~*", "+get")
    bulkhead = Bulkhead(2, name="w", store=RedisStore(_redis_url(locked_redis_server, userinfo)))
    with pytest.raises(StoreError) as caught:
        bulkhead.try_acquire()
    assert message in str(caught.value)
    assert WRONG not in str(caught.value)
    assert bulkhead.degraded_decisions == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("userinfo", "shown", "message"),
    [
        (f":{WRONG}@", ":***@", "refused our credentials (invalid username-password pair or"),
        ("", "", "requires a password and the store URL gives none"),
        ("ghost:pw@", "ghost:***@", "refused our credentials (invalid username-password pair"),
        ("carol:carol-pw@", "carol:***@", "may not run what seawall needs (this user has no perm"),
    ],
    ids=["wrong-password", "no-password", "unknown-user", "user-without-commands"],
)
async def test_refusals_raise_the_same_store_error_in_async_code(
    locked_redis_server: RedisServer, userinfo: str, shown: str, message: str, async_client: str
) -> None:
    """Each refusal is the same StoreError with either async client, on both loops, not degraded."""
    with locked_redis_server.client() as admin:
        admin.execute_command("ACL", "SETUSER", "carol", "on", ">carol-pw", "~*", "+get")
    url = _redis_url(locked_redis_server, userinfo)
    store = RedisStore(url, async_client=async_client)
    limiter = RateLimiter(10, name="x", store=store)
    with pytest.raises(StoreError) as caught:
        await limiter.acquire_async()
    where = f"redis://{shown}127.0.0.1:{locked_redis_server.port}/0"
    assert str(caught.value).startswith(f"Redis store {where}")
    assert message in str(caught.value)
    assert WRONG not in str(caught.value)
    assert not isinstance(caught.value, StoreUnavailableError)
    assert limiter.degraded_decisions == 0
    await store.aclose()


@pytest.mark.anyio
async def test_the_documented_acl_runs_every_async_operation(
    locked_redis_server: RedisServer, async_client: str
) -> None:
    """The ACL of docs/redis-store.md serves either async client: limiter, breaker, bulkhead."""
    with locked_redis_server.client() as admin:
        admin.execute_command("ACL", "SETUSER", "sw", "on", ">sw-pw", *DOCUMENTED_ACL.split())
    store = RedisStore(_redis_url(locked_redis_server, "sw:sw-pw@"), async_client=async_client)
    names = [f"acl-a{kind}-{uuid.uuid4().hex[:6]}" for kind in "lbw"]
    limiter = RateLimiter(1, burst=1, name=names[0], store=store)
    breaker = CircuitBreaker(max_failures=1, name=names[1], store=store)
    bulkhead = Bulkhead(1, name=names[2], store=store)
    assert [await limiter.acquire_async(timeout=0), await limiter.acquire_async(timeout=0)] == [
        True,
        False,
    ]
    assert await breaker.acall(anyio.sleep, 0) is None
    await bulkhead.acquire_async(timeout=0)  # raises BulkheadFullError when refused
    assert store.holders(BulkheadSpec(names[2], 1)) == 1
    await bulkhead.arelease()
    assert store.holders(BulkheadSpec(names[2], 1)) == 0
    assert limiter.degraded_decisions + breaker.degraded_decisions == 0
    assert bulkhead.degraded_decisions == 0
    assert [store.reset(name) for name in names] == [1, 1, 1]  # other tests count policies
    await store.aclose()


def test_a_user_with_the_documented_acl_runs_every_operation(
    locked_redis_server: RedisServer,
) -> None:
    """The ACL that docs/redis-store.md gives is enough for limiter, breaker, bulkhead, status."""
    with locked_redis_server.client() as admin:
        admin.execute_command("ACL", "SETUSER", "sw", "on", ">sw-pw", *DOCUMENTED_ACL.split())
    store = RedisStore(_redis_url(locked_redis_server, "sw:sw-pw@"))
    limiter = RateLimiter(1, burst=1, name="acl-l", store=store)
    breaker = CircuitBreaker(max_failures=1, name="acl-b", store=store)
    bulkhead = Bulkhead(1, name="acl-w", store=store)
    assert [limiter.try_acquire(), limiter.try_acquire()] == [True, False]
    assert breaker.call(len, "ab") == 2
    assert bulkhead.try_acquire()
    bulkhead.release()
    assert sorted(p.name for p in store.status()) == ["acl-b", "acl-l", "acl-w"]
    assert store.reset("acl-l") == 1
    store.close()


def test_the_right_password_works(locked_redis_server: RedisServer) -> None:
    """With the password the server requires, the store decides as usual."""
    assert locked_redis_server.password == REDIS_PASSWORD
    limiter = RateLimiter(1, burst=2, name="ok", store=RedisStore(locked_redis_server.url))
    assert [limiter.try_acquire() for _ in range(3)] == [True, True, False]


def test_a_wrong_password_for_a_cluster_raises_store_error() -> None:
    """A Redis Cluster refusing the password (wrapped by the cluster client) is a StoreError."""
    server = RedisServer(cluster=True, password=REDIS_PASSWORD)
    try:
        server.start()
        url = f"redis+cluster://:{WRONG}@127.0.0.1:{server.port}"
        limiter = RateLimiter(10, name="x", store=RedisStore(url))
        with pytest.raises(StoreError) as caught:
            limiter.try_acquire()
        assert str(caught.value).startswith(
            f"Redis store redis+cluster://:***@127.0.0.1:{server.port} refused our credentials"
        )
        assert not isinstance(caught.value, StoreUnavailableError)
    finally:
        server.close()
