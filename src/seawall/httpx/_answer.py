"""The transport's fallback: ``fallback(request, outcome)`` may answer for the origin.

It is asked when a gate refused, the last attempt raised, or the last response is still a
failure (a retryable status, or ``is_failure``). It returns an ``httpx.Response`` to use
instead (the replaced response is closed) or None to keep the outcome. Async clients await an
async fallback; a sync client refuses one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import httpx

__all__ = ["FallbackFunction", "ResponseFallback"]

Outcome = httpx.Response | Exception
FallbackFunction = Callable[[httpx.Request, Outcome], Any]


class ResponseFallback:
    """Asks ``function`` for a response in place of a failed outcome."""

    __slots__ = ("_function", "_gave_up")

    def __init__(self, function: FallbackFunction, gave_up: Callable[[httpx.Response], bool]):
        self._function = function
        self._gave_up = gave_up

    def gave_up(self, response: httpx.Response) -> bool:
        """Whether a returned response is a failure the fallback should see."""
        return self._gave_up(response)

    def answer(self, request: httpx.Request, outcome: Outcome) -> httpx.Response:
        """The response to return (sync clients)."""
        answer = self._function(request, outcome)
        if inspect.isawaitable(answer):
            if inspect.iscoroutine(answer):
                answer.close()
            raise TypeError("an async fallback needs an async client (httpx.AsyncClient)")
        chosen = _chosen(answer, outcome)
        if chosen is not outcome and isinstance(outcome, httpx.Response):
            outcome.close()
        return chosen

    async def aanswer(self, request: httpx.Request, outcome: Outcome) -> httpx.Response:
        """The response to return (async clients)."""
        answer = self._function(request, outcome)
        if inspect.isawaitable(answer):
            answer = await answer
        chosen = _chosen(answer, outcome)
        if chosen is not outcome and isinstance(outcome, httpx.Response):
            await outcome.aclose()
        return chosen


def _chosen(answer: object, outcome: Outcome) -> httpx.Response:
    if answer is None:
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    if not isinstance(answer, httpx.Response):
        raise TypeError(f"fallback must return an httpx.Response or None, got {answer!r}")
    return answer
