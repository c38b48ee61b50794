"""Find the route Starlette will dispatch a request to, the way Starlette's router does.

Starlette's router asks each route in order whether it ``matches(scope)``: the first full
match wins; failing that, the first partial match (right path, wrong method) is used, which
becomes a 405. A ``Mount`` (or ``Host``) that matches fully owns the request: its own routes
are searched the same way, and if none matches the mount answers 404; the outer router never
backtracks. :class:`RouteIndex` follows exactly these steps with the routes' own ``matches``
methods, so path converters, mounts, hosts and methods behave as in Starlette.

It only skips the routes that cannot match. A route's path template starts with fixed
segments (``/api/v1/items/{id}`` has ``api``, ``v1``, ``items``); it can only match a path
that starts with the same segments. The index files each route under its fixed segments in a
tree, and a request walks the tree along its own path's segments: the routes met on the way
are the only candidates, asked in router order. So the cost of finding a route depends on how
many routes share the request's leading segments, not on how many routes the app has.
A route whose matching the index cannot read (``Host``, a custom ``BaseRoute``, a route with
a parameter in its first segment) is a candidate for every path, which keeps it exact.
The routers FastAPI's ``include_router`` keeps whole are opened in place first (``_included``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The function Starlette's routes match against (root_path removed), so the index reads the
# very path they will: private to Starlette, present in every version seawall supports.
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute

from ._included import effective_matcher, expand, matcher_of
from ._types import Scope

__all__ = ["ResolvedRoute", "RouteIndex", "endpoint_of"]

Candidate = tuple[int, BaseRoute]  # (position in its router, route): sorts by position only


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
    path = getattr(route, "path", None)  # a Host has none (a FastAPI RouteContext says None)
    return path if isinstance(path, str) else ""


def _path_matchers() -> frozenset[Callable[..., Any]]:
    """The ``matches`` methods that match on the route path's template and nothing else."""
    known: set[Callable[..., Any]] = {Route.matches, WebSocketRoute.matches, Mount.matches}
    # FastAPI's routes differ from Starlette's only for the route FastAPI's own router is
    # dispatching (a context it puts in the scope), never before routing, where seawall asks.
    # Read from sys.modules: seawall never imports FastAPI.
    fastapi = sys.modules.get("fastapi.routing")
    for name in ("APIRoute", "APIWebSocketRoute"):
        matches = getattr(getattr(fastapi, name, None), "matches", None)
        if matches is not None:
            known.add(matches)
    # An APIRoute of an included router matches on its prefixed path and methods (_included).
    included = effective_matcher()
    if included is not None:
        known.add(included)
    return frozenset(known)


def fixed_segments(route: BaseRoute, known: frozenset[Callable[..., Any]]) -> list[str]:
    """The path segments every path this route matches starts with ([]: any path)."""
    if matcher_of(route) not in known:
        return []
    template = _prefix(route)  # a Mount's prefix: what follows it is never fixed
    literal = template.split("{", 1)[0]
    if not literal.startswith("/"):
        return []
    segments = literal[1:].split("/")
    if "{" in template:
        segments.pop()  # the segment the first parameter sits in is not fixed
    return segments


class _Node:
    __slots__ = ("children", "routes")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.routes: list[Candidate] = []


class RouteIndex:
    """One router's routes, filed by their fixed leading segments (see the module docs)."""

    __slots__ = ("_all", "_mounts", "_root", "path_only")

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        routes = expand(routes)
        known = _path_matchers()
        #: Whether every route, mounts' included, matches on the method, path and root_path
        #: alone (no Host, no custom matches()): then a resolution may be cached by those.
        self.path_only = _path_only(routes, known)
        self._all: list[Candidate] = list(enumerate(routes))
        self._root = _Node()
        for candidate in self._all:
            node = self._root
            for segment in fixed_segments(candidate[1], known):
                node = node.children.setdefault(segment, _Node())
            node.routes.append(candidate)
        self._mounts: dict[int, RouteIndex] = {}  # by position, built on first use

    def candidates(self, route_path: str) -> list[Candidate]:
        """The routes that may match ``route_path``, in router order."""
        if not route_path.startswith("/"):
            return self._all
        node = self._root
        found = node.routes
        copied = False
        segments = route_path[1:].split("/")
        last = len(segments) - 1
        for depth, segment in enumerate(segments):
            if depth == last and segment.endswith("\n"):
                # A path regex's '$' also matches before a final newline, so '/login\n'
                # is Starlette's '/login': that route is a candidate too.
                stripped = node.children.get(segment[:-1])
                if stripped is not None and stripped.routes:
                    found, copied = [*found, *stripped.routes], True
            child = node.children.get(segment)
            if child is None:
                break
            if child.routes:
                found, copied = [*found, *child.routes], True
            node = child
        if copied:
            found.sort(key=_position)
        return found

    def resolve(self, scope: Scope, prefix: str = "") -> ResolvedRoute | None:
        """The route Starlette's router would pick for ``scope``, or None (a 404)."""
        partial: tuple[Candidate, Mapping[str, Any]] | None = None
        for candidate in self.candidates(get_route_path(scope)):
            match, child_scope = candidate[1].matches(scope)
            if match is Match.FULL:
                return self._descend(candidate, scope, child_scope, prefix)
            if match is Match.PARTIAL and partial is None:
                partial = (candidate, child_scope)
        if partial is not None:
            return self._descend(partial[0], scope, partial[1], prefix)
        return None

    def _descend(
        self, candidate: Candidate, scope: Scope, child_scope: Mapping[str, Any], prefix: str
    ) -> ResolvedRoute | None:
        position, route = candidate
        index = self._mount(position)
        if index is None:
            return ResolvedRoute(route, prefix + _prefix(route))
        return index.resolve({**scope, **child_scope}, prefix + _prefix(route))

    def _mount(self, position: int) -> RouteIndex | None:
        index = self._mounts.get(position)
        if index is None:
            children = _children(self._all[position][1])
            if children is None:
                return None
            index = self._mounts[position] = RouteIndex(children)
        return index

    def leaves(self, prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
        """Every leaf route with its full path template, depth first, in router order.

        These are the very objects :meth:`resolve` returns (FastAPI's included routes are
        opened once per index), so a table keyed by them finds what ``resolve`` finds.
        """
        for position, route in self._all:
            index = self._mount(position)
            if index is None:
                yield prefix + _prefix(route), route
            else:
                yield from index.leaves(prefix + _prefix(route))


def _path_only(routes: Sequence[BaseRoute], known: frozenset[Callable[..., Any]]) -> bool:
    for route in routes:
        if matcher_of(route) not in known:
            return False
        children = _children(route)
        if children is not None and not _path_only(expand(children), known):
            return False
    return True


def _position(candidate: Candidate) -> int:
    return candidate[0]


def endpoint_of(route: BaseRoute) -> Callable[..., Any] | None:
    """The endpoint callable a route dispatches to (None for routes that have none)."""
    endpoint = getattr(route, "endpoint", None)
    return endpoint if callable(endpoint) else None
