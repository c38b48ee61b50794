"""Report-only mode: every gate decides, nothing is refused (to roll a new limit out safely).

``ResilienceMiddleware(report_only=True)`` (every gate) or ``report_only={"rate_limit"}``
(only those named: ``"rate_limit"``, ``"bulkhead"``, ``"breaker"``) runs each gate as usual,
and where one would refuse, lets the request through instead. Each such decision is:

* counted: ``middleware.report_only_counts`` maps the refusal's reason (``"rate_limited"``,
  ``"overloaded"``, ``"circuit_open"``) to how many requests it would have refused;
* logged on the ``seawall`` logger (INFO, method, path and reason; never the query string);
* emitted: the policy that decided emits its usual :class:`~seawall.events.Rejected` event,
  so the metrics exporters count it exactly as an enforced refusal;
* shown in headers: the response carries the RateLimit fields as usual (``r=0`` when the
  quota is spent) and ``Seawall-Report-Only: <reasons>``.

A websocket handshake over ``websocket_limit`` is covered by ``"rate_limit"``: counted,
logged and emitted, then handed to the app (a handshake has no response to show headers on).

A bulkhead that would shed the request lets it in without a slot (so it holds none to give
back); a breaker that is open lets it in without a permit (its outcome is not recorded).

Only a middleware given ``report_only`` takes this path: it replaces the middleware's gate
sequence for that instance, so an enforcing middleware's request path carries no test of it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import anyio

from .._errors import CircuitOpenError
from .._gates import OFF
from .._log import logger
from ._dependency import CLIENT_KEY
from ._responses import Header, Rejection, unavailable
from ._types import Receive, Scope, Send

__all__ = ["GATES", "ReportOnly", "report_only_gates"]

#: The gates report-only mode can cover, by the name ``report_only=`` takes.
GATES = ("rate_limit", "bulkhead", "breaker")
_HEADER = b"seawall-report-only"


def report_only_gates(value: bool | str | Iterable[str]) -> frozenset[str]:
    """Read ``report_only=``: True (every gate), False (none), or gate names."""
    if value is True:
        return frozenset(GATES)
    if value is False or value is None:
        return frozenset()
    names = frozenset([value] if isinstance(value, str) else value)
    unknown = sorted(str(n) for n in names - frozenset(GATES))
    if unknown:
        raise ValueError(f"report_only: unknown gates {unknown}; expected a bool or {GATES}")
    return names


class ReportOnly:
    """The gate sequence of one middleware, deciding without refusing where configured."""

    __slots__ = ("_counts", "_gates", "_lock", "_mw")

    def __init__(self, middleware: Any, gates: frozenset[str]) -> None:
        # The ResilienceMiddleware it serves; not annotated as one, since importing its
        # module here would close an import cycle.
        self._mw = middleware
        self._gates = gates
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()  # a middleware may serve several threads' loops

    def counts(self) -> dict[str, int]:
        """How many requests each reason would have refused (a snapshot)."""
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        """Forget the counts."""
        with self._lock:
            self._counts.clear()

    def covers(self, gate: str) -> bool:
        """Whether ``gate`` (a name of :data:`GATES`) only reports."""
        return gate in self._gates

    def note(self, scope: Scope, rejection: Rejection) -> None:
        """Count and log a refusal let through outside the HTTP path (a websocket handshake)."""
        self._note(scope, rejection, [])

    def _note(self, scope: Scope, rejection: Rejection, noted: list[str]) -> None:
        reason = rejection.reason
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1
        noted.append(reason)
        logger.info(
            "seawall: report-only: would refuse %s %r with %d (%s)",
            scope.get("method") or scope["type"].upper(),
            scope.get("path", "-"),
            rejection.status,
            reason,
        )

    async def guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The middleware's gates for one request, refusing only where not report-only."""
        mw = self._mw
        if OFF or (mw._exempt is not None and mw._exempt(scope)):
            await mw.app(scope, receive, send)
            return
        extra: list[Header] = []
        noted: list[str] = []
        rejection = await self._limits(scope, extra)
        if rejection is not None:
            if "rate_limit" not in self._gates:
                await mw._reject(scope, receive, send, rejection)
                return
            self._note(scope, rejection, noted)
        bulkhead, held = mw.bulkhead, False
        if bulkhead is not None:
            rejection = await mw._take_slot(bulkhead)
            held = rejection is None
            if rejection is not None:
                if "bulkhead" not in self._gates:
                    await mw._reject(scope, receive, send, rejection)
                    return
                self._note(scope, rejection, noted)
        try:
            await self._breaker_and_app(scope, receive, send, extra, noted)
        finally:
            if held and bulkhead is not None:
                with anyio.CancelScope(shield=True):
                    await bulkhead.arelease()

    async def _limits(self, scope: Scope, extra: list[Header]) -> Rejection | None:
        mw = self._mw
        group = mw.route_limits.lookup(scope, mw.app, mw.default_limits)
        sync_key = mw._sync_key
        key = scope[CLIENT_KEY] = (
            sync_key(scope) if sync_key is not None else await mw._key.akey(scope)
        )
        if group is None:
            return None
        cost = group.cost or group.weight(scope)
        granted, states = await group.ahit(key, cost) if group.shared else group.hit(key, cost)
        rejection: Rejection | None = mw._verdict(group, granted, states, extra)
        return rejection

    async def _breaker_and_app(
        self, scope: Scope, receive: Receive, send: Send, extra: list[Header], noted: list[str]
    ) -> None:
        mw = self._mw
        permit = None
        if mw.breaker is not None:
            try:
                permit = await mw.breaker.aadmit()
            except CircuitOpenError as exc:
                rejection = unavailable(
                    "circuit_open", exc.retry_after, "The service is temporarily unavailable."
                )
                if "breaker" not in self._gates:
                    await mw._reject(scope, receive, send, rejection)
                    return
                self._note(scope, rejection, noted)
        if noted:
            extra.append((_HEADER, ", ".join(noted).encode("ascii")))
        await mw._call_app(scope, receive, send, extra, permit)
