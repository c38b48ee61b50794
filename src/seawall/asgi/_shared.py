"""How the middleware names and configures the policies it keeps in a store."""

from __future__ import annotations

from typing import Any

from ..stores._base import Store
from ..stores._open import store_for_policy

__all__ = ["StoreOptions"]


class StoreOptions:
    """The middleware's ``store=``, ``degraded=`` and ``store_prefix=``, validated once.

    Every policy the middleware builds in a store is named ``<prefix>:<what>``: e.g.
    ``asgi:default``, ``asgi:route:GET /items/{id}``, ``asgi:bulkhead``. Two apps sharing a
    store keep apart by giving different prefixes.
    """

    __slots__ = ("degraded", "prefix", "store")

    def __init__(self, store: Store | str | None, degraded: str | None, prefix: str) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"store_prefix must be a non-empty str, got {prefix!r}")
        self.prefix = prefix
        # No store= means the configured store.url (seawall.config), memory by default.
        self.store, self.degraded = store_for_policy(store, degraded, prefix, "middleware")

    def name(self, what: str) -> str:
        """The store name of the policy that does ``what``."""
        return f"{self.prefix}:{what}"

    def options(self) -> dict[str, Any]:
        """Keyword arguments that put a policy in the store (none without a store)."""
        if self.store is None:
            return {}
        return {"store": self.store, "degraded": self.degraded}

    def for_policy(self, what: str) -> dict[str, Any]:
        """``store``, ``degraded`` and ``store_name`` for a :class:`LimitGroup`."""
        if self.store is None:
            return {}
        return {**self.options(), "store_name": self.name(what)}
