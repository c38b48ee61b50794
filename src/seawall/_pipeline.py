"""Pipeline: several policies around one call, in one fixed order.

Outermost first::

    fallback -> timeout (total) -> retry -> limiter -> bulkhead -> breaker -> timeout (attempt)
        -> call

The optional :class:`~seawall.Fallback` answers for everything inside it: a refusal, a
timeout, the last error or rejected result after the retries.

Theory of operation. Each attempt passes three gates, and every gate undoes its own
reservation when a later gate refuses:

1. the limiter: ``acquire`` waits at most the time left before the deadline (a token is spent
   even if a later gate refuses: that is the price of the order);
2. the bulkhead: ``acquire`` queues at most ``min(max_wait, time left)``;
3. the breaker: ``admit()`` is taken **last**, because a half-open breaker reserves its probe
   slot and only an outcome releases it; if it refuses, the bulkhead slot is released at once.

After the call the permit is settled exactly once (success; failure; neutral for cancellation
and excluded exceptions) and then the slot is released, on every path. The deadline is the
earlier of the total ``timeout`` and the retry ``deadline``, on the pipeline's clock, and it
bounds retry waits, limiter waits and bulkhead queueing alike. The total timeout itself is a
:class:`~seawall.Timeout` (a cancel scope for async calls, an abandoned worker thread for sync).
A sync attempt abandoned by ``attempt_timeout`` counts as a breaker failure at once, but keeps
its bulkhead slot until its worker thread really returns, so the bulkhead keeps bounding the
threads that run. In async code, a breaker or bulkhead kept in a store is asked with its
``a``-methods (nothing blocks the loop), and the settle and release after the call are shielded
from cancellation, so a cancelled attempt still frees its probe and its slot.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, Protocol, TypeVar, overload

import anyio

from ._callables import decorate_with
from ._clock import SYSTEM_CLOCK, Clock
from ._core.validate import check_callable
from ._errors import RateLimitExceededError
from ._fallback import Fallback
from ._retry import Retry
from ._timeout import Timeout, run_with_timeout

__all__ = ["Pipeline"]

P = ParamSpec("P")
T = TypeVar("T")


class _Permit(Protocol):
    def success(self) -> None: ...
    def failure(self) -> None: ...
    def settle(self, exc: BaseException | None) -> None: ...
    async def asuccess(self) -> None: ...
    async def afailure(self) -> None: ...
    async def asettle(self, exc: BaseException | None) -> None: ...


class BreakerLike(Protocol):
    """What the pipeline needs from a circuit breaker."""

    def admit(self) -> _Permit: ...
    async def aadmit(self) -> _Permit: ...


class LimiterLike(Protocol):
    """What the pipeline needs from a rate limiter."""

    def acquire(
        self, tokens: int = 1, *, blocking: bool = True, timeout: float | None = None
    ) -> bool: ...
    async def acquire_async(self, tokens: int = 1, *, timeout: float | None = None) -> bool: ...


class BulkheadLike(Protocol):
    """What the pipeline needs from a bulkhead."""

    @property
    def max_wait(self) -> float: ...
    def acquire(self, *, timeout: float | None = None) -> None: ...
    async def acquire_async(self, *, timeout: float | None = None) -> None: ...
    def release(self) -> None: ...
    async def arelease(self) -> None: ...


class _Slot:
    """One held bulkhead slot, released exactly once: now, or when an abandoned worker ends.

    No lock is needed: the caller defers before the worker can see the abandonment (both
    happen under the timeout's hand-off lock), so only one side ever releases.
    """

    __slots__ = ("_bulkhead", "deferred")

    def __init__(self, bulkhead: BulkheadLike | None) -> None:
        self._bulkhead = bulkhead
        self.deferred = False

    def release(self) -> None:
        bulkhead, self._bulkhead = self._bulkhead, None
        if bulkhead is not None:
            bulkhead.release()

    async def arelease(self) -> None:
        bulkhead, self._bulkhead = self._bulkhead, None
        if bulkhead is not None:
            await bulkhead.arelease()

    def defer(self) -> None:
        self.deferred = True

    def release_unless_deferred(self) -> None:
        if not self.deferred:
            self.release()


class _Held:
    """The reservations of one attempt that has passed every gate."""

    __slots__ = ("permit", "slot")

    def __init__(self, slot: _Slot, permit: _Permit | None) -> None:
        self.slot = slot
        self.permit = permit


class Pipeline:
    """Runs calls through timeout, retry, limiter, bulkhead, breaker and attempt timeout.

    Every part is optional and keyword-only; ``timeout`` and ``attempt_timeout`` take seconds
    or a :class:`Timeout`. ``failure_result`` marks returned values that count as breaker
    failures (e.g. HTTP 5xx); ``on_discard`` receives each result that is retried instead of
    returned (e.g. to close a response; an awaitable it returns is awaited). Use ``call`` /
    ``acall``, or the pipeline as a decorator. ``fallback`` (a :class:`~seawall.Fallback`)
    answers, outermost, for whatever fails inside. As a context manager (``with`` / ``async
    with``) it runs the body as one attempt through the limiter, bulkhead and breaker only:
    retry, timeouts and fallback need a callable.
    """

    def __init__(
        self,
        *,
        timeout: float | Timeout | None = None,
        retry: Retry | None = None,
        limiter: LimiterLike | None = None,
        bulkhead: BulkheadLike | None = None,
        breaker: BreakerLike | None = None,
        attempt_timeout: float | Timeout | None = None,
        failure_result: Callable[[Any], bool] | None = None,
        on_discard: Callable[[Any], object] | None = None,
        fallback: Fallback[Any] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.fallback = _check_type("fallback", fallback, Fallback)
        self.timeout = _as_timeout("timeout", timeout, clock)
        self.retry = _check_type("retry", retry, Retry)
        self.limiter = limiter
        self.bulkhead = bulkhead
        self.breaker = breaker
        self.attempt_timeout = _as_timeout("attempt_timeout", attempt_timeout, clock)
        self._failure_result = (
            None if failure_result is None else check_callable("failure_result", failure_result)
        )
        self._on_discard = None if on_discard is None else check_callable("on_discard", on_discard)
        if clock is None:
            clock = SYSTEM_CLOCK if retry is None else retry.clock
        self.clock = clock
        # Nothing to gate or time: an attempt is just the call (the common retry-only case).
        gates = (limiter, bulkhead, breaker, self.attempt_timeout)
        self._bare = all(gate is None for gate in gates)
        # Gates kept in a store are driven by their async methods in async code (asked
        # once here: the in-memory path keeps its cheaper sync calls).
        self._shared = any(getattr(g, "store", None) is not None for g in (bulkhead, breaker))
        self._held: contextvars.ContextVar[tuple[_Held, ...]] = contextvars.ContextVar(
            "seawall_pipeline_held", default=()
        )

    # -- running a call -------------------------------------------------------------------

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` through every configured policy (sync)."""
        if self.fallback is not None:
            return self.fallback.call(self._call, fn, args, kwargs)
        return self._call(fn, args, kwargs)

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` through every configured policy (asyncio or trio)."""
        if self.fallback is not None:
            return await self.fallback.acall(self._acall, fn, args, kwargs)
        return await self._acall(fn, args, kwargs)

    def _call(self, fn: Callable[..., T], args: Any, kwargs: Any) -> T:
        if self.timeout is None:
            return self._run_sync(fn, args, kwargs)
        return self.timeout.call(self._run_sync, fn, args, kwargs)

    async def _acall(self, fn: Callable[..., Awaitable[T]], args: Any, kwargs: Any) -> T:
        if self.timeout is None:
            return await self._run_async(fn, args, kwargs)
        return await self.timeout.acall(self._run_async, fn, args, kwargs)

    def _deadline_at(self) -> float | None:
        if self.timeout is None:
            return None
        return self.clock.monotonic() + self.timeout.seconds

    def _run_sync(self, fn: Callable[..., T], args: Any, kwargs: Any) -> T:
        if self.retry is None:
            return self._attempt_sync(fn, args, kwargs, self._deadline_at())
        run = self.retry.start(deadline_at=self._deadline_at())
        if self._bare:
            result: T = run.drive(lambda: fn(*args, **kwargs), self._on_discard)
        else:
            result = run.drive(
                lambda: self._attempt_sync(fn, args, kwargs, run.deadline_at), self._on_discard
            )
        return result

    async def _run_async(self, fn: Callable[..., Awaitable[T]], args: Any, kwargs: Any) -> T:
        if self.retry is None:
            return await self._attempt_async(fn, args, kwargs, self._deadline_at())
        run = self.retry.start(deadline_at=self._deadline_at())
        if self._bare:
            result: T = await run.adrive(lambda: fn(*args, **kwargs), self._on_discard)
        else:
            result = await run.adrive(
                lambda: self._attempt_async(fn, args, kwargs, run.deadline_at), self._on_discard
            )
        return result

    def _attempt_sync(
        self, fn: Callable[..., T], args: Any, kwargs: Any, deadline_at: float | None
    ) -> T:
        if self._bare:
            return fn(*args, **kwargs)
        held = self._enter_sync(deadline_at)
        try:
            if self.attempt_timeout is None:
                result = fn(*args, **kwargs)
            else:
                result = run_with_timeout(
                    self.attempt_timeout.seconds,
                    self.attempt_timeout.clock,
                    functools.partial(fn, *args, **kwargs),
                    on_abandon=held.slot.defer,
                    on_late_finish=held.slot.release,
                )
        except BaseException as exc:
            self._exit(held, exc, None)
            raise
        self._exit(held, None, result)
        return result

    async def _attempt_async(
        self, fn: Callable[..., Awaitable[T]], args: Any, kwargs: Any, deadline_at: float | None
    ) -> T:
        if self._bare:
            return await fn(*args, **kwargs)
        held = await self._enter_async(deadline_at)
        try:
            if self.attempt_timeout is None:
                result = await fn(*args, **kwargs)
            else:
                result = await self.attempt_timeout.acall(fn, *args, **kwargs)
        except BaseException as exc:
            await self._aexit(held, exc, None)
            raise
        await self._aexit(held, None, result)
        return result

    # -- the gates --------------------------------------------------------------------------

    def _remaining(self, deadline_at: float | None) -> float | None:
        if deadline_at is None:
            return None
        return max(0.0, deadline_at - self.clock.monotonic())

    def _bulkhead_wait(self, bulkhead: BulkheadLike, remaining: float | None) -> float:
        return bulkhead.max_wait if remaining is None else min(bulkhead.max_wait, remaining)

    def _enter_sync(self, deadline_at: float | None) -> _Held:
        remaining = self._remaining(deadline_at)
        if self.limiter is not None and not self.limiter.acquire(timeout=remaining):
            raise _no_token()
        if self.bulkhead is not None:
            self.bulkhead.acquire(timeout=self._bulkhead_wait(self.bulkhead, remaining))
        return self._admit(_Slot(self.bulkhead))

    async def _enter_async(self, deadline_at: float | None) -> _Held:
        remaining = self._remaining(deadline_at)
        if self.limiter is not None and not await self.limiter.acquire_async(timeout=remaining):
            raise _no_token()
        if self.bulkhead is not None:
            await self.bulkhead.acquire_async(timeout=self._bulkhead_wait(self.bulkhead, remaining))
        if not self._shared:
            return self._admit(_Slot(self.bulkhead))
        slot = _Slot(self.bulkhead)
        try:
            permit = None if self.breaker is None else await self.breaker.aadmit()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await slot.arelease()
            raise
        return _Held(slot, permit)

    def _admit(self, slot: _Slot) -> _Held:
        try:
            permit = None if self.breaker is None else self.breaker.admit()
        except BaseException:
            slot.release()
            raise
        return _Held(slot, permit)

    def _exit(self, held: _Held, exc: BaseException | None, result: object) -> None:
        try:
            permit = held.permit
            if permit is None:
                pass
            elif exc is not None:
                permit.settle(exc)
            elif self._failure_result is not None and self._failure_result(result):
                permit.failure()
            else:
                permit.success()
        finally:
            held.slot.release_unless_deferred()

    async def _aexit(self, held: _Held, exc: BaseException | None, result: object) -> None:
        if not self._shared:
            self._exit(held, exc, result)
            return
        # Shielded: a cancelled attempt must still settle its permit and free its slot.
        with anyio.CancelScope(shield=True):
            try:
                permit = held.permit
                if permit is None:
                    pass
                elif exc is not None:
                    await permit.asettle(exc)
                elif self._failure_result is not None and self._failure_result(result):
                    await permit.afailure()
                else:
                    await permit.asuccess()
            finally:
                await held.slot.arelease()

    # -- decorator and context manager ----------------------------------------------------

    @overload
    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a sync or async function so each call runs through the pipeline."""
        return decorate_with(self, fn)

    def __enter__(self) -> Pipeline:
        self._push(self._enter_sync(None))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit(self._pop(), exc, None)

    async def __aenter__(self) -> Pipeline:
        self._push(await self._enter_async(None))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._aexit(self._pop(), exc, None)

    def _push(self, held: _Held) -> None:
        # A context variable keeps concurrent tasks and threads that share one pipeline apart.
        self._held.set((*self._held.get(), held))

    def _pop(self) -> _Held:
        stack = self._held.get()
        self._held.set(stack[:-1])
        return stack[-1]

    def __repr__(self) -> str:
        parts = (
            "fallback",
            "timeout",
            "retry",
            "limiter",
            "bulkhead",
            "breaker",
            "attempt_timeout",
        )
        shown = ", ".join(
            f"{p}={getattr(self, p)!r}" for p in parts if getattr(self, p) is not None
        )
        return f"Pipeline({shown})"


def _no_token() -> RateLimitExceededError:
    return RateLimitExceededError(
        "Rate limit exceeded: no token before the deadline", retry_after=0.0
    )


def _as_timeout(name: str, value: float | Timeout | None, clock: Clock | None) -> Timeout | None:
    if value is None or isinstance(value, Timeout):
        return value
    try:
        return Timeout(value, clock=clock)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None


def _check_type(name: str, value: Any, cls: type[T]) -> T | None:
    if value is not None and not isinstance(value, cls):
        raise TypeError(f"{name} must be a {cls.__name__} or None, got {value!r}")
    return value
