r"""The lifespan hook: start what the service needs, and stop it cleanly.

Theory of operation. A :class:`SeawallLifespan` moves through four phases::

    new --startup()--> serving --begin_drain()--> draining --drain()--> stopping
                          \______________________drain()______________/
    stopping --finish()--> stopped

* **startup**: enter the heartbeat and each watchdog (their ``async with``), then, if asked,
  chain a SIGTERM handler in front of the server's own.
* **draining** (a preStop call to the drain endpoint, or SIGTERM with ``chain_sigterm=True``):
  readiness answers 503 so the load balancer stops sending traffic, yet requests that still
  arrive are served.
* **stopping** (lifespan shutdown): new requests get 503; requests in flight may finish until
  ``drain_timeout`` passes (uvicorn has already drained its connections by then, so this is
  usually immediate, but other servers may not have).
* **finish**: the app's own lifespan exits, then ``GracefulShutdown`` callbacks run by
  priority (``await shutdown.atrigger()``), then watchdogs and the heartbeat stop and the
  chained signal handler is put back.

Every step is idempotent, so the same hook may be driven both as Starlette's ``lifespan=`` and
by ``ResilienceMiddleware(lifespan=...)`` seeing the lifespan events; each step runs once.
Failures propagate loudly: with ``--lifespan auto`` uvicorn would otherwise treat an app
whose lifespan raises as lifespan-less and skip its shutdown.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager, AsyncExitStack
from types import FrameType
from typing import Any

import anyio

from .._clock import SYSTEM_CLOCK, Clock
from .._core.validate import check_number
from .._heartbeat import Heartbeat
from .._log import logger
from .._shutdown.shutdown import GracefulShutdown
from .._watchdog import Watchdog

__all__ = ["SeawallLifespan", "seawall_lifespan"]


AppLifespan = Callable[[Any], AbstractAsyncContextManager[Mapping[str, Any] | None]]
SignalHandler = Callable[[int, FrameType | None], Any]


class SeawallLifespan:
    """Startup, readiness, drain and shutdown for an ASGI app; see the module docs.

    Use it as Starlette's ``lifespan=`` (it is a ``lifespan(app)`` context factory) and pass
    the same object to ``ResilienceMiddleware(lifespan=...)`` so requests are counted and
    readiness is enforced.
    """

    def __init__(
        self,
        *,
        shutdown: GracefulShutdown | None = None,
        heartbeat: Heartbeat | None = None,
        watchdogs: Iterable[Watchdog] = (),
        drain_timeout: float = 30.0,
        app_lifespan: AppLifespan | None = None,
        chain_sigterm: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self._shutdown = shutdown
        self._heartbeat = heartbeat
        self._watchdogs = tuple(watchdogs)
        self._drain_timeout = check_number("drain_timeout", drain_timeout, inclusive=True)
        self._app_lifespan = app_lifespan
        self._chain_sigterm = chain_sigterm
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self._stack = AsyncExitStack()
        self._started = False
        self._draining = False
        self._stopping = False
        self._finished = False
        self._in_flight = 0
        self._idle: anyio.Event | None = None
        self._previous_handler: SignalHandler | None = None
        self._handler: SignalHandler | None = None

    # -- state, read by the middleware --------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True until draining begins: what the readiness endpoint reports.

        (The server sends no request before startup completes, so no "starting" state.)
        """
        return not self._draining

    @property
    def draining(self) -> bool:
        """True once a drain was requested (preStop, SIGTERM or shutdown)."""
        return self._draining

    @property
    def stopping(self) -> bool:
        """True once lifespan shutdown began: new requests are refused with 503."""
        return self._stopping

    @property
    def in_flight(self) -> int:
        """Requests the middleware admitted that have not finished yet."""
        return self._in_flight

    def request_started(self) -> None:
        """Count one request in (called by the middleware)."""
        self._in_flight += 1

    def request_finished(self) -> None:
        """Count one request out; wakes a drain waiting for the last one."""
        self._in_flight -= 1
        if self._in_flight == 0 and self._idle is not None:
            self._idle.set()

    def begin_drain(self) -> None:
        """Turn readiness off; requests are still served (safe from a signal handler)."""
        if not self._draining:
            self._draining = True
            logger.info("seawall: draining, readiness now reports 503")

    # -- phases -------------------------------------------------------------------------------

    async def startup(self) -> None:
        """Start the heartbeat and watchdogs and chain the SIGTERM handler (once)."""
        if self._started:
            return
        self._started = True
        for resource in (self._heartbeat, *self._watchdogs):
            if resource is not None:
                await _enter(self._stack, resource)
        if self._chain_sigterm:
            self._install_sigterm()

    async def drain(self) -> None:
        """Refuse new requests and wait for those in flight, up to ``drain_timeout`` (once)."""
        if self._stopping:
            return
        self.begin_drain()
        self._stopping = True
        if self._in_flight == 0:
            return
        self._idle = anyio.Event()
        deadline = self._clock.monotonic() + self._drain_timeout
        while self._in_flight > 0:
            left = deadline - self._clock.monotonic()
            if left <= 0:
                logger.warning(
                    "seawall: drain timed out with %d requests in flight", self._in_flight
                )
                return
            await self._clock.await_event(self._idle, left)

    async def finish(self) -> None:
        """Run the shutdown callbacks, stop watchdogs and heartbeat, restore SIGTERM (once)."""
        if self._finished:
            return
        self._finished = True
        try:
            if self._shutdown is not None:
                await self._shutdown.atrigger()
        finally:
            self._restore_sigterm()
            await self._stack.aclose()

    # -- as Starlette's lifespan= -----------------------------------------------------------

    def __call__(self, app: Any) -> AbstractAsyncContextManager[Mapping[str, Any] | None]:
        return self._run(app)

    @contextlib.asynccontextmanager
    async def _run(self, app: Any) -> AsyncIterator[Mapping[str, Any] | None]:
        try:
            await self.startup()
            if self._app_lifespan is None:
                yield None
                await self.drain()
            else:
                async with self._app_lifespan(app) as state:
                    yield state
                    await self.drain()
        finally:
            await self.finish()

    # -- SIGTERM chaining ---------------------------------------------------------------------

    def _install_sigterm(self) -> None:
        # Chain, never replace: the server's handler still runs, so it still drains and
        # still re-raises the signal for exit status 143. Only the main thread may do this.
        if threading.current_thread() is not threading.main_thread():
            logger.warning("seawall: chain_sigterm needs the main thread; readiness flips later")
            return
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            logger.info("seawall: no SIGTERM handler to chain to; leaving signals alone")
            return
        self._previous_handler = previous

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            self.begin_drain()
            previous(signum, frame)

        self._handler = on_sigterm
        signal.signal(signal.SIGTERM, on_sigterm)

    def _restore_sigterm(self) -> None:
        previous, self._previous_handler = self._previous_handler, None
        if previous is None or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is self._handler:
            signal.signal(signal.SIGTERM, previous)


async def _enter(stack: AsyncExitStack, resource: Any) -> None:
    if isinstance(resource, AbstractAsyncContextManager) or hasattr(resource, "__aenter__"):
        await stack.enter_async_context(resource)
    elif isinstance(resource, AbstractContextManager) or hasattr(resource, "__enter__"):
        stack.enter_context(resource)
    else:
        raise TypeError(f"cannot start {resource!r}: it is not a context manager")


def seawall_lifespan(
    *,
    shutdown: GracefulShutdown | None = None,
    heartbeat: Heartbeat | None = None,
    watchdogs: Iterable[Watchdog] = (),
    drain_timeout: float = 30.0,
    app_lifespan: AppLifespan | None = None,
    chain_sigterm: bool = False,
    clock: Clock | None = None,
) -> SeawallLifespan:
    """A lifespan hook for Starlette's ``lifespan=`` (and for ``ResilienceMiddleware``).

    ``shutdown`` is a ``GracefulShutdown`` whose callbacks run at lifespan shutdown;
    ``heartbeat`` and ``watchdogs`` are entered at startup and exited at shutdown;
    ``app_lifespan`` is the app's own lifespan, entered inside ours; ``drain_timeout`` bounds
    the wait for requests in flight; ``chain_sigterm`` flips readiness at SIGTERM by chaining
    to the server's handler.
    """
    return SeawallLifespan(
        shutdown=shutdown,
        heartbeat=heartbeat,
        watchdogs=watchdogs,
        drain_timeout=drain_timeout,
        app_lifespan=app_lifespan,
        chain_sigterm=chain_sigterm,
        clock=clock,
    )
