"""What a rejected request receives, and the RateLimit fields every limited response carries.

Rejections are small ``application/problem+json`` documents (RFC 9457) that name the problem
and nothing internal. The rate-limit fields follow draft-ietf-httpapi-ratelimit-headers-11::

    RateLimit-Policy: "default";q=100;w=60
    RateLimit: "default";r=0;t=17

``r`` is the whole requests left, ``t`` the seconds until the bucket is full again, except for
a quota that refused the request, where ``t`` equals ``Retry-After`` (the draft asks that
``Retry-After`` never point earlier than the effective window). The legacy
``X-RateLimit-Limit/Remaining/Reset`` trio describes the quota closest to exhaustion, with
``Reset`` as Unix epoch seconds, as GitHub and slowapi send it. Every value is built from
numbers and fixed policy names, never from request data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from ._limits import PolicyState
from ._types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "HEADER_STYLES",
    "Rejection",
    "RejectHook",
    "delta_seconds",
    "ietf_fields",
    "ratelimit_fields",
    "send_rejection",
]

Header = tuple[bytes, bytes]
HEADER_STYLES = ("ietf", "legacy", "both")

_QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
_REDUCED_CAPACITY = "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity"


def delta_seconds(seconds: float) -> int:
    """``seconds`` as HTTP delta-seconds: a whole number, rounded up, at least 1."""
    return max(1, math.ceil(seconds))


@dataclass(frozen=True, slots=True)
class Rejection:
    """A request seawall refused, as handed to an ``on_reject`` hook.

    ``reason`` is one of ``"rate_limited"`` (429), ``"overloaded"`` (503: bulkhead full),
    ``"circuit_open"`` (503), ``"shutting_down"`` (503) and ``"timeout"`` (504). ``headers``
    holds ``Retry-After`` and the rate-limit fields; seawall adds any of them that a hook's
    own response leaves out.
    """

    status: int
    reason: str
    title: str
    detail: str
    retry_after: int | None = None
    policies: tuple[str, ...] = ()
    problem_type: str = "about:blank"
    headers: tuple[Header, ...] = field(default=())

    def body(self) -> bytes:
        """The default ``application/problem+json`` document."""
        return _problem(self.problem_type, self.title, self.status, self.detail, self.policies)


# Rejections repeat (same status, same Retry-After, same policies) and a flood of them is
# exactly when their cost matters, so the serialised documents are cached.
@lru_cache(maxsize=1024)
def _problem(kind: str, title: str, status: int, detail: str, policies: tuple[str, ...]) -> bytes:
    doc: dict[str, object] = {"type": kind, "title": title, "status": status, "detail": detail}
    if policies:
        doc["violated-policies"] = list(policies)
    return json.dumps(doc, separators=(",", ":")).encode()


RejectHook = Callable[[Scope, Rejection], ASGIApp | Awaitable[ASGIApp]]


def rate_limited(
    headers: Sequence[Header], retry_after: float, policies: Sequence[str]
) -> Rejection:
    """A 429 carrying ``headers`` (the RateLimit fields) and ``Retry-After``."""
    return _rate_limited(tuple(headers), delta_seconds(retry_after), tuple(policies))


def unavailable(reason: str, retry_after: float, detail: str) -> Rejection:
    """A 503 for ``reason`` with ``Retry-After``."""
    return _unavailable(reason, delta_seconds(retry_after), detail)


# A flood of refusals repeats the same few rejections (same fields, same whole seconds), and
# a flood is when a refusal's cost matters: each distinct one is built once. Rejections are
# immutable, so sharing one between requests is safe.
@lru_cache(maxsize=1024)
def _rate_limited(
    headers: tuple[Header, ...], seconds: int, policies: tuple[str, ...]
) -> Rejection:
    return Rejection(
        429,
        "rate_limited",
        "Too Many Requests",
        f"Request quota exceeded; retry in {seconds} seconds.",
        seconds,
        policies,
        _QUOTA_EXCEEDED,
        (*headers, (b"retry-after", str(seconds).encode())),
    )


@lru_cache(maxsize=256)
def _unavailable(reason: str, seconds: int, detail: str) -> Rejection:
    return Rejection(
        503,
        reason,
        "Service Unavailable",
        detail,
        seconds,
        problem_type=_REDUCED_CAPACITY if reason == "overloaded" else "about:blank",
        headers=((b"retry-after", str(seconds).encode()),),
    )


def timed_out() -> Rejection:
    return Rejection(504, "timeout", "Gateway Timeout", "The request took too long to process.")


def ratelimit_fields(
    style: str, policy_field: bytes, states: Sequence[PolicyState], wall_now: float
) -> list[Header]:
    """The rate-limit header fields of ``style`` for ``states`` (one per quota)."""
    if style == "ietf" and len(states) == 1:
        state = states[0]
        return [*ietf_fields(policy_field, state.name, state.remaining, _window_left(state))]
    headers: list[Header] = []
    if style != "legacy":
        items = b", ".join(_ratelimit_item(s.name, s.remaining, _window_left(s)) for s in states)
        headers += [(b"ratelimit-policy", policy_field), (b"ratelimit", items)]
    if style != "ietf":
        tight = min(states, key=lambda s: (s.remaining, -s.reset_after))
        reset = math.ceil(wall_now + _window_left(tight))
        headers += [
            (b"x-ratelimit-limit", str(tight.quota).encode()),
            (b"x-ratelimit-remaining", str(tight.remaining).encode()),
            (b"x-ratelimit-reset", str(reset).encode()),
        ]
    return headers


# A quota's field takes few distinct values (remaining 0..q, seconds 0..w), so a client
# hammering one limit keeps hitting the same few: formatting them once is cheaper.
@lru_cache(maxsize=4096)
def _ratelimit_item(name: str, remaining: int, seconds: int) -> bytes:
    return f'"{name}";r={remaining};t={seconds}'.encode("ascii")


@lru_cache(maxsize=4096)
def ietf_fields(policy_field: bytes, name: str, remaining: int, seconds: int) -> tuple[Header, ...]:
    """The IETF fields of a single quota with ``remaining`` tokens, full in ``seconds``.

    Every limited response of the common case (one quota, IETF style) carries these: cached
    whole, so a granted request finds its two fields in one lookup.
    """
    item = _ratelimit_item(name, remaining, seconds)
    return (b"ratelimit-policy", policy_field), (b"ratelimit", item)


def _window_left(state: PolicyState) -> int:
    if state.retry_after > 0:
        return delta_seconds(state.retry_after)
    return math.ceil(state.reset_after)


async def send_rejection(
    scope: Scope, receive: Receive, send: Send, rejection: Rejection, hook: RejectHook | None
) -> None:
    """Answer ``rejection``: the default problem document, or the hook's own response."""
    if hook is None:
        body = rejection.body()
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            *rejection.headers,
        ]
        await send({"type": "http.response.start", "status": rejection.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    response = hook(scope, rejection)
    if isinstance(response, Awaitable):
        response = await response
    await response(scope, receive, _adding(send, rejection.headers))


def _adding(send: Send, extra: Sequence[Header]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            present = {bytes(name).lower() for name, _ in headers}
            missing = [(name, value) for name, value in extra if name not in present]
            if missing:
                message = {**message, "headers": headers + missing}
        await send(message)

    return wrapped
