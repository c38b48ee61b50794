"""The circuit breaker family: the policy object and its store-backed variant.

Importing the package registers :class:`~.shared.SharedCircuitBreaker` with
:class:`~.breaker.CircuitBreaker` (see ``seawall._store_variant``), so the variant is in place
before any breaker can be built; the policy module itself never imports its variant.
"""

from . import shared as _shared  # noqa: F401  # registers the store-backed variant
