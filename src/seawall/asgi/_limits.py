"""Limit strings ("100/minute", "10/second;1000/hour") and the keyed buckets behind them.

A limit string lists one or more quotas separated by ``;`` or ``,``. Each quota reads
``<amount> / <unit>`` or ``<amount> per <unit>``, optionally with a multiplier:
``"20/5 minutes"``. Units: ``second``/``sec``/``s``, ``minute``/``min``/``m``,
``hour``/``h``, ``day``/``d`` (plurals accepted). Each quota becomes a token bucket holding
``amount`` tokens that refills at ``amount / window`` per second, one bucket per client key.

When several quotas apply to one request, the request is admitted only if every one of them
admits it, and a rejection spends nothing: all buckets are checked before any is charged
(see :meth:`LimitGroup.hit`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .._clock import Clock
from .._limiter.keyed import KeyedRateLimiter
from .._limiter.limiter import RateLimitDecision
from ..stores._base import Store
from ._types import Scope

__all__ = ["Limit", "LimitGroup", "PolicyState", "check_cost", "parse_limits"]

_UNITS = {
    "s": 1, "sec": 1, "second": 1,
    "m": 60, "min": 60, "minute": 60,
    "h": 3600, "hour": 3600,
    "d": 86400, "day": 86400,
}  # fmt: skip
_ITEM = re.compile(r"^\s*(\d+)\s*(?:/|\bper\b)\s*(\d+)?\s*([a-z]+?)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Limit:
    """``amount`` requests per ``window`` whole seconds."""

    amount: int
    window: int

    def __str__(self) -> str:
        return f"{self.amount}/{self.window}s"


class PolicyState(NamedTuple):
    """One quota's answer for one request: the numbers the RateLimit fields carry.

    (A named tuple, not a dataclass: one is built per request, and this is cheaper.)
    """

    name: str
    quota: int
    window: int
    remaining: int
    reset_after: float
    retry_after: float

    def later(self, seconds: float) -> PolicyState:
        """This answer as it reads ``seconds`` later, nothing spent meanwhile."""
        reset_after, retry_after = self.reset_after - seconds, self.retry_after - seconds
        fields = (*self[:4], max(reset_after, 0.0), max(retry_after, 0.0))
        return _new_tuple(PolicyState, fields)


LimitSpec = str | Limit | Sequence[str | Limit]
_new_tuple = tuple.__new__


def parse_limits(name: str, spec: LimitSpec) -> tuple[Limit, ...]:
    """Parse ``spec`` (a limit string, a :class:`Limit`, or a list of them) into limits.

    Raises ValueError naming ``name`` and the bad text, TypeError for other types.
    """
    if isinstance(spec, Limit):
        return (spec,)
    if isinstance(spec, str):
        parts = [p for p in re.split(r"[;,]", spec) if p.strip()]
        if not parts:
            raise ValueError(f"{name} must name at least one limit, got {spec!r}")
        return tuple(_parse_item(name, p) for p in parts)
    if isinstance(spec, Sequence) and spec:
        return tuple(limit for item in spec for limit in parse_limits(name, item))
    raise TypeError(f"{name} must be a limit string like '100/minute', got {spec!r}")


def _parse_item(name: str, text: str) -> Limit:
    match = _ITEM.match(text)
    unit = _UNITS.get(match.group(3).lower()) if match else None
    if match is None or unit is None:
        raise ValueError(
            f"{name}: cannot read {text.strip()!r}; expected e.g. '100/minute', '5 per second'"
        )
    amount, multiplier = int(match.group(1)), int(match.group(2) or 1)
    if amount < 1 or multiplier < 1:
        raise ValueError(f"{name}: amount and window must be >= 1 in {text.strip()!r}")
    return Limit(amount, multiplier * unit)


def check_cost(cost: object, limits: Sequence[Limit], what: str = "cost") -> int:
    """``cost`` as the tokens a request takes: a whole number from 1 to the smallest quota."""
    if cost.__class__ is not int or cost < 1:
        raise ValueError(f"{what} must be a whole number >= 1, got {cost!r}")
    most = min(limit.amount for limit in limits)
    if cost > most:
        raise ValueError(f"{what} {cost!r} exceeds the smallest quota ({most} requests)")
    return cost


class LimitGroup:
    """Every quota that applies to one scope (the app default, or one route), per client key.

    ``names`` label the quotas in the RateLimit fields: ``prefix`` alone for a single quota,
    ``prefix-1``, ``prefix-2``... for several. ``cost`` is the tokens one request takes from
    each quota: a whole number, or a function of the request's scope (then :attr:`cost` is 0
    and :meth:`weight` asks the function).
    """

    __slots__ = (
        "_buckets",
        "_heads",
        "_weigh",
        "cost",
        "limits",
        "names",
        "policy_field",
        "shared",
        "take",
    )

    def __init__(
        self,
        prefix: str,
        limits: Sequence[Limit],
        *,
        max_keys: int,
        clock: Clock | None,
        store: Store | str | None = None,
        degraded: str = "local",
        store_name: str | None = None,
        cost: int | Callable[[Scope], int] = 1,
    ) -> None:
        self.limits = tuple(limits)
        self._weigh: Callable[[Scope], int] | None = None
        if callable(cost):
            self.cost, self._weigh = 0, cost
        else:
            self.cost = check_cost(cost, self.limits)
        if len(self.limits) == 1:
            self.names: tuple[str, ...] = (prefix,)
        else:
            self.names = tuple(f"{prefix}-{i}" for i in range(1, len(self.limits) + 1))
        # In a store, quotas are named by where they apply (store_name), so the buckets of
        # different routes, and of different apps sharing the store, never mix.
        label = store_name or prefix
        self._buckets = tuple(
            KeyedRateLimiter(
                limit.amount,
                limit.window,
                burst=limit.amount,
                max_keys=max_keys,
                name=name if store is None else f"{label}#{i}:{limit}",
                clock=clock,
                store=store,
                degraded=degraded,
            )
            for i, (name, limit) in enumerate(zip(self.names, self.limits, strict=True), 1)
        )
        self.shared = any(b.store is not None for b in self._buckets)
        # What every PolicyState of a quota starts with, and the one quota's consume: the
        # hot path of a single-quota group builds its answer without looking either up.
        self._heads = tuple(
            (n, lim.amount, lim.window) for n, lim in zip(self.names, self.limits, strict=True)
        )
        # (Only groups in memory are hit: a group in a store is ``ahit``.)
        only = len(self._buckets) == 1 and not self.shared
        #: The one quota's ``take(key, cost) -> (wait, remaining, reset_after)`` when the
        #: group is a single quota in memory, else None: the middleware's granted path reads
        #: the numbers straight from it (see :meth:`state`).
        self.take = self._buckets[0].take if only else None
        self.policy_field = ", ".join(
            f'"{n}";q={lim.amount};w={lim.window}'
            for n, lim in zip(self.names, self.limits, strict=True)
        ).encode("ascii")

    @property
    def buckets(self) -> tuple[KeyedRateLimiter, ...]:
        """The keyed limiters, one per quota (for inspection and tests)."""
        return self._buckets

    def weight(self, scope: Scope) -> int:
        """The tokens the request of ``scope`` costs in each quota."""
        if self._weigh is None:
            return self.cost
        return check_cost(self._weigh(scope), self.limits, "cost(scope)")

    def hit(self, key: Hashable, cost: int = 1) -> tuple[bool, tuple[PolicyState, ...]]:
        """Charge ``cost`` tokens to ``key`` in every quota, or none if any would refuse.

        With several quotas every bucket is read first and charged only if all hold
        ``cost`` tokens; a refused request spends nothing. (Read and charge are not one
        atomic step across threads: two threads racing on the same key may spend tokens in
        an earlier quota for a request a later one refuses. Within one event loop there is
        no such gap.)
        """
        take = self.take
        if take is not None:
            wait, remaining, reset_after = take(key, cost)
            return wait == 0.0, (self.state(wait, remaining, reset_after),)
        levels = [bucket.tokens(key) for bucket in self._buckets]
        if any(level < cost - 1e-9 for level in levels):
            peeked = (self._peeked(i, level, cost) for i, level in enumerate(levels))
            return False, tuple(peeked)
        decisions = [bucket.consume(key, cost) for bucket in self._buckets]
        states = tuple(self._state(i, d) for i, d in enumerate(decisions))
        return all(d.granted for d in decisions), states

    async def ahit(self, key: Hashable, cost: int = 1) -> tuple[bool, tuple[PolicyState, ...]]:
        """:meth:`hit` for buckets kept in a store; every store call is awaited and guarded.

        The last quota is not peeked: it is charged first, since a refused charge spends
        nothing and its answer carries the numbers the headers need. So a request that all
        quotas admit costs ``2n - 1`` round trips for ``n`` quotas, one that a peek refuses
        ``n``, and none of them blocks the event loop.
        """
        buckets = self._buckets
        if len(buckets) == 1:
            decision = await buckets[0].aconsume(key, cost)
            return decision.granted, (self._state(0, decision),)
        *first, last = buckets
        levels = [await bucket.atokens(key) for bucket in first]
        if any(level < cost - 1e-9 for level in levels):
            levels.append(await last.atokens(key))
            peeked = (self._peeked(i, level, cost) for i, level in enumerate(levels))
            return False, tuple(peeked)
        closing = await last.aconsume(key, cost)
        if not closing.granted:
            peeked = (self._peeked(i, level, cost) for i, level in enumerate(levels))
            return False, (*peeked, self._state(len(first), closing))
        decisions = [await bucket.aconsume(key, cost) for bucket in first]
        decisions.append(closing)
        states = tuple(self._state(i, d) for i, d in enumerate(decisions))
        return all(d.granted for d in decisions), states

    def state(self, wait: float, remaining: int, reset_after: float) -> PolicyState:
        """The single quota's :class:`PolicyState` from :attr:`take`'s numbers."""
        return _new_tuple(PolicyState, (*self._heads[0], remaining, reset_after, wait))

    def _state(self, index: int, decision: RateLimitDecision) -> PolicyState:
        # tuple.__new__ directly: a named tuple's own __new__ costs twice as much, once per
        # limited request.
        state = (*self._heads[index], decision.remaining, decision.reset_after)
        return _new_tuple(PolicyState, (*state, decision.retry_after))

    def _peeked(self, index: int, level: float, cost: int = 1) -> PolicyState:
        limit = self.limits[index]
        interval = limit.window / limit.amount
        missing = max(0.0, cost - level)
        return PolicyState(
            self.names[index],
            limit.amount,
            limit.window,
            max(0, math.floor(level + 1e-9)),
            max(0.0, (limit.amount - level) * interval),
            missing * interval if missing > 1e-9 else 0.0,
        )
