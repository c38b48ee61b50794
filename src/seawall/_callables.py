"""Telling async callables from sync ones, once for every policy.

``inspect.iscoroutinefunction`` alone misses two common shapes: an object whose ``__call__``
is async, and a ``functools.partial`` of an async function. Every decorator and every
``call``/``acall`` check in seawall asks this module instead, so they all agree.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

from ._core.validate import check_callable

__all__ = ["COROUTINE", "decorate_with", "is_async_callable", "refuse_coroutine", "refuse_sync"]

#: What calling an ``async def`` function returns. The policies' sync paths test
#: ``result.__class__ is COROUTINE`` inline (the cheapest test, paid on every call), their async
#: paths also accept any object with ``__await__``, and both hand a refusal to the helpers below
#: so every policy refuses the same things with the same words.
COROUTINE = types.CoroutineType


class _Runs(Protocol):
    """A policy that runs callables: ``call`` for sync ones, ``acall`` for async ones."""

    def call(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any: ...

    async def acall(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any: ...


def is_async_callable(fn: object) -> bool:
    """True for async functions, partials of them and objects with an async ``__call__``."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - the method itself, not callable()
    )


def refuse_coroutine(result: Any, fn: object, policy: str) -> NoReturn:
    """Close the coroutine a sync ``call`` got from ``fn`` (its body never ran); raise TypeError."""
    result.close()
    raise TypeError(
        f"call() got the async callable {fn!r}, which returned a coroutine: "
        f"use 'await {policy}.acall(...)'"
    )


def refuse_sync(fn: object, policy: str) -> NoReturn:
    """Raise the TypeError for a sync callable handed to ``acall``."""
    raise TypeError(f"acall() got the sync callable {fn!r}: use {policy}.call(...)")


def decorate_with(policy: _Runs, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``fn`` so each call goes through ``policy.call`` or ``await policy.acall``."""
    check_callable("fn", fn)
    if is_async_callable(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            return await policy.acall(fn, *args, **kwargs)

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return policy.call(fn, *args, **kwargs)

    return wrapper
