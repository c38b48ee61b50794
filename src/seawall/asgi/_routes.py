"""Find the route Starlette will dispatch a request to, the way Starlette's router does.

Starlette's router asks each route in order whether it ``matches(scope)``: the first full
match wins; failing that, the first partial match (right path, wrong method) is used, which
becomes a 405. A ``Mount`` (or ``Host``) that matches fully owns the request: its own routes
are searched the same way, and if none matches the mount answers 404; the outer router never
backtracks. :func:`resolve_route` follows exactly these steps with the routes' own
``matches`` methods, so path converters, mounts, hosts and methods behave as in Starlette.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute, Match

from ._types import Scope

__all__ = ["ResolvedRoute", "endpoint_of", "iter_routes", "resolve_route"]


@dataclass(frozen=True, slots=True)
class ResolvedRoute:
    """The leaf route a request goes to, and its full path template (mount prefixes included)."""

    route: BaseRoute
    template: str


def _children(route: BaseRoute) -> Sequence[BaseRoute] | None:
    # A Mount of a plain ASGI app (StaticFiles...) has no routes: the mount is the leaf.
    routes = getattr(route, "routes", None)
    return routes if isinstance(routes, Sequence) and routes else None


def _prefix(route: BaseRoute) -> str:
    return str(getattr(route, "path", ""))


def resolve_route(
    routes: Sequence[BaseRoute], scope: Scope, prefix: str = ""
) -> ResolvedRoute | None:
    """The route Starlette's router would pick for ``scope``, or None (a 404)."""
    partial: tuple[BaseRoute, Mapping[str, Any]] | None = None
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.FULL:
            return _descend(route, scope, child_scope, prefix)
        if match is Match.PARTIAL and partial is None:
            partial = (route, child_scope)
    if partial is not None:
        return _descend(partial[0], scope, partial[1], prefix)
    return None


def _descend(
    route: BaseRoute, scope: Scope, child_scope: Mapping[str, Any], prefix: str
) -> ResolvedRoute | None:
    children = _children(route)
    if children is None:
        return ResolvedRoute(route, prefix + _prefix(route))
    return resolve_route(children, {**scope, **child_scope}, prefix + _prefix(route))


def iter_routes(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """Every leaf route with its full path template, depth first, in router order."""
    for route in routes:
        children = _children(route)
        if children is None:
            yield prefix + _prefix(route), route
        else:
            yield from iter_routes(children, prefix + _prefix(route))


def endpoint_of(route: BaseRoute) -> Callable[..., Any] | None:
    """The endpoint callable a route dispatches to (None for routes that have none)."""
    endpoint = getattr(route, "endpoint", None)
    return endpoint if callable(endpoint) else None
