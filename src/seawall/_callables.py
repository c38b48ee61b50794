"""Telling async callables from sync ones, once for every policy.

``inspect.iscoroutinefunction`` alone misses two common shapes: an object whose ``__call__``
is async, and a ``functools.partial`` of an async function. Every decorator and every
``call``/``acall`` check in seawall asks this module instead, so they all agree.
"""

from __future__ import annotations

import functools
import inspect

__all__ = ["is_async_callable"]


def is_async_callable(fn: object) -> bool:
    """True for async functions, partials of them and objects with an async ``__call__``."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - the method itself, not callable()
    )
