"""The Redis store's admission of one request: the ``admit`` script's arguments and reply.

One ``EVALSHA`` decides every gate (see ``lua/admit.lua``); concurrent admissions of one
process share one (``lua/admit_many.lua``: :func:`pack` and :func:`split`). The request's
holder id is the same for all its gates: the receipt of its tokens in each bucket, the field
of its lease, the receipt of its half-open probe. When the answer is lost, the store hands
that id, and the lost ids the call carried, back to each gate's book of lost answers, so the
next round trip on each gate cancels whatever the late script may still grant.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..._core.breaker import Ticket, Transition
from .._admit import BULKHEAD_RETRY_AFTER
from .._base import Gates, Reservation
from . import replies
from .keys import fmt

__all__ = ["Call", "Reply", "arguments", "as_json", "pack", "parse", "split"]


@dataclass(slots=True)
class Call:
    """One admission's keys, holder id and the lost ids it carries, per gate."""

    limit_keys: Sequence[str]
    bulkhead_key: str | None
    breaker_key: str | None
    holder: str
    limit_lost: list[list[str]]
    bulkhead_lost: list[str]
    breaker_lost: list[str]

    @property
    def keys(self) -> list[str]:
        """KEYS of the script, in its order."""
        found = list(self.limit_keys)
        found += [k for k in (self.bulkhead_key, self.breaker_key) if k is not None]
        return found


def arguments(
    call: Call, gates: Gates, key: str | None, costs: Sequence[int], now: str, receipt: str
) -> list[str]:
    """ARGV of the ``admit`` script (see its header)."""
    args = [now, call.holder, receipt, str(len(gates.limits))]
    for spec, cost in zip(gates.limits, costs, strict=True):
        user_key = key if spec.keyed and key is not None else None
        args += [fmt(spec.interval), fmt(spec.burst), spec.name]
        args += ["" if user_key is None else user_key, "0" if user_key is None else "1"]
        args.append(str(cost))
    bulkhead = gates.bulkhead
    if bulkhead is None:
        args += ["0", "", "0", "0"]
    else:
        args += ["1", bulkhead.name, str(bulkhead.max_concurrent), fmt(bulkhead.lease)]
    breaker = gates.breaker
    if breaker is None:
        args += ["0", "", "0", "0", "0", "0", "0"]
    else:
        cfg = breaker.config  # a window lives in the record: admitting does not read it
        args += ["1", breaker.name, str(cfg.max_failures), fmt(cfg.reset_timeout)]
        args += [str(cfg.half_open_max_calls), str(cfg.success_threshold)]
        args += [fmt(cfg.stale_attempt_timeout)]
    args += [str(len(lost)) for lost in call.limit_lost]
    args += [str(len(call.bulkhead_lost)), str(len(call.breaker_lost))]
    for lost in call.limit_lost:
        args += lost
    return args + call.bulkhead_lost + call.breaker_lost


@dataclass(slots=True)  # not frozen: made for every member of every batch, read once
class Reply:
    """The script's answer, decoded."""

    refused_by: str | None
    retry_after: float
    slot: int
    breaker_reached: bool
    limits_corrupt: bool
    ticket: Ticket | None
    transition: Transition | None
    breaker_corrupt: bool
    limits: tuple[Reservation, ...]


def parse(raw: list[str]) -> Reply:
    """Decode ``raw`` (see the script's header)."""
    refused = raw[0] or None
    retry_after = float(raw[1])
    if refused == "lost":
        refused, retry_after = "limit", math.inf  # told no already: never granted
    elif refused == "bulkhead":
        retry_after = BULKHEAD_RETRY_AFTER
    breaker = raw[5:14]
    ticket = None
    transition = None
    if breaker[0]:
        transition = replies.transition(breaker)
        if breaker[0] == "t":
            admitted = replies.admission(breaker)
            assert isinstance(admitted, tuple)
            ticket = admitted
    limits = tuple(
        Reservation(float(raw[i]), float(raw[i + 1]), int(float(raw[i + 2])), float(raw[i + 3]))
        for i in range(14, len(raw), 4)
    )
    return Reply(
        refused,
        retry_after,
        int(raw[2]),
        raw[3] == "2",
        raw[4] == "1",
        ticket,
        transition,
        breaker[8] == "1",
        limits,
    )


def pack(
    members: Sequence[tuple[Call, Gates, str | None, Sequence[int]]], now: str, receipt: str
) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of the ``admit_many`` script: the keys (each once), then the templates
    (one per set of gates) and the members, each as one JSON argument."""
    places: dict[str, int] = {}
    numbers: dict[int, int] = {}
    templates: list[list[str]] = []
    own: list[int | str] = []
    for call, gates, key, costs in members:
        number = numbers.get(id(gates))
        if number is None:
            fixed = arguments(call, gates, None, costs, now, receipt)[: 15 + 6 * len(gates.limits)]
            templates.append(fixed)
            numbers[id(gates)] = number = len(templates)
        mine = [call.holder]
        for spec, cost in zip(gates.limits, costs, strict=True):
            user_key = key if spec.keyed and key is not None else None
            mine += ["", "0", str(cost)] if user_key is None else [user_key, "1", str(cost)]
        mine += [str(len(lost)) for lost in call.limit_lost]
        mine += [str(len(call.bulkhead_lost)), str(len(call.breaker_lost))]
        for lost in call.limit_lost:
            mine += lost
        mine += call.bulkhead_lost + call.breaker_lost
        member_keys = call.keys
        own += [number, len(member_keys), len(mine)]
        own += [places.setdefault(k, len(places) + 1) for k in member_keys]
        own += mine
    return list(places), [as_json(templates), as_json(own)]


#: Items as one script argument (keys and holder ids are any text: JSON with ASCII escapes is
#: what a script's cjson reads).
as_json = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


def split(reply: list[str]) -> list[list[str]]:
    """The ``admit_many`` reply (one JSON array) cut into each member's ``admit`` reply."""
    raw: list[str] = json.loads(reply[0])
    found: list[list[str]] = []
    i = 0
    while i < len(raw):
        n = int(raw[i])
        found.append(raw[i + 1 : i + 1 + n])
        i += 1 + n
    return found
