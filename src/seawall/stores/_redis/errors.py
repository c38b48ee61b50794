"""How the Redis store reports a failure: refused credentials are loud, outages are quiet.

A server that answers but refuses us (wrong password, a password required and none given,
an unknown or disabled ACL user, a user without the commands seawall runs) will refuse every
call until someone fixes the configuration, so it raises :class:`StoreError` and the policy
does not fall back to degraded mode. Anything else (refused connection, timeout, a server
that is loading or failing over) is :class:`StoreUnavailableError`: degraded mode decides
until Redis answers again.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    NoPermissionError,
    RedisClusterException,
    RedisError,
    ResponseError,
)

from ..._errors import StoreError
from .._base import StoreUnavailableError

__all__ = ["FAILURES", "refused", "store_failure"]

#: What a Redis call can raise when it fails; :func:`store_failure` sorts them.
FAILURES = (RedisError, RedisClusterException, OSError)

_LOGIN = (AuthenticationError, AuthenticationWrongNumberOfArgsError)


def store_failure(exc: BaseException, where: str, doing: str = "") -> StoreError:
    """The error to raise for ``exc``, from the store at ``where`` (a redacted URL).

    ``doing`` names the operation (e.g. ``"limiter_reserve"``) for the outage message.
    """
    cause = _refusal(exc)
    if cause is not None:
        return refused(cause, where, permission=isinstance(cause, NoPermissionError))
    what = f"{doing} failed: " if doing else ""
    return StoreUnavailableError(f"Redis store {where}: {what}{exc}")


def refused(cause: object, where: str, *, permission: bool) -> StoreError:
    """The :class:`StoreError` for a server that refused us: ``permission`` (NOPERM) or login.

    ``cause`` is what the server said (an exception, or its reply as text).

    Shared by both async clients (``aio_glide`` reads the same refusals from glide's messages).
    """
    if permission:
        return StoreError(
            f"Redis store {where}: the Redis user may not run what seawall needs ({cause}); "
            "see 'Access control' in docs/redis-store.md"
        )
    if not _gives_password(where):
        return StoreError(
            f"Redis store {where} requires a password and the store URL gives none ({cause}); "
            "put it in the URL: redis://:PASSWORD@host:port/db"
        )
    return StoreError(
        f"Redis store {where} refused our credentials ({cause}); check the user name and "
        "password of the store URL (the password is not shown here)"
    )


def _gives_password(where: str) -> bool:
    # ``where`` is redacted: a password given in the URL reads "***" there.
    parts = urlsplit(where)
    return parts.password is not None or "password=" in parts.query.lower()


def _refusal(exc: BaseException) -> BaseException | None:
    # A cluster client wraps what the node said in its own error: look down the chain.
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, (*_LOGIN, NoPermissionError)) or _unauthenticated(seen):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _unauthenticated(exc: BaseException) -> bool:
    # With older redis-py releases (seen with 5.x) a connection's first command is the script,
    # and Redis refuses a long command from a client that has not authenticated with this
    # protocol error (closing the connection) instead of NOAUTH; redis-py 8 sends HELLO first
    # and gets NOAUTH, which is an AuthenticationError.
    return isinstance(exc, ResponseError) and str(exc).startswith("Protocol error: unauthenticated")
