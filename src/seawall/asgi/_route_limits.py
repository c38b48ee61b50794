"""Which limit a request falls under: its route's own, or the app default.

Route limits come from ``@limit(...)`` on endpoints and from the middleware's
``route_limits={"/items/{item_id}": "5/minute", "POST /login": "3/minute"}`` (keys are full
path templates, mount prefixes included, optionally preceded by a method; they win over the
decorator). The table is built on the first request from the app's routes
(``scope["app"].routes``, as Starlette sets it), and the request's route is found with a
:class:`RouteIndex`, exactly as Starlette's router finds it but asking only the routes that
share the request's leading path segments, so the cost does not grow with the number of
routes; when every route matches on the path alone (no ``Host``, no custom ``matches``),
each (method, root_path, path) is resolved once and remembered (at most ``CACHE_SIZE``).
An app without route limits pays nothing for this: no route is matched per request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._clock import Clock
from .._log import logger
from ._dependency import COST_ATTRIBUTE, LIMIT_ATTRIBUTE
from ._limits import Limit, LimitGroup, LimitSpec, parse_limits
from ._routes import RouteIndex, endpoint_of
from ._shared import StoreOptions
from ._types import ASGIApp, Scope

__all__ = ["RouteLimits"]


_MISSING: Any = object()
_DEFAULT: Any = object()  # resolved to the app default (not cached as the default's value)
#: Resolutions remembered by (type, method, root_path, path); a full table is emptied.
CACHE_SIZE = 1024
CacheKey = tuple[str, str | None, str, str]
#: (id of the route, its full template, method or None for every method): one route object
#: mounted under two prefixes is two routes with two limits.
Entry = tuple[int, str, str | None]


def _split(template: str) -> tuple[str | None, str]:
    method, _, path = template.strip().rpartition(" ")
    if not path.startswith("/"):
        raise ValueError(f"route_limits keys are '/path' or 'METHOD /path', got {template!r}")
    return (method.strip().upper() or None), path


class RouteLimits:
    """The per-route limit table and its lookup."""

    __slots__ = ("_cache", "_clock", "_index", "_max_keys", "_shared", "_specs", "_table")

    def __init__(
        self,
        specs: Mapping[str, LimitSpec | None],
        *,
        max_keys: int,
        clock: Clock | None,
        shared: StoreOptions | None = None,
    ) -> None:
        self._shared = shared
        self._specs: dict[tuple[str | None, str], tuple[Limit, ...] | None] = {}
        for template, spec in specs.items():
            limits = None if spec is None else parse_limits(f"route_limits[{template!r}]", spec)
            self._specs[_split(template)] = limits
        self._max_keys = max_keys
        self._clock = clock
        self._table: dict[Entry, LimitGroup | None] | None = None
        self._index = RouteIndex(())
        self._cache: dict[CacheKey, LimitGroup | None] | None = None

    def lookup(self, scope: Scope, app: ASGIApp, default: LimitGroup | None) -> LimitGroup | None:
        """The limit group for this request (None: unlimited)."""
        table = self._table
        if table is None:
            table = self._build(scope, app)
        if not table:
            return default
        cache = self._cache
        if cache is None:
            group = self._resolve(scope, table)
        else:
            where = (scope["type"], scope.get("method"), scope.get("root_path", ""), scope["path"])
            group = cache.get(where, _MISSING)
            if group is _MISSING:
                group = self._resolve(scope, table)
                if len(cache) >= CACHE_SIZE:
                    cache.clear()  # a flood of distinct paths costs a walk each, nothing more
                cache[where] = group
        return default if group is _DEFAULT else group

    def _resolve(self, scope: Scope, table: dict[Entry, LimitGroup | None]) -> Any:
        resolved = self._index.resolve(scope)
        if resolved is None:
            return _DEFAULT
        route_id, template = id(resolved.route), resolved.template
        group = table.get((route_id, template, scope.get("method")), _MISSING)
        if group is _MISSING:
            group = table.get((route_id, template, None), _DEFAULT)
        return group

    def groups(self) -> list[LimitGroup]:
        """The route limit groups built so far (none before the first request)."""
        return [group for group in (self._table or {}).values() if group is not None]

    def _group(
        self, limits: tuple[Limit, ...] | None, where: str, cost: Any = 1
    ) -> LimitGroup | None:
        if limits is None:
            return None
        shared = {} if self._shared is None else self._shared.for_policy(f"route:{where}")
        return LimitGroup(
            "route", limits, max_keys=self._max_keys, clock=self._clock, cost=cost, **shared
        )

    def _build(self, scope: Scope, app: ASGIApp) -> dict[Entry, LimitGroup | None]:
        owner = scope.get("app") or app
        routes = getattr(owner, "routes", None)
        table: dict[Entry, LimitGroup | None] = {}
        if not isinstance(routes, Sequence):
            self._table = table
            if self._specs:
                logger.warning("seawall: route_limits ignored: the app exposes no routes")
            return table
        # Raises ConfigError for routes it cannot read; the table stays unbuilt, so every
        # request fails the same way rather than running without its route's limit.
        index = RouteIndex(routes)
        leaves = list(index.leaves())
        unused = set(self._specs)
        for template, route in leaves:
            endpoint = endpoint_of(route)
            if endpoint is not None and hasattr(endpoint, LIMIT_ATTRIBUTE):
                limits = getattr(endpoint, LIMIT_ATTRIBUTE)
                cost = getattr(endpoint, COST_ATTRIBUTE, 1)  # @limit(..., cost=)
                table[(id(route), template, None)] = self._group(limits, template, cost)
            for method, path in self._specs:
                if path == template:
                    where = f"{method} {template}" if method else template
                    spec = self._specs[(method, path)]
                    table[(id(route), template, method)] = self._group(spec, where)
                    unused.discard((method, path))
        self._index = index
        # Requests repeat their paths: when the routes match on the path alone, remember
        # each path's answer, so a hit costs one dict lookup.
        self._cache = {} if index.path_only else None
        self._table = table
        for method, path in sorted(unused, key=str):
            logger.warning(
                "seawall: route_limits key %r matches no route", f"{method or ''} {path}"
            )
        return table
