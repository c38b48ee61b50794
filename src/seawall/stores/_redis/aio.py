"""The Redis store's async round trips with redis-py, and the choice of the async client.

On asyncio, redis-py's ``redis.asyncio`` client talks to Redis on the event loop itself, with
no thread hop (about half the CPU of a call through ``anyio.to_thread``, measured by
``benchmarks/bench_asgi.py``). Its connections belong to the loop that opened them, so one
client is kept per running loop. trio (which ``redis.asyncio`` does not support) and Redis
Cluster use the sync client in a worker thread, which works everywhere.

:func:`async_clients` picks between these and valkey-glide (``aio_glide``), which is native
on both loops; see ``RedisStore``'s ``async_client`` and ``docs/redis-store.md``.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import anyio.to_thread
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from .errors import store_failure
from .scripts import Reply, Script, decode

if TYPE_CHECKING:
    from .keys import RedisTarget

__all__ = [
    "ASYNC_CLIENTS",
    "GLIDE_OPTIONS",
    "AsyncClients",
    "Clients",
    "async_clients",
    "choose_async_client",
    "glide_installed",
]

#: The values of ``RedisStore(async_client=...)`` and of the URL's ``async_client`` option.
ASYNC_CLIENTS = ("auto", "redis-py", "glide")
#: The URL query options valkey-glide is configured from (any other is redis-py's own).
GLIDE_OPTIONS = frozenset({"password", "username", "db", "ssl_cert_reqs", "ssl_ca_certs"})


class Clients(Protocol):
    """What the store needs of an async client: one per running loop, made on first use."""

    def native(self) -> bool: ...
    async def run(self, s: Script, keys: Sequence[str], args: Sequence[str | bytes]) -> Reply: ...
    async def call(self, *command: str | bytes) -> Any: ...
    async def aclose(self) -> None: ...


def glide_installed() -> bool:
    """Whether valkey-glide can be imported (looked up, not imported: that costs 0.3 s)."""
    return importlib.util.find_spec("glide") is not None


def choose_async_client(given: str, target: RedisTarget) -> str:
    """``"glide"`` or ``"redis-py"``: the argument, else the URL's option, else ``"auto"``'s pick.

    ``"auto"`` takes redis-py. valkey-glide is measured faster (on trio most of all) but is
    taken only when asked for: with it, the requests of ``seawall demo --workers 3`` on one
    Redis stopped finishing (one worker and the in-process demo ran), a stall not yet
    understood. ``"glide"`` needs a single Redis: glide's cluster client retries
    ``CLUSTERDOWN`` until its request timeout (measured: 100.7-101.7 ms per decision for a
    0.1 s timeout, against 0.1-0.4 ms for ``cluster.FailFastCluster``). This looks for the
    module without importing it: glide loads when the store is first used.
    """
    if given not in ASYNC_CLIENTS:
        raise ValueError(f"async_client must be 'auto', 'redis-py' or 'glide', got {given!r}")
    url_choice = target.async_client
    if url_choice is not None and url_choice not in ASYNC_CLIENTS:
        raise ValueError(
            f"url option async_client must be 'auto', 'redis-py' or 'glide', got {url_choice!r}"
        )
    if url_choice is not None and given != "auto" and url_choice not in ("auto", given):
        raise ValueError(
            f"async_client={given!r} contradicts the url's async_client={url_choice!r}"
        )
    choice = given if given != "auto" else (url_choice or "auto")
    unknown = sorted(target.options - GLIDE_OPTIONS)
    installed = glide_installed()
    if choice == "glide":
        if not installed:
            raise ImportError(
                "async_client='glide' needs valkey-glide: pip install 'seawall[glide]'",
                name="glide",
            )
        if unknown:
            raise ValueError(
                f"async_client='glide' cannot honour the url option(s) {', '.join(unknown)} "
                f"(redis-py's); use async_client='redis-py' or drop them"
            )
        if target.cluster:
            raise ValueError(
                "async_client='glide' is for a single Redis: glide's cluster client waits out "
                "CLUSTERDOWN until its request timeout, so a Redis Cluster keeps redis-py's "
                "fail-fast client (async_client='redis-py' or 'auto')"
            )
        return "glide"
    return "redis-py"


def async_clients(choice: str, target: RedisTarget, timeout: float) -> Clients:
    """The async clients for ``choice`` (from :func:`choose_async_client`)."""
    if choice == "glide":
        return _GlideLoader(target, timeout)
    return AsyncClients(target, timeout)


class _GlideLoader:
    """``aio_glide.GlideClients``, imported in a worker thread at the first call.

    Importing valkey-glide takes 0.3-0.5 s (its Rust core, protobuf): done on the event loop
    it stalled every task for that long (a 10 ms ticker saw no tick for 0.28-0.30 s); in a
    worker thread the ticker's longest lag was 11-13 ms.
    """

    def __init__(self, target: RedisTarget, timeout: float) -> None:
        self._target = target
        self._timeout = timeout
        self._clients: Clients | None = None

    def native(self) -> bool:
        return True

    async def _load(self) -> Clients:
        clients = self._clients
        if clients is None:
            module = await anyio.to_thread.run_sync(
                importlib.import_module, "seawall.stores._redis.aio_glide"
            )
            if self._clients is None:  # another task may have loaded it meanwhile
                self._clients = module.GlideClients(self._target, self._timeout)
            clients = self._clients
        return clients

    async def run(self, s: Script, keys: Sequence[str], args: Sequence[str | bytes]) -> Reply:
        return await (await self._load()).run(s, keys, args)

    async def call(self, *command: str | bytes) -> Any:
        return await (await self._load()).call(*command)

    async def aclose(self) -> None:
        if self._clients is not None:
            await self._clients.aclose()


class AsyncClients:
    """One ``redis.asyncio`` client per running asyncio loop, opened on first use."""

    def __init__(self, target: RedisTarget, timeout: float) -> None:
        self._target = target
        self._timeout = timeout
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncRedis] = (
            weakref.WeakKeyDictionary()
        )

    def native(self) -> bool:
        """Whether this task can use the native client (asyncio, and not a Cluster)."""
        if self._target.cluster:
            return False
        try:
            asyncio.get_running_loop()  # raises under trio: no asyncio loop runs there
        except RuntimeError:
            return False
        return True

    def _client(self) -> AsyncRedis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = AsyncRedis.from_url(
                self._target.client_url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                # The asyncio client takes the asyncio Retry (redis-py 8 warns on the sync one).
                retry=AsyncRetry(NoBackoff(), 0),
                health_check_interval=0,
            )
            self._clients[loop] = client
        return client

    async def run(self, s: Script, key: str | Sequence[str], args: Sequence[str | bytes]) -> Reply:
        """Run ``s`` on ``key`` (or keys) in one round trip; failures as ``store_failure``."""
        client = self._client()
        keys = (key,) if isinstance(key, str) else tuple(key)
        try:
            try:
                raw = await client.evalsha(s.sha, len(keys), *keys, *args)
            except NoScriptError:
                raw = await client.eval(s.text, len(keys), *keys, *args)
        except (TimeoutError, RedisError, OSError) as exc:
            raise store_failure(exc, self._target.display, s.name) from exc
        return decode(raw)

    async def call(self, *command: str | bytes) -> Any:
        """Run one plain command (e.g. a lease's ``HDEL``); failures as in :meth:`run`."""
        try:
            client: Any = self._client()  # redis-py leaves execute_command untyped
            return await client.execute_command(*command)
        except (TimeoutError, RedisError, OSError) as exc:
            raise store_failure(exc, self._target.display) from exc

    async def aclose(self) -> None:
        """Close the client of the running loop (others close with their loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()
