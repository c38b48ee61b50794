"""Per-endpoint limits: the ``@limit`` decorator and the FastAPI ``Depends(RateLimit(...))``.

``@limit("5/minute")`` only marks the endpoint; ``ResilienceMiddleware`` finds the mark on the
route Starlette will dispatch to and applies that limit instead of its default, before the
endpoint (and FastAPI's body parsing) runs. ``RateLimit`` is a FastAPI dependency that limits
inside the app, after routing; its 429 is raised as :class:`RateLimited`, which the middleware
renders like its own (without the middleware, register :func:`rate_limit_exceeded_handler`).
Neither asks anything of the endpoint's parameter names.
"""

# No ``from __future__ import annotations`` here: FastAPI 0.115 (our floor) resolves a callable
# instance's string annotations without its module globals, so ``request: Request`` would turn
# into a query parameter (every call a 422).
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from .._callables import is_async_callable
from .._clock import Clock
from .._errors import RateLimitExceededError
from .._gates import OFF
from .._gates import register as register_gate
from ..stores._base import Store
from ..stores._open import store_for_policy
from ._client import ClientKey
from ._limits import LimitGroup, LimitSpec, PolicyState, check_cost, parse_limits
from ._responses import rate_limited, ratelimit_fields
from ._types import Scope

__all__ = [
    "CLIENT_KEY",
    "COST_ATTRIBUTE",
    "LIMIT_ATTRIBUTE",
    "RateLimit",
    "RateLimited",
    "limit",
    "rate_limit_exceeded_handler",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Where the middleware leaves the client key for the dependency (a private scope entry).
CLIENT_KEY = "seawall.client_key"
#: The attribute ``@limit`` sets on an endpoint.
LIMIT_ATTRIBUTE = "__seawall_limit__"
#: The attribute ``@limit(..., cost=)`` sets on an endpoint.
COST_ATTRIBUTE = "__seawall_cost__"

Cost = int | Callable[[Scope], int]


def limit(spec: LimitSpec | None, *, cost: Cost = 1) -> Callable[[F], F]:
    """Mark an endpoint with its own limit (``None``: no limit, not even the default).

    The middleware applies it per client in place of its default ``rate_limit``. Each
    request takes ``cost`` tokens from every quota: a whole number, or ``cost(scope)``.
    """
    limits = None if spec is None else parse_limits("limit", spec)
    if limits is not None and not callable(cost):
        check_cost(cost, limits)  # now, not at the first request

    def mark(endpoint: F) -> F:
        setattr(endpoint, LIMIT_ATTRIBUTE, limits)
        setattr(endpoint, COST_ATTRIBUTE, cost)
        return endpoint

    return mark


class RateLimited(RateLimitExceededError):
    """A dependency limit refused the request; carries what the 429 response needs."""

    def __init__(self, group: LimitGroup, states: Sequence[PolicyState], retry_after: float):
        super().__init__("Rate limit exceeded", retry_after=retry_after)
        self.group = group
        self.states = tuple(states)


class RateLimit:
    """A FastAPI dependency: ``Depends(RateLimit("5/minute"))`` limits that route per client.

    ``key(request)`` (sync or ``async def``; it may read what authentication or an earlier
    dependency left in ``request.scope``) picks the bucket and wins over the middleware's key
    for this route; without it, or when it answers None, the key is the one
    ``ResilienceMiddleware`` computed for the request (so trusted proxies apply), else the
    peer address.

    With ``store=`` (a store or a URL such as ``"redis://..."``) the quotas live in that store,
    shared by every worker and machine using the same ``name`` (required then: it is the key
    the quotas are shared under), and the dependency awaits the store without blocking the
    event loop; each store call answers within the store's timeout, after which ``degraded``
    decides (``"local"``, ``"allow"`` or ``"deny"``).
    """

    def __init__(
        self,
        spec: LimitSpec,
        *,
        key: Callable[[Request], Hashable | Awaitable[Hashable | None] | None] | None = None,
        name: str | None = None,
        cost: Cost = 1,
        max_keys: int = 10_000,
        clock: Clock | None = None,
        store: Store | str | None = None,
        degraded: str | None = None,
    ) -> None:
        limits = parse_limits("spec", spec)
        self.group = _group(limits, name, cost, max_keys, clock, store, degraded)
        if key is not None and not callable(key):
            raise TypeError(f"key must be a callable key(request), got {key!r}")
        self._key: Any = key
        self._key_is_async = key is not None and is_async_callable(key)
        self._default_key = ClientKey()
        register_gate(self)

    def reset(self) -> None:
        """Forget every client's spent quota (``seawall.testing.reset_gates()`` calls it)."""
        for bucket in self.group.buckets:
            bucket.reset()

    async def __call__(self, request: Request) -> None:
        if OFF:  # seawall.testing.disable_gates()
            return
        key = None
        if self._key is not None:
            key = self._key(request)
            if self._key_is_async:
                key = await key
        if key is None:
            key = request.scope.get(CLIENT_KEY)
        if key is None:
            key = self._default_key(request.scope)
        group = self.group
        cost = group.cost or group.weight(request.scope)
        if group.shared:
            granted, states = await group.ahit(key, cost)
        else:
            granted, states = group.hit(key, cost)
        if not granted:
            raise RateLimited(self.group, states, max(s.retry_after for s in states))


def _group(
    limits: Sequence[Any],
    name: str | None,
    cost: Cost,
    max_keys: int,
    clock: Clock | None,
    store: Store | str | None,
    degraded: str | None,
) -> LimitGroup:
    """The dependency's quotas: in this process, or in ``store`` under ``name``."""
    if store is None and degraded is None:
        return LimitGroup(name or "endpoint", limits, max_keys=max_keys, clock=clock, cost=cost)
    found, mode = store_for_policy(store, degraded, name, "RateLimit dependency")
    label = name or "endpoint"
    return LimitGroup(
        label,
        limits,
        max_keys=max_keys,
        clock=clock,
        store=found,
        degraded=mode,
        store_name=None if found is None else f"depends:{label}",
        cost=cost,
    )


def rejection_for(exc: RateLimited, style: str | None, wall_now: float) -> Any:
    """The 429 :class:`Rejection` for a dependency's refusal."""
    headers = ratelimit_fields(style, exc.group.policy_field, exc.states, wall_now) if style else []
    refused = [s.name for s in exc.states if s.retry_after > 0]
    return rate_limited(headers, exc.retry_after, refused)


async def rate_limit_exceeded_handler(request: Request, exc: Exception) -> Response:
    """A Starlette exception handler for :class:`RateLimited`, for apps without the middleware."""
    assert isinstance(exc, RateLimited)
    rejection = rejection_for(exc, "ietf", 0.0)
    return Response(
        rejection.body(),
        status_code=rejection.status,
        headers={k.decode(): v.decode() for k, v in rejection.headers},
        media_type="application/problem+json",
    )
