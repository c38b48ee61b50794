"""Fallback: answer with a value, or a function's answer, when a call fails in a chosen way.

Theory of operation. The protected call runs once. When it raises an exception matched by
``on`` (exception types, or a predicate; default ``Exception``), or returns a value for which
``on_result`` holds, the fallback answers instead:

* ``Fallback(value)`` returns ``value``;
* ``Fallback(function=fn)`` returns ``fn(outcome)``, where ``outcome`` is the exception or
  the rejected result (in ``acall`` an async ``fn`` is awaited).

Cancellation and every ``BaseException`` that is not an ``Exception`` (``KeyboardInterrupt``,
``SystemExit``) always pass through, whatever ``on`` says: a fallback must never turn a
cancelled task into a success. An exception raised by ``fn`` itself propagates, chained to the
one it was answering.

Outermost in a :class:`~seawall.Pipeline` (``fallback=``), so it answers for everything inside:
a refusal (open circuit, full bulkhead, no token), a timeout, the last error after retries.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

from ._callables import COROUTINE, decorate_with, is_async_callable, refuse_coroutine, refuse_sync
from ._core.validate import check_callable

__all__ = ["Fallback"]

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")

_MISSING: Any = object()

On = type[BaseException] | tuple[type[BaseException], ...] | Callable[[Exception], bool]


class Fallback(Generic[R]):
    """Replaces a failed call's outcome with ``value`` or ``function(outcome)``.

    Give exactly one of ``value`` (positional) and ``function`` (keyword). ``on``: the
    exception types, or a predicate on the exception, that call for the fallback (default
    ``Exception``). ``on_result``: a predicate on a returned value that calls for it too
    (default None: results are returned as they are). Use ``call`` / ``acall``, or the
    object as a decorator on a sync or async function.
    """

    __slots__ = ("_function", "_on", "_on_result", "_value")

    def __init__(
        self,
        value: R = _MISSING,
        *,
        function: Callable[[Any], R | Awaitable[R]] | None = None,
        on: On = Exception,
        on_result: Callable[[Any], bool] | None = None,
    ) -> None:
        if (value is _MISSING) == (function is None):
            raise TypeError(
                "Fallback needs exactly one of a value or function=, got "
                f"value={'<none>' if value is _MISSING else repr(value)}, function={function!r}"
            )
        self._value = value
        if function is not None:
            check_callable("function", function)
        self._function = function
        self._on = _exception_predicate(on)
        self._on_result = None if on_result is None else check_callable("on_result", on_result)

    def handles(self, exc: BaseException) -> bool:
        """Whether ``exc`` calls for the fallback (never for cancellation)."""
        return isinstance(exc, Exception) and bool(self._on(exc))

    def rejects(self, result: object) -> bool:
        """Whether a returned ``result`` calls for the fallback."""
        return self._on_result is not None and bool(self._on_result(result))

    def answer(self, outcome: object) -> R:
        """The fallback's answer to ``outcome`` (sync; an async function is refused)."""
        if self._function is None:
            return self._value
        if is_async_callable(self._function):
            raise TypeError(
                f"the fallback function {self._function!r} is async: use 'await acall(...)'"
            )
        answer = self._function(outcome)
        if answer.__class__ is COROUTINE:
            refuse_coroutine(answer, self._function, "fallback")
        return cast("R", answer)

    async def aanswer(self, outcome: object) -> R:
        """The fallback's answer to ``outcome``; an awaitable answer is awaited."""
        if self._function is None:
            return self._value
        answer = self._function(outcome)
        if inspect.isawaitable(answer):
            return await answer
        return answer

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T | R:
        """Call ``fn(*args, **kwargs)``; the fallback's answer if it fails as chosen."""
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            if not self.handles(exc):
                raise
            return self.answer(exc)
        if result.__class__ is COROUTINE:
            refuse_coroutine(result, fn, "fallback")
        return self.answer(result) if self.rejects(result) else result

    async def acall(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T | R:
        """Await ``fn(*args, **kwargs)``; the fallback's answer if it fails as chosen."""
        awaitable = fn(*args, **kwargs)  # an async function's body has not started yet
        if not inspect.isawaitable(awaitable):
            refuse_sync(fn, "fallback")
        try:
            result = await awaitable
        except Exception as exc:
            if not self.handles(exc):
                raise
            return await self.aanswer(exc)
        return await self.aanswer(result) if self.rejects(result) else result

    @overload
    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T | R]]: ...
    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T | R]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a sync or async function so its failures get the fallback's answer."""
        return decorate_with(self, fn)

    def __repr__(self) -> str:
        what = f"function={self._function!r}" if self._function is not None else repr(self._value)
        return f"Fallback({what})"


def _exception_predicate(on: On) -> Callable[[Exception], bool]:
    if isinstance(on, type | tuple):
        types = on if isinstance(on, tuple) else (on,)
        if not types or not all(isinstance(t, type) and issubclass(t, Exception) for t in types):
            raise TypeError(
                f"on must be Exception subclasses or a predicate, got {on!r} "
                "(cancellation and other BaseExceptions always pass through)"
            )
        return lambda exc: isinstance(exc, types)
    return check_callable("on", on)
