"""Readiness, liveness and drain endpoints served by the middleware itself.

* ``readiness_path`` (e.g. ``/readyz``): 200 while serving, 503 once draining (after a drain
  call, a chained SIGTERM, or lifespan shutdown), so a load balancer stops routing here.
* ``liveness_path`` (e.g. ``/livez``): 200 while the process answers at all.
* ``drain_path`` (e.g. ``/-/drain``): GET or POST turns readiness off; meant for a Kubernetes
  ``preStop`` hook. It changes state, so it answers only peers in ``drain_allow`` (loopback by
  default: ``exec`` a ``curl`` inside the container), everyone else gets 403.

Probe requests skip every limit and are not counted as in flight.
"""

from __future__ import annotations

import ipaddress
import json

from ._client import Network
from ._lifespan import SeawallLifespan
from ._types import Receive, Scope, Send

__all__ = ["Probes"]


class Probes:
    """The probe endpoints of one middleware."""

    __slots__ = ("_allow", "_drain", "_lifespan", "_live", "_ready", "paths")

    def __init__(
        self,
        lifespan: SeawallLifespan | None,
        *,
        readiness_path: str | None,
        liveness_path: str | None,
        drain_path: str | None,
        drain_allow: tuple[Network, ...],
    ) -> None:
        if drain_path is not None and lifespan is None:
            raise ValueError("drain_path needs a lifespan hook (lifespan=seawall_lifespan(...))")
        for name, path in (
            ("readiness_path", readiness_path),
            ("liveness_path", liveness_path),
            ("drain_path", drain_path),
        ):
            if path is not None and not (isinstance(path, str) and path.startswith("/")):
                raise ValueError(f"{name} must be a path starting with '/', got {path!r}")
        self._lifespan = lifespan
        self._ready, self._live, self._drain = readiness_path, liveness_path, drain_path
        self._allow = drain_allow
        self.paths = frozenset(p for p in (readiness_path, liveness_path, drain_path) if p)

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Respond to a request for one of :attr:`paths`."""
        path = scope["path"]
        if path == self._live:
            await _json(send, 200, {"status": "alive"})
        elif path == self._ready:
            ready = self._lifespan is None or self._lifespan.ready
            await _json(send, 200 if ready else 503, {"status": "ready" if ready else "draining"})
        elif scope["method"] not in ("GET", "POST"):
            await _json(send, 405, {"status": "method not allowed"}, [(b"allow", b"GET, POST")])
        elif not self._allowed(scope):
            await _json(send, 403, {"status": "forbidden"})
        else:
            assert self._lifespan is not None
            self._lifespan.begin_drain()
            await _json(send, 200, {"status": "draining", "in_flight": self._lifespan.in_flight})

    def _allowed(self, scope: Scope) -> bool:
        client = scope.get("client")
        if not client:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        return any(address in network for network in self._allow)


async def _json(
    send: Send, status: int, doc: dict[str, object], extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(doc, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
