"""Where policy state lives: in the process (default), in files, or in Redis.

``open_store(url)`` picks a store by URL; every policy takes ``store=`` (a :class:`Store` or a
URL) and ``degraded=`` (what to decide while the store does not answer). See
``docs/stores.md``. The Redis store imports its client libraries only when it is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import (
    BreakerSpec,
    BreakerView,
    BulkheadSpec,
    Hold,
    LimiterSpec,
    PolicyStatus,
    Reservation,
    Store,
    StoreUnavailableError,
)
from ._degraded import DEGRADED_MODES
from ._memory import MemoryStore
from ._open import open_store

if TYPE_CHECKING:
    from ._file.store import FileStore
    from ._redis.store import RedisStore

__all__ = [
    "DEGRADED_MODES",
    "BreakerSpec",
    "BreakerView",
    "BulkheadSpec",
    "FileStore",
    "Hold",
    "LimiterSpec",
    "MemoryStore",
    "PolicyStatus",
    "RedisStore",
    "Reservation",
    "Store",
    "StoreUnavailableError",
    "open_store",
]


def __getattr__(name: str) -> Any:
    # FileStore and RedisStore load on first use: RedisStore pulls in the Redis clients.
    if name == "FileStore":
        from ._file.store import FileStore

        return FileStore
    if name == "RedisStore":
        from ._redis.store import RedisStore

        return RedisStore
    raise AttributeError(f"module 'seawall.stores' has no attribute {name!r}")
