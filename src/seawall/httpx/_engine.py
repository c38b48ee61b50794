"""The standard pipeline's drivers: one request through its origin's gates, sync and async.

Theory of operation. Outermost first::

    bulkhead -> deadline -> retry -> [hedging] -> hold-back -> limiter -> breaker
        -> attempt timeout -> inner transport

* The **bulkhead** slot is held for the whole request (its retries and waits included) and
  released on every path; a hedged extra attempt takes a slot of its own (``_hedge.py``).
* The **deadline** (``timeout``) is a point on the transport's clock fixed when the request
  starts; retry waits, ``Retry-After`` waits and hold-back waits that would reach it stop
  the request at once, and each attempt's timeout is cut to the time left (the first
  attempt, unless its origin is held back, has the whole timeout left: it reads no clock).
* **Retries** follow :class:`~seawall.Retry` (its backoff, attempts and budget); a
  :class:`~seawall._retry.RetryRun` is only made once an attempt fails, unless the budget or
  the Retry's own deadline need it from the start.
* The **hold-back**: a 429 or 503 with a readable ``Retry-After`` holds the origin back until
  then (extends only, capped at ``max_retry_after``): later attempts wait for it inside the
  deadline, or are refused at once with ``retry_after`` when it would not fit.
* The **breaker** permit is taken last and settled exactly once: a response for which
  ``is_failure`` holds or an exception (an attempt timeout included) is a failure,
  cancellation is neutral.
* The **attempt timeout** is handed to the inner transport as httpx's own ``timeout``
  extension (connect, read, write and pool; never loosened), which ``httpx.HTTPTransport``
  and ``httpx.AsyncHTTPTransport`` enforce on every network wait. Any other async inner
  transport (``MockTransport`` with an async handler, an ASGI transport...) runs each
  attempt in an anyio cancel scope on the event loop's clock instead (about 16 us on
  asyncio). A ``MockTransport`` with a plain-function handler and an in-memory body never
  suspends, so a scope could not cut it and it runs without one (:func:`runs_inline`); a
  sync inner transport cannot be cut either (Python cannot cancel a thread), so only
  transports that read the extension are bounded there.
"""

from __future__ import annotations

from collections.abc import Callable
from math import floor
from typing import Any

import anyio
import httpx

from .._breaker.breaker import CircuitBreaker
from .._bulkhead.bulkhead import Bulkhead
from .._callables import is_async_callable
from .._clock import Clock
from .._core.breaker import FAILURE
from .._errors import RateLimitExceededError, RejectedError
from .._events import ACTIVE as _OBSERVED
from .._pipeline import BreakerLike, BulkheadLike
from .._retry import Retry, RetryRun
from ._errors import TimeoutTransportError
from ._headers import exhausted_for, retry_after_of
from ._standard import Settings

__all__ = ["Engine", "Origin", "SlotLease", "discard", "is_network_error", "server_error"]

_BLOCKING_STATUSES = frozenset({429, 503})


class Origin:
    """One origin's policies and its hold-back (a monotonic time; 0 when not held)."""

    __slots__ = (
        "breaker",
        "bulkhead",
        "held_until",
        "limiter",
        "name",
        "shared",
        "slot_at_once",
        "tickets",
    )

    def __init__(
        self,
        name: str,
        limiter: Any,
        bulkhead: BulkheadLike | None,
        breaker: BreakerLike | None,
    ) -> None:
        self.name = name
        self.limiter = limiter
        self.bulkhead = bulkhead
        self.breaker = breaker
        self.held_until = 0.0
        # Gates kept in a store are asked with their a-methods in async code.
        self.shared = any(getattr(g, "store", None) is not None for g in (bulkhead, breaker))
        # An in-memory bulkhead with no queue admits or refuses at once: async code may take
        # its slot with the sync call (what acquire_async does then, minus a coroutine).
        self.slot_at_once = type(bulkhead) is Bulkhead and bulkhead.max_wait == 0
        # An in-memory breaker that times no call is settled through its ticket protocol
        # (what admit() and its permit do, minus the permit object): the breaker itself
        # exactly, as a subclass (a store-backed one) may change that protocol.
        self.tickets = type(breaker) is CircuitBreaker and not breaker._timed


class SlotLease:
    """Whether the request's bulkhead slot was handed to a worker that outlives the request."""

    __slots__ = ("kept",)

    def __init__(self) -> None:
        self.kept = False


class Engine:
    """Runs requests through an :class:`Origin`'s gates; see the module docstring."""

    def __init__(
        self,
        *,
        clock: Clock,
        retry: Retry | None,
        retry_methods: frozenset[str],
        retry_statuses: frozenset[int],
        is_failure: Callable[[httpx.Response], bool],
        max_retry_after: float,
        pace: bool,
        hold_back: bool,
        sync_inner: Callable[[], httpx.BaseTransport],
        async_inner: Callable[[], httpx.AsyncBaseTransport],
    ) -> None:
        self.clock = clock
        self.retry = retry
        self.retry_methods = retry_methods
        self.retry_statuses = retry_statuses
        self.is_failure = is_failure
        self.max_retry_after = max_retry_after
        self.pace = pace
        self.hold_back = hold_back
        self.sync_inner = sync_inner
        self.async_inner = async_inner
        self.eager = retry is not None and (retry.budget is not None or retry.deadline is not None)
        self.fails_on_5xx = is_failure is server_error  # the default, tested inline
        # The statuses for which a first attempt's response is looked at again (retried, or
        # read for a pause); with pace on, every response is.
        self.watched_statuses = retry_statuses | _BLOCKING_STATUSES
        # The inner transports, once asked for.
        self._sync_transport: httpx.BaseTransport | None = None
        self._async_transport: httpx.AsyncBaseTransport | None = None
        # The async inner transport when it never suspends (see runs_inline), else False;
        # None until the first async attempt.
        self._inline_inner: object = None
        # (limit, timeouts) last found within that limit by _bound_timeouts; replaced whole.
        self._fits: tuple[float, dict[str, float | None]] = (0.0, {})

    # -- what a request gets ----------------------------------------------------------------

    def replayable(self, request: httpx.Request, settings: Settings, stream: object = None) -> bool:
        """Whether the request may be sent more than once (retried or hedged).

        ``stream``: its body as it was before the first attempt (which may have read it).
        """
        wanted = settings.retry
        if wanted is None:
            wanted = request.method in self.retry_methods
        # A streamed body cannot be sent twice.
        return wanted and isinstance(request.stream if stream is None else stream, httpx.ByteStream)

    def acceptable(self, outcome: httpx.Response | Exception) -> bool:
        """Whether an outcome ends the request (not an error, not a retryable status)."""
        return isinstance(outcome, httpx.Response) and (
            outcome.status_code not in self.retry_statuses
        )

    def _run_for(
        self,
        request: httpx.Request,
        settings: Settings,
        stream: object,
        deadline_at: float | None,
    ) -> RetryRun | None:
        """The request's retries, or None when it may not be retried.

        Made when an attempt fails, or up front when the Retry's budget (which counts every
        request) or its own deadline (which starts with the request) need it (``eager``).
        """
        retry = self.retry
        if retry is None or not self.replayable(request, settings, stream):
            return None
        return retry.start(deadline_at=deadline_at)

    # -- sync -------------------------------------------------------------------------------

    def send(
        self,
        origin: Origin,
        request: httpx.Request,
        settings: Settings,
        attempt: Callable[[Origin, httpx.Request, Settings, float | None], httpx.Response]
        | None = None,
        lease: SlotLease | None = None,
    ) -> httpx.Response:
        """The whole request: bulkhead, deadline and retries around ``attempt``
        (None: :meth:`attempt`).

        ``lease.kept`` set by the end means a worker thread still uses the request's slot
        and releases it itself (an abandoned sync hedge).
        """
        bulkhead: Any = origin.bulkhead
        if bulkhead is not None:
            if origin.slot_at_once:
                # Bulkhead.acquire's lock-free case inline, for every request pays for it
                # (tests/test_httpx_engine_slot.py holds the two together); anything else (no
                # released slot, someone queued, events observed) goes through acquire.
                core = bulkhead._core
                free = core.free
                try:
                    if core.queue or _OBSERVED:
                        raise IndexError  # not the lock-free case: acquire decides
                    free.pop()
                except IndexError:
                    bulkhead.acquire()  # its max_wait, 0
                else:
                    next(core.quick)
            else:
                bulkhead.acquire(timeout=bulkhead.max_wait)
        try:
            timeout = settings.timeout
            deadline_at = None if timeout is None else self.clock.monotonic() + timeout
            stream = request.stream  # as it was: an attempt may read it
            fresh = True
            run = self._run_for(request, settings, stream, deadline_at) if self.eager else None
            while True:
                try:
                    if attempt is not None:
                        response = attempt(origin, request, settings, deadline_at)
                    elif fresh and not origin.held_until and origin.limiter is None:
                        # The first attempt: attempt(fresh=True) inline, for every request
                        # pays for it (tests/test_httpx_engine.py holds the two together).
                        fresh = False
                        limit = settings.first_limit
                        # The limit and the client's timeouts as _bound_timeouts last found
                        # them fitting: nothing to do, in one comparison.
                        if limit is not None and (
                            (limit, request.extensions.get("timeout")) != self._fits
                        ):
                            self._bound_timeouts(request, limit)
                        breaker: Any = origin.breaker
                        tickets = origin.tickets
                        if tickets:
                            # CircuitBreaker._acquire's closed case inline (a ticket is a
                            # non-empty tuple, never false).
                            permit = breaker._state.closed_ticket or breaker._acquire()
                        elif breaker is None:
                            permit = None
                        else:
                            permit = breaker.admit()
                        inner = self._sync_transport or self._sync_transport_once()
                        try:
                            response = inner.handle_request(request)
                        except BaseException as exc:
                            if tickets:
                                breaker._settle(permit, breaker._outcome(exc))
                            elif permit is not None:
                                permit.settle(exc)
                            raise
                        status = response.status_code
                        if tickets:
                            if status >= 500 if self.fails_on_5xx else self.is_failure(response):
                                breaker._settle(permit, FAILURE)
                            else:
                                # CircuitBreaker._succeeded's lock-free case for a time window
                                # at its quorum, inline (tests/test_httpx_engine.py holds the two
                                # together); anything else goes through _succeeded.
                                state = breaker._state
                                bucket = state.quorum_bucket
                                if (
                                    bucket is not None
                                    and permit is state.closed_ticket
                                    and not _OBSERVED
                                    and floor(
                                        breaker._clock.monotonic() / breaker._config.bucket_width
                                    )
                                    == bucket
                                ):
                                    next(breaker._window_successes)
                                else:
                                    breaker._succeeded(permit, 0.0)
                        elif permit is not None:
                            if status >= 500 if self.fails_on_5xx else self.is_failure(response):
                                permit.failure()
                            else:
                                permit.success()
                        if status not in self.watched_statuses and not self.pace:
                            # Neither retried nor read for a pause (most responses).
                            return response
                        if status in _BLOCKING_STATUSES or self.pace:
                            self.observe(origin, response)
                    else:
                        first, fresh = fresh, False  # a retry's gate reads the clock
                        response = self.attempt(origin, request, settings, deadline_at, first)
                except Exception as exc:
                    run = run or self._run_for(request, settings, stream, deadline_at)
                    if run is None:
                        raise
                    wait = run.after_exception(exc)
                    if wait is None:
                        raise
                else:
                    if response.status_code not in self.retry_statuses:
                        return response
                    run = run or self._run_for(request, settings, stream, deadline_at)
                    if run is None:
                        return response
                    wait = run.after_result(response)
                    if wait is None:
                        return response
                    response.close()
                run.sleep(wait)
        finally:
            if bulkhead is not None and (lease is None or not lease.kept):
                if origin.slot_at_once:
                    # Bulkhead.release's lock-free case, inline.
                    if len(free) < core.issued and core.busy_since is None and not _OBSERVED:
                        free.append(None)
                        if core.queue:
                            bulkhead._fill()
                    else:
                        bulkhead.release()
                else:
                    bulkhead.release()

    def attempt(
        self,
        origin: Origin,
        request: httpx.Request,
        settings: Settings,
        deadline_at: float | None,
        fresh: bool = False,
    ) -> httpx.Response:
        """One attempt: hold-back, limiter, breaker, the inner transport (sync).

        ``fresh``: the request's first attempt, its deadline just set.
        """
        if fresh and not origin.held_until:
            # The deadline was set an instant ago: the whole timeout is left, nothing for
            # the gate to refuse and no clock to read.
            limit, left = settings.first_limit, settings.timeout
        else:
            wait, limit, left = self._gate(origin, settings, deadline_at)
            while wait:
                self.clock.sleep(wait)
                wait, limit, left = self._gate(origin, settings, deadline_at)
        if origin.limiter is not None and not origin.limiter.acquire(timeout=left):
            raise _no_token()
        if limit is not None:
            self._bound_timeouts(request, limit)
        breaker: Any = origin.breaker
        tickets = origin.tickets
        permit = None if breaker is None else breaker._acquire() if tickets else breaker.admit()
        inner = self._sync_transport or self._sync_transport_once()
        try:
            response = inner.handle_request(request)
        except BaseException as exc:
            if tickets:
                breaker._settle(permit, breaker._outcome(exc))
            elif permit is not None:
                permit.settle(exc)
            raise
        if permit is not None:
            failed = response.status_code >= 500 if self.fails_on_5xx else self.is_failure(response)
            if tickets:
                breaker._settle(permit, FAILURE) if failed else breaker._succeeded(permit, 0.0)
            else:
                permit.failure() if failed else permit.success()
        if response.status_code in _BLOCKING_STATUSES or self.pace:
            self.observe(origin, response)
        return response

    def _sync_transport_once(self) -> httpx.BaseTransport:
        inner = self._sync_transport = self.sync_inner()
        return inner

    def _gate(
        self, origin: Origin, settings: Settings, deadline_at: float | None
    ) -> tuple[float, float | None, float | None]:
        """``(hold-back wait, attempt time limit, time left)``; refuses what cannot fit."""
        limit = settings.attempt_timeout
        if deadline_at is None and not origin.held_until:
            return 0.0, limit, None
        now = self.clock.monotonic()
        held = origin.held_until - now
        left = None if deadline_at is None else deadline_at - now
        if held > 0:
            if left is not None and held >= left:
                raise RateLimitExceededError(
                    f"{origin.name} asked for a pause of {held:g} s more, "
                    f"past the request deadline",
                    retry_after=held,
                )
            return held, limit, left
        if left is None:
            return 0.0, limit, None
        if left <= 0:
            raise self._timeout(settings.timeout or 0.0, "request deadline")
        return 0.0, (left if limit is None or left < limit else limit), left

    def _bound_timeouts(self, request: httpx.Request, limit: float) -> None:
        # httpx's own per-operation timeouts, never loosened: the client's may be shorter.
        extensions = request.extensions
        given = extensions.get("timeout")
        if given is None:
            extensions["timeout"] = dict.fromkeys(("connect", "read", "write", "pool"), limit)
            return
        fits = self._fits
        if limit == fits[0] and given == fits[1]:
            # The timeouts the last request was found to keep (a client sends the same ones
            # every time): one comparison in C instead of a loop in Python.
            return
        for value in given.values():
            if value is None or value > limit:
                extensions["timeout"] = {
                    k: limit if v is None or v > limit else v for k, v in given.items()
                }
                return
        # Every timeout the client set is already within the limit (the common case). A copy:
        # an inner transport may change the request's own.
        self._fits = (limit, dict(given))

    def observe(self, origin: Origin, response: httpx.Response) -> None:
        """Hold the origin back (and block its limiter) when the server asks for a pause."""
        block = self.block_for(response)
        if block:
            if self.hold_back:
                until = self.clock.monotonic() + block
                if until > origin.held_until:
                    origin.held_until = until
            if origin.limiter is not None:
                origin.limiter.set_retry_after(block)

    def block_for(self, response: httpx.Response) -> float | None:
        block = None
        if response.status_code in _BLOCKING_STATUSES:
            block = retry_after_of(response, now=self.clock.time(), maximum=self.max_retry_after)
        if block is None and self.pace:
            block = exhausted_for(response, maximum=self.max_retry_after)
        return block

    def _timeout(self, seconds: float, what: str) -> TimeoutTransportError:
        return TimeoutTransportError(f"{what} of {seconds:g} s ran out", timeout=seconds)

    # -- async ------------------------------------------------------------------------------

    async def asend(
        self,
        origin: Origin,
        request: httpx.Request,
        settings: Settings,
        attempt: Any = None,
    ) -> httpx.Response:
        """:meth:`send` for asyncio and trio (``attempt`` None: :meth:`aattempt`)."""
        bulkhead: Any = origin.bulkhead
        if bulkhead is not None:
            if origin.slot_at_once:
                # As in send: Bulkhead.acquire's lock-free case inline.
                core = bulkhead._core
                free = core.free
                try:
                    if core.queue or _OBSERVED:
                        raise IndexError  # not the lock-free case: acquire decides
                    free.pop()
                except IndexError:
                    bulkhead.acquire()  # its max_wait, 0
                else:
                    next(core.quick)
            else:
                await bulkhead.acquire_async(timeout=bulkhead.max_wait)
        try:
            timeout = settings.timeout
            deadline_at = None if timeout is None else self.clock.monotonic() + timeout
            stream = request.stream  # as it was: an attempt may read it
            fresh = True
            run = self._run_for(request, settings, stream, deadline_at) if self.eager else None
            while True:
                try:
                    if attempt is not None:
                        response: httpx.Response = await attempt(
                            origin, request, settings, deadline_at
                        )
                    elif (
                        fresh
                        and not origin.held_until
                        and origin.limiter is None
                        and not origin.shared
                    ):
                        # The first attempt: aattempt(fresh=True) inline, for every request
                        # pays for it (tests/test_httpx_engine.py holds the two together).
                        fresh = False
                        limit = settings.first_limit
                        breaker: Any = origin.breaker
                        tickets = origin.tickets
                        permit: Any
                        if tickets:
                            # As in send: CircuitBreaker._acquire's closed case inline.
                            permit = breaker._state.closed_ticket or breaker._acquire()
                        elif breaker is None:
                            permit = None
                        else:
                            permit = breaker.admit()
                        inner = self._async_transport or self._async_transport_once()
                        try:
                            if limit is None or (
                                inner is self._inline_inner
                                and isinstance(request.stream, httpx.ByteStream)
                            ):
                                response = await inner.handle_async_request(request)
                            elif isinstance(inner, httpx.AsyncHTTPTransport):
                                # It enforces the timeout extension: no cancel scope to pay.
                                self._bound_timeouts(request, limit)
                                response = await inner.handle_async_request(request)
                            else:
                                response = await self._within(origin, inner, request, limit)
                        except BaseException as exc:
                            if tickets:
                                breaker._settle(permit, breaker._outcome(exc))
                            elif permit is not None:
                                permit.settle(exc)
                            raise
                        status = response.status_code
                        if tickets:
                            if status >= 500 if self.fails_on_5xx else self.is_failure(response):
                                breaker._settle(permit, FAILURE)
                            else:
                                # CircuitBreaker._succeeded's lock-free case for a time window
                                # at its quorum, inline (tests/test_httpx_engine.py holds the two
                                # together); anything else goes through _succeeded.
                                state = breaker._state
                                bucket = state.quorum_bucket
                                if (
                                    bucket is not None
                                    and permit is state.closed_ticket
                                    and not _OBSERVED
                                    and floor(
                                        breaker._clock.monotonic() / breaker._config.bucket_width
                                    )
                                    == bucket
                                ):
                                    next(breaker._window_successes)
                                else:
                                    breaker._succeeded(permit, 0.0)
                        elif permit is not None:
                            if status >= 500 if self.fails_on_5xx else self.is_failure(response):
                                permit.failure()
                            else:
                                permit.success()
                        if status not in self.watched_statuses and not self.pace:
                            # Neither retried nor read for a pause (most responses).
                            return response
                        if status in _BLOCKING_STATUSES or self.pace:
                            self.observe(origin, response)
                    else:
                        first, fresh = fresh, False  # a retry's gate reads the clock
                        response = await self.aattempt(
                            origin, request, settings, deadline_at, first
                        )
                except Exception as exc:
                    run = run or self._run_for(request, settings, stream, deadline_at)
                    if run is None:
                        raise
                    # The a-forms: a budget kept in a store is asked without blocking the loop.
                    wait = await run.aafter_exception(exc)
                    if wait is None:
                        raise
                else:
                    if response.status_code not in self.retry_statuses:
                        return response
                    run = run or self._run_for(request, settings, stream, deadline_at)
                    if run is None:
                        return response
                    wait = await run.aafter_result(response)
                    if wait is None:
                        return response
                    await response.aclose()
                await run.asleep(wait)
        finally:
            if bulkhead is not None:
                if origin.shared:
                    with anyio.CancelScope(shield=True):
                        await bulkhead.arelease()
                elif origin.slot_at_once:
                    # As in send: Bulkhead.release's lock-free case, inline.
                    if len(free) < core.issued and core.busy_since is None and not _OBSERVED:
                        free.append(None)
                        if core.queue:
                            bulkhead._fill()
                    else:
                        bulkhead.release()
                else:
                    bulkhead.release()

    async def aattempt(
        self,
        origin: Origin,
        request: httpx.Request,
        settings: Settings,
        deadline_at: float | None,
        fresh: bool = False,
    ) -> httpx.Response:
        """One attempt (asyncio or trio); the time limit is a cancel scope.

        ``fresh``: the request's first attempt, its deadline just set.
        """
        if fresh and not origin.held_until:
            # The deadline was set an instant ago: the whole timeout is left, nothing for
            # the gate to refuse and no clock to read.
            limit, left = settings.first_limit, settings.timeout
        else:
            wait, limit, left = self._gate(origin, settings, deadline_at)
            while wait:
                await self.clock.asleep(wait)
                wait, limit, left = self._gate(origin, settings, deadline_at)
        limiter = origin.limiter
        if limiter is not None and not await limiter.acquire_async(timeout=left):
            raise _no_token()
        breaker: Any = origin.breaker
        tickets = origin.tickets
        permit: Any = None
        if breaker is not None:
            if tickets:
                permit = breaker._acquire()
            else:
                permit = await breaker.aadmit() if origin.shared else breaker.admit()
        inner = self._async_transport or self._async_transport_once()
        try:
            if limit is None or (
                inner is self._inline_inner and isinstance(request.stream, httpx.ByteStream)
            ):
                # No limit; or nothing in the inner transport can suspend, so a cancel scope
                # could never act: only its cost.
                response = await inner.handle_async_request(request)
            elif isinstance(inner, httpx.AsyncHTTPTransport):
                # httpx's own transport enforces the timeout extension: no cancel scope to pay.
                self._bound_timeouts(request, limit)
                response = await inner.handle_async_request(request)
            else:
                response = await self._within(origin, inner, request, limit)
        except BaseException as exc:
            if tickets:
                breaker._settle(permit, breaker._outcome(exc))
            elif permit is not None:
                if origin.shared:
                    with anyio.CancelScope(shield=True):
                        await permit.asettle(exc)
                else:
                    permit.settle(exc)
            raise
        if permit is not None:
            failed = response.status_code >= 500 if self.fails_on_5xx else self.is_failure(response)
            if tickets:
                breaker._settle(permit, FAILURE) if failed else breaker._succeeded(permit, 0.0)
            elif origin.shared:
                with anyio.CancelScope(shield=True):
                    await (permit.afailure() if failed else permit.asuccess())
            else:
                permit.failure() if failed else permit.success()
        if limiter is not None and getattr(limiter, "store", None) is not None:
            # A block kept in a store is a round trip: never on the event loop.
            block = self.block_for(response)
            if block:
                if self.hold_back:
                    origin.held_until = max(origin.held_until, self.clock.monotonic() + block)
                await anyio.to_thread.run_sync(limiter.set_retry_after, block)
        elif response.status_code in _BLOCKING_STATUSES or self.pace:
            self.observe(origin, response)
        return response

    def _async_transport_once(self) -> httpx.AsyncBaseTransport:
        inner = self._async_transport = self.async_inner()
        self._inline_inner = inner if runs_inline(inner) else False
        return inner

    async def _within(
        self, origin: Origin, inner: httpx.AsyncBaseTransport, request: httpx.Request, limit: float
    ) -> httpx.Response:
        """One call of ``inner`` in a cancel scope of ``limit`` seconds."""
        with anyio.CancelScope(deadline=anyio.current_time() + limit) as scope:
            response = await inner.handle_async_request(request)
        if scope.cancelled_caught:
            raise self._timeout(limit, f"attempt to {origin.name}")
        return response


def server_error(response: httpx.Response) -> bool:
    """The default ``is_failure``: a 5xx status."""
    return response.status_code >= 500


def runs_inline(inner: httpx.AsyncBaseTransport) -> bool:
    """Whether ``inner`` answers without ever suspending: an ``httpx.MockTransport`` whose
    handler is a plain function, given a request whose body is already in memory.

    Such an attempt runs to its end in one step of the event loop, like a sync transport:
    a cancel scope around it could never cut it.
    """
    return type(inner) is httpx.MockTransport and not is_async_callable(inner.handler)


def _no_token() -> RateLimitExceededError:
    return RateLimitExceededError("no rate-limit token within the deadline", retry_after=0.0)


def is_network_error(exc: Exception) -> bool:
    """Transport errors (timeouts included) that are not seawall's own rejections."""
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, RejectedError)


def discard(response: httpx.Response) -> object:
    """Close a response without reading it (an awaitable for async ones)."""
    if isinstance(response.stream, httpx.SyncByteStream):
        response.close()
        return None
    return response.aclose()
