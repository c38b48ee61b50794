"""How a policy with a store-backed variant is built: ``Policy(..., store=...)`` gives the variant.

The breaker, the limiters and the bulkhead can keep their state in a store. Each derives from
:class:`StoreBacked`; its store-backed variant is a subclass declared with
``variant_of=Policy``, which registers it with the policy. The policy never imports its
variant: the family's package imports both, so the variant is registered before any policy of
the family can be built. ``Policy(...)`` builds the variant when the arguments name a shared
store and the plain in-memory object otherwise, so the in-memory hot path carries no branch
for stores.

``__new__`` lives here, on the base, and takes ``*args, **kwargs``; each policy defines its own
``__init__``, so ``inspect.signature``, ``help()`` and IDEs show that ``__init__``'s parameters
(the most derived of the two wins), not ``*args, **kwargs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self

from .stores._open import policy_store

if TYPE_CHECKING:
    from .stores._base import BreakerSpec, BulkheadSpec, LimiterSpec, Store

__all__ = ["StoreBacked"]


class StoreBacked:
    """Base of the policies that a store can back; see the module docstring."""

    __slots__ = ()

    #: The registered store-backed variant, kept on the policy class that owns it.
    _store_variant: ClassVar[type[StoreBacked] | None] = None

    def __init_subclass__(cls, *, variant_of: type[StoreBacked] | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if variant_of is not None:
            if not issubclass(cls, variant_of) or "_store_variant" in variant_of.__dict__:
                raise TypeError(f"{cls.__name__} cannot be the store variant of {variant_of}")
            variant_of._store_variant = cls

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        variant = cls._store_variant
        if variant is None or issubclass(cls, variant):  # nothing to choose, or the variant itself
            return object.__new__(cls)
        if policy_store(kwargs.get("store"), kwargs.get("name")) is None:
            return object.__new__(cls)
        if "_store_variant" not in cls.__dict__:
            # The variant is built from the policy, not from a user's subclass of it: keeping
            # such an object in memory instead would silently drop the sharing it asked for.
            owner = next(c for c in cls.__mro__ if "_store_variant" in c.__dict__)
            raise TypeError(
                f"store=: {cls.__name__} subclasses {owner.__name__}, and only "
                f"{owner.__name__} itself can be kept in a store"
            )
        return object.__new__(variant)  # type: ignore[return-value]  # a subclass of cls

    @property
    def store(self) -> Store | None:
        """The store this policy's state is kept in; None when it lives in this process."""
        return None

    @property
    def store_spec(self) -> BreakerSpec | BulkheadSpec | LimiterSpec | None:
        """What the store knows this policy by (None in memory).

        For integrations that decide several policies in one store operation (the ASGI
        middleware's admission, see ``Store.admit_request``).
        """
        return None

    @property
    def degraded_decisions(self) -> int:
        """How many decisions were made without the store (always 0 in memory)."""
        return 0
