"""The Redis store's async round trips through valkey-glide: native on asyncio and on trio.

valkey-glide runs its I/O in a Rust core on threads of its own and hands each answer back to
the event loop that asked, on asyncio and on trio alike, so both loops get a native client
with no worker-thread hop. Measured by ``benchmarks/bench_redis_clients.py`` (see
``docs/redis-store.md``). A single Redis only: glide's cluster client retries ``CLUSTERDOWN``
until its request timeout, so a Redis Cluster keeps redis-py's fail-fast client (``aio``).

How it is configured, and why:

* ``lazy_connect``: creating a client does no I/O (glide would otherwise connect, blocking
  the event loop, inside ``create``); the first command connects, bounded by
  ``connection_timeout``.
* ``request_timeout`` is the store timeout and bounds each command, glide's own retries and
  reconnection included: no answer within it is a ``TimeoutError``, and the policy decides
  in degraded mode.
* glide delivers every answer of the process through one pipe, read by the loop that created
  the first client; answers for clients on other loops (asyncio loops in other threads) are
  handed over from there. Should that loop end first, nothing would deliver them: a call
  made on any other loop therefore also keeps a deadline of its own (twice the timeout:
  connecting, then the command), and one that runs out drops its loop's client, whose
  successor reads the pipe itself. The usual process, one loop, pays nothing for this
  (``anyio.fail_after`` around every call cost 35 us of CPU on asyncio and on trio: 3,000
  ``custom_command`` calls timed with and without it, interleaved, on a loaded machine).
* Glide's logger writes warnings (every timeout, every refused connection) to stderr unless
  configured. At first use the store sets it to ``OFF`` with ``Logger.init``, which leaves a
  configuration the application made before alone (``glide.Logger.set_logger_config``
  replaces ours at any time).

A glide client answers on the loop that created it, so one client is kept per running loop
(an asyncio loop, or a trio run), like ``aio.AsyncClients`` does.
"""

from __future__ import annotations

import asyncio
import math
import os
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
from glide import (
    AdvancedGlideClientConfiguration,
    BackoffStrategy,
    GlideClient,
    GlideClientConfiguration,
    GlideError,
    Logger,
    LogLevel,
    NodeAddress,
    ServerCredentials,
    TlsAdvancedConfiguration,
)

from .._base import StoreUnavailableError
from .errors import refused
from .scripts import Reply, Script, decode

if TYPE_CHECKING:
    from ..._errors import StoreError
    from .keys import RedisTarget

__all__ = ["GlideClients", "glide_failure"]


# No reconnection storm against a Redis that is down: back off from 10 ms to about 0.3 s.
_RECONNECT = BackoffStrategy(num_of_retries=5, factor=10, exponent_base=2)
_logger_set = False
_reader: object = None  # the loop (or trio run) whose client came first: it reads the answers
_reader_pid = 0  # a forked child starts glide's pipe afresh (glide resets it after a fork)


def _quiet_logger() -> None:
    global _logger_set
    if not _logger_set:
        Logger.init(LogLevel.OFF)  # a no-op when the application configured it first
        _logger_set = True


def _option(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _tls(target: RedisTarget, query: dict[str, list[str]]) -> TlsAdvancedConfiguration | None:
    if not target.tls:
        return None
    reqs = (_option(query, "ssl_cert_reqs") or "required").lower()
    if reqs not in ("none", "required"):
        raise ValueError(
            f"url option ssl_cert_reqs must be 'none' or 'required' with async_client='glide', "
            f"got {reqs!r}"
        )
    ca = _option(query, "ssl_ca_certs")
    pem = None
    if ca is not None:
        with open(ca, "rb") as f:  # at first use, never in a constructor
            pem = f.read()
    return TlsAdvancedConfiguration(use_insecure_tls=reqs == "none", root_pem_cacerts=pem)


def _config(target: RedisTarget, timeout: float) -> GlideClientConfiguration:
    parts = urlsplit(target.client_url)
    query = parse_qs(parts.query)
    password = _option(query, "password") or (unquote(parts.password) if parts.password else None)
    username = _option(query, "username") or (unquote(parts.username) if parts.username else None)
    credentials = ServerCredentials(password, username or None) if password else None
    ms = max(1, math.ceil(timeout * 1000))
    address = [NodeAddress(parts.hostname or "localhost", parts.port or 6379)]
    db = _option(query, "db") or parts.path.strip("/") or "0"
    advanced = AdvancedGlideClientConfiguration(
        connection_timeout=ms, tls_config=_tls(target, query)
    )
    return GlideClientConfiguration(
        address,
        use_tls=target.tls,
        credentials=credentials,
        request_timeout=ms,
        reconnect_strategy=_RECONNECT,
        database_id=int(db),
        advanced_config=advanced,
        lazy_connect=True,
    )


# How glide words a refusal: the server's error code, or glide's name for it, then the reply.
_PERMISSION = ("PermissionDenied:", "NOPERM")
_LOGIN = ("WRONGPASS:", "WRONGPASS", "NOAUTH:", "NOAUTH", "Protocol error: unauthenticated")


def _server_says(text: str, markers: tuple[str, ...]) -> str | None:
    """What the server replied after the first of ``markers`` in ``text`` (None if absent)."""
    for marker in markers:
        at = text.find(marker)
        if at >= 0:
            return text[at + len(marker) :].strip() or marker
    return None


def glide_failure(exc: BaseException, where: str, doing: str = "") -> StoreError:
    """The error to raise for a glide failure ``exc`` (as ``errors.store_failure`` does).

    glide tells what the server said in its message only: a permission refusal (``NOPERM``,
    which glide calls ``PermissionDenied``) or a refused login (``WRONGPASS``, ``NOAUTH``) is
    a :class:`StoreError` quoting the server's reply, like redis-py's; everything else
    (timeouts, refused or lost connections, a closed client) is an outage.
    """
    text = str(exc)
    denied = _server_says(text, _PERMISSION)
    if denied is not None:
        return refused(denied, where, permission=True)
    login = _server_says(text, _LOGIN)
    if login is not None:
        return refused(login, where, permission=False)
    what = f"{doing} failed: " if doing else ""
    return StoreUnavailableError(f"Redis store {where}: {what}{type(exc).__name__}: {exc}")


def _no_script(exc: GlideError) -> bool:
    text = str(exc)
    return "NoScriptError" in text or "NOSCRIPT" in text


def _ended(owner: object) -> bool:
    """Whether the asyncio loop or trio run ``owner`` has ended."""
    if isinstance(owner, asyncio.AbstractEventLoop):
        return owner.is_closed()
    import trio

    try:
        owner.run_sync_soon(_nothing)  # type: ignore[attr-defined]
    except trio.RunFinishedError:
        return True
    return False


def _nothing() -> None:
    return None


def _close_now(client: GlideClient) -> None:
    # The loop (or trio run) of ``client`` has ended without ``aclose()``: close it now, so
    # glide's collector does not warn. Its close() never suspends (it only tells the Rust
    # core); should a release make it suspend, the collector's warning is what remains.
    closing = client.close()
    try:
        closing.send(None)
    except StopIteration:
        return
    closing.close()


class GlideClients:
    """One glide client per running loop (asyncio or trio), created on first use."""

    def __init__(self, target: RedisTarget, timeout: float) -> None:
        self._target = target
        self._timeout = timeout
        # Connecting, then the command: each bounded by the timeout inside glide.
        self._bound = 2 * timeout + 0.05
        self._clients: weakref.WeakKeyDictionary[object, GlideClient] = weakref.WeakKeyDictionary()

    def native(self) -> bool:
        """Always: glide runs natively on asyncio and on trio."""
        return True

    @staticmethod
    def _owner() -> object:
        try:
            return asyncio.get_running_loop()  # raises under trio: no asyncio loop runs there
        except RuntimeError:
            import trio

            return trio.lowlevel.current_trio_token()

    async def _client(self, owner: object) -> GlideClient:
        global _reader, _reader_pid
        client = self._clients.get(owner)
        if client is None:
            _quiet_logger()
            if _reader is None or _reader_pid != os.getpid() or _ended(_reader):
                _reader, _reader_pid = owner, os.getpid()  # glide reads its pipe on this loop
            made = await GlideClient.create(_config(self._target, self._timeout))
            client = self._clients.setdefault(owner, made)
            if client is not made:
                await made.close()
            else:
                weakref.finalize(owner, _close_now, made)
        return client

    async def _send(self, command: list[str | bytes]) -> Any:
        owner = self._owner()
        client = await self._client(owner)
        if owner is _reader:
            return await client.custom_command(command)
        try:  # answers come through another loop: see the module's docstring
            with anyio.fail_after(self._bound):
                return await client.custom_command(command)
        except TimeoutError:
            await self._give_up()
            raise

    async def _give_up(self) -> None:
        # Glide did not deliver even its own timeout: its response pipe is read by the loop
        # that created the first client, and that loop may have ended. A new client
        # registers the pipe on this loop again.
        client = self._clients.pop(self._owner(), None)
        if client is not None:
            await client.close()

    async def run(self, s: Script, keys: str | Sequence[str], args: Sequence[str | bytes]) -> Reply:
        """Run ``s`` on ``keys`` (or one key) in one round trip; ``EVAL`` once after NOSCRIPT."""
        names = (keys,) if isinstance(keys, str) else keys
        tail = [str(len(names)), *names, *args]
        try:
            try:
                raw = await self._send(["EVALSHA", s.sha, *tail])
            except GlideError as exc:
                if not _no_script(exc):
                    raise
                raw = await self._send(["EVAL", s.text, *tail])
        except (GlideError, TimeoutError, OSError) as exc:
            raise glide_failure(exc, self._target.display, s.name) from exc
        return decode(raw)

    async def call(self, *command: str | bytes) -> Any:
        """Run one plain command on one key (e.g. a lease's ``HDEL``); failures as in run."""
        try:
            return await self._send(list(command))
        except (GlideError, TimeoutError, OSError) as exc:
            raise glide_failure(exc, self._target.display) from exc

    async def aclose(self) -> None:
        """Close the client of the running loop (others close with their loop)."""
        try:
            owner = self._owner()
        except RuntimeError:
            return
        client = self._clients.pop(owner, None)
        if client is not None:
            await client.close()
