"""Adaptive load shedding for ResilienceMiddleware: ``max_concurrent="auto"``.

An :class:`~seawall.AdaptiveBulkhead` learns how many requests the app can serve at once from
their latency. Each request gets a priority (``critical``, ``default`` or ``sheddable``) from
the ``priority`` option: a mapping of path prefixes (the longest matching prefix wins) or a
function of the ASGI scope. A request over its priority's ceiling is answered 503 with
``Retry-After`` at once, before any other gate, so a refused request costs no rate-limit
quota. Probes (readiness, liveness, drain) are answered before this layer and exempt requests
skip it: neither is ever shed.

What a served request tells the limit, from its response status:

* a response below 500, other than 429, is a latency sample (``success``);
* 503 and 504 (the app or a gate further in refusing or timing out) are **drops**: the
  limit shrinks;
* 429, other 5xx, an exception, a client that left or a cancellation say nothing about load
  and are not sampled (``ignore``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .._bulkhead.adaptive import AdaptiveBulkhead
from .._core.adaptive_window import PRIORITIES
from .._gates import OFF
from ._responses import Rejection, unavailable
from ._types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AdaptiveBulkhead", "PrioritySpec", "Shedding", "adaptive_bulkhead", "priority_function"]

PrioritySpec = Mapping[str, str] | Callable[[Scope], str]
Reject = Callable[[Scope, Receive, Send, Rejection], Awaitable[None]]

_DROPS = frozenset({503, 504})


def adaptive_bulkhead(max_concurrent: object, name: str, clock: Any) -> AdaptiveBulkhead | None:
    """The adaptive bulkhead ``max_concurrent`` asks for ("auto" or an instance), else None."""
    if isinstance(max_concurrent, AdaptiveBulkhead):
        return max_concurrent
    if max_concurrent == "auto":
        return AdaptiveBulkhead(name=name, clock=clock)
    if isinstance(max_concurrent, str):
        raise ValueError(
            f"max_concurrent must be an int, 'auto', a Bulkhead or an AdaptiveBulkhead, "
            f"got {max_concurrent!r}"
        )
    return None


def priority_function(priority: PrioritySpec | None) -> Callable[[Scope], str]:
    """A scope -> priority function from the ``priority`` option (None: all ``default``)."""
    if priority is None:
        return _default
    if callable(priority):
        return _checked(priority)
    if not isinstance(priority, Mapping):
        raise TypeError(
            f"priority must be a mapping of path prefixes or a function, got {priority!r}"
        )
    for prefix, value in priority.items():
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise ValueError(f"priority keys must be paths starting with '/', got {prefix!r}")
        if value not in PRIORITIES:
            raise ValueError(f"priority[{prefix!r}] must be one of {PRIORITIES}, got {value!r}")
    # Longest prefix first, so "/api/batch" wins over "/api" for "/api/batch/7".
    table = sorted(priority.items(), key=lambda item: len(item[0]), reverse=True)

    def by_prefix(scope: Scope) -> str:
        path: str = scope["path"]
        for prefix, value in table:
            if path.startswith(prefix):
                return value
        return "default"

    return by_prefix


def _default(scope: Scope) -> str:
    return "default"


def _checked(fn: Callable[[Scope], str]) -> Callable[[Scope], str]:
    def checked(scope: Scope) -> str:
        value = fn(scope)
        if value not in PRIORITIES:
            raise ValueError(f"priority function returned {value!r}, not one of {PRIORITIES}")
        return value

    return checked


class Shedding:
    """The shedding layer: wraps the middleware's gate sequence (``inner``)."""

    __slots__ = ("_exempt", "_inner", "_priority", "_reject", "bulkhead")

    def __init__(
        self,
        bulkhead: AdaptiveBulkhead,
        priority: PrioritySpec | None,
        exempt: Callable[[Scope], bool] | None,
        inner: ASGIApp,
        reject: Reject,
    ) -> None:
        self.bulkhead = bulkhead
        self._priority = priority_function(priority)
        self._exempt = exempt
        self._inner = inner
        self._reject = reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if OFF or (self._exempt is not None and self._exempt(scope)):  # OFF: testing switch
            await self._inner(scope, receive, send)
            return
        bulkhead = self.bulkhead
        permit = bulkhead.try_acquire(self._priority(scope))
        if permit is None:
            rejection = unavailable("overloaded", bulkhead.stats.rtt, "The service is overloaded.")
            await self._reject(scope, receive, send, rejection)
            return
        status = 0
        finished = False

        async def observing(message: Message) -> None:
            nonlocal status, finished
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)

        try:
            await self._inner(scope, receive, observing)
        except BaseException:
            permit.ignore()
            raise
        if status in _DROPS:
            permit.drop()
        elif finished and status < 500 and status != 429:
            permit.success()
        else:
            permit.ignore()
