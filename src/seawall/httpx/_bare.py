"""The bare transport of seawall 0.x (``ResilientTransport(standard=False)``).

Retries only, through a :class:`~seawall.Pipeline` per origin whose gates are taken per
attempt (``retry -> limiter -> bulkhead -> breaker``: a slot is never held through a backoff
wait), with no deadline, no attempt timeout and no hold-back. An origin without gates skips
the pipeline entirely. ``extensions["seawall"]`` may only say ``retry`` here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
import httpx

from .._pipeline import Pipeline
from .._retry import Retry
from ._engine import Engine, Origin, discard

__all__ = ["BarePath", "Host"]


class Host:
    """One origin: its policies as the engine sees them, and its bare pipelines (if any)."""

    __slots__ = ("bare", "once", "origin", "policies", "retrying")

    def __init__(
        self,
        policies: Any,  # the transport's HostPolicies, handed back by policies()
        origin: Origin,
        once: Pipeline | None,
        retrying: Pipeline | None,
    ) -> None:
        self.policies = policies
        self.origin = origin
        self.bare = origin.limiter is None and origin.bulkhead is None and origin.breaker is None
        self.once = once
        self.retrying = retrying


class BarePath:
    """Sends requests the 0.x way; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        retry: Retry | None,
        retry_methods: frozenset[str],
        is_failure: Callable[[httpx.Response], bool],
    ) -> None:
        self._engine = engine
        self._retry = retry
        self._retry_methods = retry_methods
        self._is_failure = is_failure

    def pipelines(self, origin: Origin) -> tuple[Pipeline, Pipeline]:
        """The origin's pipelines: one attempt, and with retries."""
        common: dict[str, Any] = {
            "limiter": origin.limiter,
            "bulkhead": origin.bulkhead,
            "breaker": origin.breaker,
            "failure_result": self._is_failure,
            "on_discard": discard,
            "clock": self._engine.clock if self._retry is None else self._retry.clock,
        }
        return Pipeline(**common), Pipeline(retry=self._retry, **common)

    def send(self, host: Host, request: httpx.Request) -> httpx.Response:
        retries = self._retries(request)
        if host.bare:
            # No gates for this origin: skip the pipeline's bookkeeping entirely.
            send = self._engine.sync_inner().handle_request
            if not retries:
                return send(request)
            assert self._retry is not None
            return self._retry.start().drive(lambda: send(request), discard)
        pipeline = host.retrying if retries else host.once
        assert pipeline is not None
        return pipeline.call(self._send, host.origin, request)

    async def asend(self, host: Host, request: httpx.Request) -> httpx.Response:
        retries = self._retries(request)
        if host.bare:
            send = self._engine.async_inner().handle_async_request
            if not retries:
                return await send(request)
            assert self._retry is not None
            return await self._retry.start().adrive(lambda: send(request), discard)
        pipeline = host.retrying if retries else host.once
        assert pipeline is not None
        return await pipeline.acall(self._asend, host.origin, request)

    def _send(self, origin: Origin, request: httpx.Request) -> httpx.Response:
        response = self._engine.sync_inner().handle_request(request)
        self._engine.observe(origin, response)
        return response

    async def _asend(self, origin: Origin, request: httpx.Request) -> httpx.Response:
        response = await self._engine.async_inner().handle_async_request(request)
        limiter = origin.limiter
        if limiter is not None and getattr(limiter, "store", None) is not None:
            # A block kept in a store is a round trip: never on the event loop.
            block = self._engine.block_for(response)
            if block:
                await anyio.to_thread.run_sync(limiter.set_retry_after, block)
        else:
            self._engine.observe(origin, response)
        return response

    def _retries(self, request: httpx.Request) -> bool:
        override = request.extensions.get("seawall")
        if override:
            extra = set(override) - {"retry"}
            if extra:
                raise ValueError(
                    f'extensions["seawall"] keys {sorted(extra)!r} need the standard pipeline '
                    "(this transport was made with standard=False)"
                )
        if override and "retry" in override:
            wanted = bool(override["retry"])
        else:
            wanted = request.method in self._retry_methods
        # A streamed body cannot be sent twice.
        return wanted and self._retry is not None and isinstance(request.stream, httpx.ByteStream)
