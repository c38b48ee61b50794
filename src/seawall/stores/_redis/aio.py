"""The Redis store's async round trips: native on asyncio, a worker thread elsewhere.

On asyncio, redis-py's ``redis.asyncio`` client talks to Redis on the event loop itself, with
no thread hop (about half the CPU of a call through ``anyio.to_thread``, measured by
``benchmarks/bench_asgi.py``). Its connections belong to the loop that opened them, so one
client is kept per running loop. trio (which ``redis.asyncio`` does not support) and Redis
Cluster use the sync client in a worker thread, which works everywhere.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from .errors import store_failure
from .scripts import Reply, Script, decode

if TYPE_CHECKING:
    from .keys import RedisTarget

__all__ = ["AsyncClients"]


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

    async def call(self, fn: Callable[[AsyncRedis], Any]) -> Any:
        """Run one plain command (e.g. a lease's ``HDEL``); failures as in :meth:`run`."""
        try:
            return await fn(self._client())
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
