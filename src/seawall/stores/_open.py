"""Choosing a store by URL, and sharing one store object per URL within a process."""

from __future__ import annotations

import threading
from urllib.parse import unquote, urlsplit

from .._clock import Clock
from .._redact import redact_url
from ._base import Store
from ._memory import MemoryStore

__all__ = ["open_store", "reopen_url", "resolve_store"]

_REDIS_SCHEMES = ("redis", "rediss", "redis+cluster", "rediss+cluster")
_SCHEMES = ("memory", "file", *_REDIS_SCHEMES)


def open_store(url: str, *, timeout: float = 0.1, clock: Clock | None = None) -> Store:
    """A new store for ``url``: ``memory://``, ``file:///abs/dir``, ``redis://host:port/db``
    (also ``rediss://`` for TLS and ``redis+cluster://`` for Redis Cluster).

    Nothing is opened yet: the store connects (or creates its directory) on first use.
    """
    if not isinstance(url, str):
        raise TypeError(f"store URL must be a string, got {type(url).__name__}")
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in _SCHEMES:
        raise ValueError(
            f"unsupported store URL {redact_url(url)!r}: expected one of "
            + ", ".join(f"{s}://" for s in _SCHEMES)
        )
    if scheme == "memory":
        return MemoryStore(clock=clock)
    if scheme == "file":
        from ._file.store import FileStore

        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(
                f"file store URL {redact_url(url)!r} must name an absolute local directory, "
                "like file:///var/lib/myapp/seawall"
            )
        return FileStore(unquote(parts.path), timeout=timeout, clock=clock)
    from ._redis.store import RedisStore

    return RedisStore(url, timeout=timeout, clock=clock)


def reopen_url(store: Store) -> str:
    """The URL that opens ``store`` again in another process, password included.

    ``store.url`` shows the password as ``***``; this is for handing the store to a child
    process, never for showing.
    """
    given = getattr(store, "_given_url", None)
    return given if isinstance(given, str) else store.url


_shared: dict[str, Store] = {}
_shared_lock = threading.Lock()


def resolve_store(store: Store | str | None) -> Store | None:
    """The store a policy's ``store=`` argument names; None for the in-process default.

    A URL string opens one store per distinct URL per process (so every policy naming the same
    URL shares its connections); ``memory://`` and None mean the policy keeps its own state.
    """
    if store is None or isinstance(store, Store):
        return store
    if not isinstance(store, str):
        raise TypeError(f"store must be a Store or a URL string, got {type(store).__name__}")
    if store.lower() == "memory://":
        return None
    with _shared_lock:
        found = _shared.get(store)
        if found is None:
            from ..config import current

            found = _shared[store] = open_store(store, timeout=current().store.timeout)
        return found


def policy_store(store: Store | str | None, name: object) -> Store | None:
    """The store a policy named ``name`` keeps its state in; None for its own memory.

    With no ``store=`` a *named* policy uses the configured ``store.url`` (see
    :mod:`seawall.config`); an unnamed one always keeps its state in memory.
    """
    if store is None:
        if name is None:
            return None
        from ..config import current

        store = current().store.url
    return resolve_store(store)


def store_for_policy(
    store: Store | str | None, degraded: object, name: str | None, kind: str
) -> tuple[Store | None, str]:
    """Validate a policy's ``store=``/``degraded=``/``name=``: the shared store and the mode.

    ``degraded=None`` means the configured ``store.degraded`` (``"local"`` by default).
    """
    from ..config import current
    from ._degraded import check_degraded

    mode = check_degraded(current().store.degraded if degraded is None else degraded)
    if store is not None and name is None and resolve_store(store) is not None:
        raise ValueError(
            f"a {kind} kept in a store needs name= (the key its state is shared under); "
            f"got store={_shown(store)!r} and name=None"
        )
    return policy_store(store, name), mode


def _shown(store: Store | str) -> str:
    return redact_url(store) if isinstance(store, str) else store.url
