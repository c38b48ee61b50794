"""Open the routers FastAPI's ``include_router`` keeps whole, so their routes can be indexed.

Up to FastAPI 0.12x, ``app.include_router(router, prefix="/api")`` copied each route into the
app with the prefix added: ``app.routes`` held plain ``APIRoute`` objects. Newer FastAPI keeps
the included router whole behind one route (``_IncludedRouter``) whose ``matches`` answers for
all its routes and puts no endpoint in the scope; its routes, prefixed, are listed by
``fastapi.routing.iter_route_contexts``, one ``RouteContext`` per route, in the order the
included router asks them. Asking that flat list in order picks the route FastAPI picks: an
included router matches fully when one of its routes does (the first one wins), partially when
one matches partially, and a route of a later router never beats an earlier full match.

Routes that seawall cannot open are never skipped quietly: a route limit hidden behind them
would not apply. :func:`expand` raises :class:`~seawall.ConfigError` naming the route.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from starlette.routing import BaseRoute, Host, Mount, Route, WebSocketRoute

from .._errors import ConfigError

__all__ = ["effective_matcher", "expand", "matcher_of"]

_STARLETTE = (Route, WebSocketRoute, Mount, Host)


def _fastapi(name: str) -> Any:
    # Read from sys.modules: seawall never imports FastAPI, and a FastAPI route exists only
    # once fastapi.routing is loaded.
    return getattr(sys.modules.get("fastapi.routing"), name, None)


def expand(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """``routes`` in router order, each included FastAPI router replaced by its routes."""
    found: list[BaseRoute] = []
    for route in routes:
        if hasattr(route, "original_router"):
            found.extend(_included(route))
        else:
            _check_readable(route)
            found.append(route)
    return found


def _included(route: BaseRoute) -> list[BaseRoute]:
    iter_route_contexts = _fastapi("iter_route_contexts")
    if iter_route_contexts is None:
        raise _unreadable(route, "this FastAPI lists no route contexts (iter_route_contexts)")
    contexts: list[BaseRoute] = list(iter_route_contexts([route]))
    api_route = _fastapi("APIRoute")
    for context in contexts:
        original = getattr(context, "original_route", None)
        if isinstance(original, api_route) and type(original).matches is not api_route.matches:
            # FastAPI asks the route's own matches() with a context only it can set.
            raise _unreadable(original, "its class overrides matches() inside include_router")
    return contexts


def _check_readable(route: BaseRoute) -> None:
    # A route of FastAPI's own that is neither a Starlette route nor a leaf with an endpoint
    # may hold routes seawall cannot see (as _IncludedRouter once did): refuse it.
    module = type(route).__module__
    if module.split(".", 1)[0] != "fastapi" or isinstance(route, _STARLETTE):
        return
    if callable(getattr(route, "endpoint", None)):
        return
    raise _unreadable(route, "an unknown FastAPI route type")


def _unreadable(route: object, why: str) -> ConfigError:
    name = getattr(route, "name", None) or getattr(route, "path", None) or repr(route)
    return ConfigError(
        f"seawall cannot read the route {name!r} ({type(route).__qualname__}: {why}), so "
        "route limits behind it (@limit, route_limits) cannot be applied; please report it"
    )


def matcher_of(route: BaseRoute) -> Callable[..., Any] | None:
    """The function that decides ``route.matches`` (a ``RouteContext`` forwards it)."""
    return getattr(getattr(route, "matches", None), "__func__", None)


def effective_matcher() -> Callable[..., Any] | None:
    """FastAPI's matcher of an included ``APIRoute``: its prefixed path and methods only."""
    context = _fastapi("_EffectiveRouteContext")
    return getattr(context, "matches", None)
