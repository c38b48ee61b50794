"""Timeout: give up on a call after a fixed number of seconds.

Async calls (``acall`` and decorated async functions) run inside an anyio cancel scope whose
deadline is on the **event loop's clock** (``anyio.current_time()``): at the deadline the call
is cancelled the ordinary anyio way (its ``finally`` blocks run) and
:class:`~seawall.TimeoutExceededError` (also a builtin ``TimeoutError``) is raised. A timeout
therefore follows trio's ``MockClock`` in tests; the ``clock=`` argument does not affect it.
A cancellation from an enclosing scope passes through untouched.

Sync calls cannot be cancelled in Python, so ``call`` runs the function in a fresh daemon
worker thread (with a copy of the caller's contextvars) and waits for it on ``clock``; at the
deadline the caller gets ``TimeoutExceededError`` and the worker is **abandoned**: it keeps
running to completion in the background and its result or exception is dropped. Use it for
calls that are safe to abandon (reads, idempotent requests), and prefer a timeout on the I/O
itself (socket and client timeouts) where one exists.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, overload

import anyio

from ._callables import decorate_with, is_async_callable
from ._clock import SYSTEM_CLOCK, Clock
from ._core.validate import check_number
from ._errors import TimeoutExceededError

__all__ = ["Timeout", "run_with_timeout"]

P = ParamSpec("P")
T = TypeVar("T")


class Timeout:
    """Limits a call to ``seconds``; see the module docstring for sync versus async."""

    __slots__ = ("clock", "seconds")

    def __init__(self, seconds: float, *, clock: Clock | None = None) -> None:
        self.seconds = check_number("seconds", seconds)
        self.clock = SYSTEM_CLOCK if clock is None else clock

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)``; cancel it and raise at the deadline."""
        with anyio.CancelScope(deadline=anyio.current_time() + self.seconds):
            return await fn(*args, **kwargs)
        # Only reached when our own scope caught its own cancellation.
        raise self._error()

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker thread; abandon it at the deadline."""
        if is_async_callable(fn):
            raise TypeError("call() got an async function; use 'await acall(...)' instead")
        return run_with_timeout(self.seconds, self.clock, functools.partial(fn, *args, **kwargs))

    @overload
    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a sync or async function."""
        return decorate_with(self, fn)

    def _error(self) -> TimeoutExceededError:
        return TimeoutExceededError(
            f"call did not finish within {self.seconds:g} seconds", timeout=self.seconds
        )

    def __repr__(self) -> str:
        return f"Timeout({self.seconds!r})"


class _Handoff:
    """Result passing between the worker and the caller; whoever is second decides."""

    __slots__ = ("abandoned", "done", "error", "finished", "lock", "on_late", "result")

    def __init__(self, on_late: Callable[[], None] | None) -> None:
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.finished = False
        self.abandoned = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.on_late = on_late


def run_with_timeout(
    seconds: float,
    clock: Clock,
    fn: Callable[[], T],
    *,
    on_abandon: Callable[[], None] | None = None,
    on_late_finish: Callable[[], None] | None = None,
) -> T:
    """Run ``fn`` in a worker thread for at most ``seconds`` (on ``clock``).

    If the caller gives up, ``on_abandon`` runs in the caller (before the error is raised) and
    ``on_late_finish`` later runs in the worker once ``fn`` finally returns (e.g. to free a
    bulkhead slot only when the work has really stopped); otherwise neither runs.
    """
    handoff = _Handoff(on_late_finish)
    context = contextvars.copy_context()
    worker = threading.Thread(
        target=_work, args=(handoff, context, fn), name="seawall-timeout", daemon=True
    )
    worker.start()
    clock.wait_for(handoff.done, seconds)
    with handoff.lock:
        if not handoff.finished:
            handoff.abandoned = True
            if on_abandon is not None:
                on_abandon()
            raise TimeoutExceededError(
                f"call did not finish within {seconds:g} seconds", timeout=seconds
            )
    if handoff.error is not None:
        raise handoff.error
    return handoff.result  # type: ignore[no-any-return]


def _work(handoff: _Handoff, context: contextvars.Context, fn: Callable[[], Any]) -> None:
    result: Any = None
    error: BaseException | None = None
    try:
        result = context.run(fn)
    except BaseException as exc:  # handed to the caller, who re-raises it
        error = exc
    with handoff.lock:
        late = handoff.abandoned
        if not late:
            handoff.finished = True
            handoff.result, handoff.error = result, error
    handoff.done.set()
    if late and handoff.on_late is not None:
        handoff.on_late()
