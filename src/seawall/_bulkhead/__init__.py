"""The bulkhead family: the policy object and its store-backed variant.

Importing the package registers :class:`~.shared.SharedBulkhead` with
:class:`~.bulkhead.Bulkhead` (see ``seawall._store_variant``), so the variant is in place before
any bulkhead can be built; the policy module itself never imports its variant.
"""

from . import shared as _shared  # noqa: F401  # registers the store-backed variant
