"""The rate limiter family: plain and keyed limiters, their driver, and store-backed variants.

Importing the package registers the store-backed variants (``shared``) with
:class:`~.limiter.RateLimiter` and :class:`~.keyed.KeyedRateLimiter` (see
``seawall._store_variant``), so they are in place before any limiter can be built; the policy
modules themselves never import their variants.
"""

from . import shared as _shared  # noqa: F401  # registers the store-backed variants
