"""The Redis store: policy state shared by many machines, one Lua script per decision.

Each decision is one ``EVALSHA`` of a script that mirrors :mod:`seawall.stores._rules` (see
``stores/_redis/lua``), reads the time with ``TIME`` on the server (or takes the client's wall time
with ``time_source="client"``) and sets the key's expiry in the same step. Connections are
made lazily with bounded connect and read timeouts and no client-side retries, so a dead
Redis costs about ``timeout`` per call and surfaces as :class:`StoreUnavailableError`; a
server that refuses our credentials raises :class:`StoreError` instead (see ``_redis_errors``).
The password stays in the client's URL: ``url``, ``repr`` and every message show it as ``***``.

The sync methods use redis-py's thread-safe sync client. The async ones use valkey-glide,
native on asyncio and trio, when it is installed (``aio_glide``), else redis-py's
``redis.asyncio`` client on asyncio (one per running loop, see ``aio``) and the sync client in
a worker thread on trio and for Redis Cluster (``async_client`` chooses; see ``aio``'s
``choose_async_client``). coredis 6, the anyio-native client,
ties its connection pool to a task group that a parent task must enter and keep open, which
a store shared by unrelated request tasks cannot do (see ``docs/redis-store.md``).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import threading
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..._clock import SYSTEM_CLOCK, Clock
from ..._core.breaker import Ticket, Transition
from ..._core.validate import check_number
from ..._errors import StoreError
from .. import _admit
from .._base import (
    Admission,
    BreakerSpec,
    BreakerView,
    BulkheadSpec,
    Gates,
    Hold,
    LimiterSpec,
    PolicyStatus,
    Request,
    Reservation,
    Settlement,
    Store,
    StoreUnavailableError,
)
from . import admission, replies
from .aio import async_clients, choose_async_client
from .cluster import FailFastCluster
from .errors import FAILURES, store_failure
from .keys import (
    bucket_key,
    check_prefix,
    fmt,
    grouped_pattern,
    parse_url,
    policy_key,
    policy_pattern,
    store_pattern,
)
from .leases import LeaseBook, Touch
from .scripts import run, script

if TYPE_CHECKING:
    from collections.abc import Callable

    from .aio import Clients
    from .scripts import Client

__all__ = ["RedisStore"]

# A member's keys (see RedisStore._keys_of): its gates, then per limit its bucket, the
# bulkhead's lease hash and the breaker's record.
_MemberKeys = tuple[Gates, tuple[str, ...], str | None, str | None]

_T = TypeVar("_T")
# No CLIENT SETINFO on connect: one command per connection less. redis-py 7.2 renamed the
# switch from lib_name/lib_version to driver_info and warns on the old names.
_NO_SETINFO: dict[str, None] = (
    {"driver_info": None}
    if importlib.util.find_spec("redis.driver_info") is not None
    else {"lib_name": None, "lib_version": None}
)
_BUCKET_CACHE = 4096  # cached bucket keys; cleared when full (rebuilt on demand)
_RECEIPT = "5.0"  # seconds a reservation's receipt lives: time to cancel it if it was lost
_MAX_LOST = 1024  # lost reservations remembered per bucket; older ones just expire
_STATUS = {
    "limiter": replies.bucket_status,
    "breaker": replies.breaker_status,
    "bulkhead": replies.bulkhead_status,
}


class _RedisHold(Hold):
    """A bulkhead lease; releasing it deletes the lease field (one ``HDEL``).

    A release whose answer is lost (or that is cancelled mid-flight) is handed to the lease
    book, whose next round trip on this bulkhead cancels the lease for sure.
    """

    def __init__(
        self, store: RedisStore, key: str, spec: BulkheadSpec, holder: str, slot: int
    ) -> None:
        self._store, self._key, self._spec, self._holder = store, key, spec, holder
        self.slot = slot
        self._released = False

    def _gone(self) -> bool:
        if self._released:
            return True
        self._released = True
        self._store._leases.released(self._key, self._holder)
        return False

    def _lost(self) -> None:
        self._store._leases.lose(self._key, self._spec, [self._holder])

    def release(self) -> None:
        if self._gone():
            return
        try:
            self._store._call(self._hdel)
        except BaseException:
            self._lost()
            raise

    async def arelease(self) -> None:
        if self._gone():
            return
        clients = self._store._async
        try:
            if clients.native():
                await clients.call("HDEL", self._key, "h:" + self._holder)
            else:
                await anyio.to_thread.run_sync(self._store._call, self._hdel)
        except BaseException:
            self._lost()
            raise

    def _hdel(self, client: Client) -> Any:
        return client.hdel(self._key, "h:" + self._holder)


class RedisStore(Store):
    """Policy state in Redis (``redis://``, ``rediss://``, ``redis+cluster://``, ...).

    ``timeout`` bounds connecting and each reply (no retries). ``time_source="server"``
    (default) reads Redis ``TIME`` inside every script, so client clocks do not matter;
    ``"client"`` sends ``clock.time()`` instead (for services that refuse ``TIME`` in
    scripts, and for tests). ``prefix`` starts every key. ``async_client`` picks the client
    of the async methods: ``"glide"`` (valkey-glide, native on asyncio and trio),
    ``"redis-py"``, or ``"auto"`` (redis-py for now; also the URL option
    ``?async_client=``). No I/O happens here.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.1,
        time_source: str = "server",
        clock: Clock | None = None,
        prefix: str = "seawall",
        async_client: str = "auto",
    ) -> None:
        self._target = parse_url(url)
        self.url = self._target.display  # what may be shown: the password reads ***
        self.timeout = check_number("timeout", timeout)
        if time_source not in ("server", "client"):
            raise ValueError(f"time_source must be 'server' or 'client', got {time_source!r}")
        self.time_source = time_source
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._prefix = check_prefix(prefix)
        self._lock = threading.Lock()
        self._client: Client | None = None
        # Per bucket: its key and the arguments that never change, encoded once (building
        # and encoding them was a fifth of a decision's client-side cost).
        self._buckets: dict[tuple[LimiterSpec, str | None], tuple[str, list[str | bytes]]] = {}
        self.async_client = choose_async_client(async_client, self._target)
        self._async_clients: Clients | None = None  # see _async
        self._given_url = url  # password included: only for reopen_url()
        self._leases = LeaseBook(self._clock, self._touch)
        # Holder ids of reservations: unique across processes, cheap to make per call.
        self._holder_prefix = uuid.uuid4().hex[:16] + "-"
        self._holder_ids = itertools.count()
        self._lost_answers: dict[str, list[str]] = {}  # Redis key -> holders to cancel
        self._groups: dict[str, str] = {}  # policy name -> hash tag group (see colocate)
        # Per (set of gates, client key): the gates' Redis keys, made once rather than on
        # every admission (the gates kept alongside, as the dict holds them by identity).
        self._member_keys: dict[tuple[int, str | None], _MemberKeys] = {}

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, time_source={self.time_source!r})"

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def _async(self) -> Clients:
        # Made at the first async call: valkey-glide (0.3 s to import) loads only then.
        clients = self._async_clients
        if clients is None:
            with self._lock:
                if self._async_clients is None:
                    made = async_clients(self.async_client, self._target, self.timeout)
                    self._async_clients = made
                clients = self._async_clients
        return clients

    def _connect(self) -> Client:
        options = {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
            **_NO_SETINFO,
        }
        if self._target.cluster:
            # No retries and no sleeps: FailFastCluster makes one attempt per decision
            # (see .cluster), and these options keep its fallback path to one attempt too.
            return FailFastCluster.from_url(self._target.client_url, **options)
        return Redis.from_url(self._target.client_url, **options)

    def _conn(self) -> Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    try:
                        self._client = self._connect()
                    except FAILURES as exc:  # a cluster client talks to Redis at once
                        raise store_failure(exc, self.url) from exc
                client = self._client
        return client

    def _call(self, fn: Callable[[Client], _T]) -> _T:
        try:
            return fn(self._conn())
        except FAILURES as exc:
            raise store_failure(exc, self.url) from exc

    def _now(self) -> str:
        return "" if self.time_source == "server" else fmt(self._clock.time())

    def _run(self, name: str, key: str, args: Sequence[str | bytes]) -> list[str]:
        return run(self._conn(), script(name), key, args, self.url)

    async def _arun(self, name: str, key: str, args: Sequence[str | bytes]) -> list[str]:
        if self._async.native():
            return await self._async.run(script(name), [key], args)
        return await anyio.to_thread.run_sync(self._run, name, key, args)

    # -- rate limiter -----------------------------------------------------------------------

    def _bucket(self, spec: LimiterSpec, key: str | None) -> tuple[str, list[str | bytes]]:
        found = self._buckets.get((spec, key))
        if found is None:
            if len(self._buckets) >= _BUCKET_CACHE:
                self._buckets.clear()
            fixed = [fmt(spec.interval), fmt(spec.burst), spec.name]
            fixed += ["", "0"] if key is None else [key, "1"]
            found = (
                bucket_key(self._prefix, spec.name, key, self._group_of(spec)),
                [a.encode() for a in fixed],
            )
            self._buckets[spec, key] = found
        return found

    def _limiter(self, op: str, spec: LimiterSpec, key: str | None, *extra: str) -> list[str]:
        rkey, fixed = self._bucket(spec, key)
        reply = self._run(op, rkey, [self._now(), *fixed, *extra])
        replies.warn_if_reset(reply[-1], "limiter", self._target.display)
        return reply

    async def _alimiter(
        self, op: str, spec: LimiterSpec, key: str | None, *extra: str
    ) -> list[str]:
        rkey, fixed = self._bucket(spec, key)
        reply = await self._arun(op, rkey, [self._now(), *fixed, *extra])
        replies.warn_if_reset(reply[-1], "limiter", self._target.display)
        return reply

    def _holder(self, rkey: str) -> tuple[str, list[str]]:
        """A fresh holder id, and the lost ones of ``rkey`` to cancel in the same round trip."""
        holder = f"{self._holder_prefix}{next(self._holder_ids):x}"
        with self._lock:
            lost = self._lost_answers.pop(rkey, [])
        return holder, lost

    def _answer_lost(self, rkey: str, holders: list[str], exc: BaseException) -> None:
        """The operation may still run (a stall, a dropped connection): undo it next time."""
        if isinstance(exc, StoreError) and not isinstance(exc, StoreUnavailableError):
            return  # refused before running (credentials, permissions): nothing to undo
        with self._lock:
            if len(self._lost_answers) >= _BUCKET_CACHE:
                self._lost_answers.clear()  # their receipts expire by themselves
            lost = self._lost_answers.setdefault(rkey, [])
            lost.extend(holders)
            del lost[:-_MAX_LOST]

    def _reserve_args(self, rkey: str, tokens: int, max_wait: float) -> list[str]:
        holder, lost = self._holder(rkey)
        return [str(int(tokens)), fmt(max_wait), _RECEIPT, holder, *lost]

    def _reservation_lost(self, rkey: str, args: list[str], exc: BaseException) -> None:
        self._answer_lost(rkey, args[3:], exc)  # this holder and the lost ones it carried

    def reserve(
        self, spec: LimiterSpec, key: str | None, tokens: int, max_wait: float
    ) -> Reservation:
        rkey = self._bucket(spec, key)[0]
        args = self._reserve_args(rkey, tokens, max_wait)
        try:
            reply = self._limiter("limiter_reserve", spec, key, *args)
        except BaseException as exc:
            self._reservation_lost(rkey, args, exc)
            raise
        return replies.reservation(reply)

    async def areserve(
        self, spec: LimiterSpec, key: str | None, tokens: int, max_wait: float
    ) -> Reservation:
        rkey = self._bucket(spec, key)[0]
        args = self._reserve_args(rkey, tokens, max_wait)
        try:
            reply = await self._alimiter("limiter_reserve", spec, key, *args)
        except BaseException as exc:  # timed out, disconnected or cancelled: answer lost
            self._reservation_lost(rkey, args, exc)
            raise
        return replies.reservation(reply)

    def cancel(self, spec: LimiterSpec, key: str | None, ticket: float, tokens: int) -> bool:
        reply = self._limiter("limiter_cancel", spec, key, fmt(ticket), str(int(tokens)))
        return reply[0] == "1"

    async def acancel(self, spec: LimiterSpec, key: str | None, ticket: float, tokens: int) -> bool:
        reply = await self._alimiter("limiter_cancel", spec, key, fmt(ticket), str(int(tokens)))
        return reply[0] == "1"

    def block(self, spec: LimiterSpec, key: str | None, seconds: float) -> bool:
        check_number("seconds", seconds, inclusive=True, allow_inf=True)
        reply = self._limiter("limiter_block", spec, key, fmt(seconds), fmt(spec.max_block))
        return reply[0] == "1"

    async def ablock(self, spec: LimiterSpec, key: str | None, seconds: float) -> bool:
        check_number("seconds", seconds, inclusive=True, allow_inf=True)
        reply = await self._alimiter("limiter_block", spec, key, fmt(seconds), fmt(spec.max_block))
        return reply[0] == "1"

    def peek(self, spec: LimiterSpec, key: str | None) -> tuple[float, float]:
        reply = self._limiter("limiter_peek", spec, key)
        return float(reply[0]), float(reply[1])

    def withdraw(self, spec: LimiterSpec, key: str | None, deposit: float) -> Reservation:
        return replies.reservation(self._limiter("limiter_withdraw", spec, key, fmt(deposit)))

    async def awithdraw(self, spec: LimiterSpec, key: str | None, deposit: float) -> Reservation:
        reply = await self._alimiter("limiter_withdraw", spec, key, fmt(deposit))
        return replies.reservation(reply)

    # -- circuit breaker --------------------------------------------------------------------

    def _breaker(self, op: str, spec: BreakerSpec, *extra: str) -> list[str]:
        key, args = self._breaker_args(spec, extra)
        reply = self._run(op, key, args)
        replies.warn_if_reset(reply[-1], "breaker", self._target.display)
        return reply

    async def _abreaker(self, op: str, spec: BreakerSpec, *extra: str) -> list[str]:
        key, args = self._breaker_args(spec, extra)
        reply = await self._arun(op, key, args)
        replies.warn_if_reset(reply[-1], "breaker", self._target.display)
        return reply

    def _breaker_args(self, spec: BreakerSpec, extra: tuple[str, ...]) -> tuple[str, list[str]]:
        cfg = spec.config
        args = [
            self._now(),
            spec.name,
            str(cfg.max_failures),
            fmt(cfg.reset_timeout),
            str(cfg.half_open_max_calls),
            str(cfg.success_threshold),
            fmt(cfg.stale_attempt_timeout),
            *extra,
        ]
        return policy_key(self._prefix, spec.name, "breaker", self._group_of(spec)), args

    def admit(self, spec: BreakerSpec) -> tuple[Ticket | float, Transition | None]:
        rkey = policy_key(self._prefix, spec.name, "breaker", self._group_of(spec))
        holder, lost = self._holder(rkey)
        try:
            reply = self._breaker("breaker_admit", spec, _RECEIPT, holder, *lost)
        except BaseException as exc:
            self._answer_lost(rkey, [holder, *lost], exc)
            raise
        return replies.admission(reply), replies.transition(reply)

    async def aadmit(self, spec: BreakerSpec) -> tuple[Ticket | float, Transition | None]:
        rkey = policy_key(self._prefix, spec.name, "breaker", self._group_of(spec))
        holder, lost = self._holder(rkey)
        try:
            reply = await self._abreaker("breaker_admit", spec, _RECEIPT, holder, *lost)
        except BaseException as exc:  # timed out, disconnected or cancelled: answer lost
            self._answer_lost(rkey, [holder, *lost], exc)
            raise
        return replies.admission(reply), replies.transition(reply)

    def record(
        self, spec: BreakerSpec, ticket: Ticket, outcome: int, duration: float
    ) -> Transition | None:
        extra = _outcome_args(ticket, outcome, spec, duration)
        return replies.transition(self._breaker("breaker_record", spec, *extra))

    async def arecord(
        self, spec: BreakerSpec, ticket: Ticket, outcome: int, duration: float
    ) -> Transition | None:
        extra = _outcome_args(ticket, outcome, spec, duration)
        return replies.transition(await self._abreaker("breaker_record", spec, *extra))

    def force(self, spec: BreakerSpec, action: str) -> Transition | None:
        if action not in ("open", "closed", "reset"):
            raise ValueError(f"action must be 'open', 'closed' or 'reset', got {action!r}")
        return replies.transition(self._breaker("breaker_force", spec, action))

    def view(self, spec: BreakerSpec) -> BreakerView:
        return replies.view(self._breaker("breaker_view", spec))

    # -- bulkhead ---------------------------------------------------------------------------

    def _lease_args(self, spec: BulkheadSpec) -> tuple[str, list[str]]:
        key = policy_key(self._prefix, spec.name, "bulkhead", self._group_of(spec))
        return key, [self._now(), spec.name, str(spec.max_concurrent)]

    def _hold_args(self, spec: BulkheadSpec) -> tuple[str, str, list[str], list[str]]:
        key, args = self._lease_args(spec)
        holder = uuid.uuid4().hex
        lost = self._leases.take_lost(key)  # cancelled in the same round trip
        return key, holder, lost, [*args, fmt(spec.lease), holder, "0", *lost]

    def _held(self, spec: BulkheadSpec, key: str, holder: str, reply: list[str]) -> Hold | None:
        slot = int(reply[1])
        if slot < 0:
            return None
        self._leases.held(key, spec, holder)
        return _RedisHold(self, key, spec, holder, slot)

    def _lost(self, key: str, spec: BulkheadSpec, holders: list[str], exc: BaseException) -> None:
        if isinstance(exc, StoreError) and not isinstance(exc, StoreUnavailableError):
            return  # refused before running (credentials, permissions): nothing to cancel
        self._leases.lose(key, spec, holders)

    def try_hold(self, spec: BulkheadSpec) -> Hold | None:
        key, holder, lost, args = self._hold_args(spec)
        try:
            reply = self._run("lease_acquire", key, args)
        except BaseException as exc:
            # The script may still run (a stall, a dropped connection): cancel it next time.
            self._lost(key, spec, [*lost, holder], exc)
            raise
        return self._held(spec, key, holder, reply)

    async def atry_hold(self, spec: BulkheadSpec) -> Hold | None:
        key, holder, lost, args = self._hold_args(spec)
        try:
            reply = await self._arun("lease_acquire", key, args)
        except BaseException as exc:  # timed out, disconnected or cancelled: answer lost
            self._lost(key, spec, [*lost, holder], exc)
            raise
        return self._held(spec, key, holder, reply)

    def _touch(self, touch: Touch) -> None:
        key, args = self._lease_args(touch.spec)
        renew = [str(len(touch.renew)), *touch.renew, *touch.cancel]
        self._run("lease_acquire", key, [*args, fmt(touch.spec.lease), "", *renew])

    def holders(self, spec: BulkheadSpec) -> int:
        key, args = self._lease_args(spec)
        return int(self._run("lease_count", key, args)[0])

    # -- one request's admission: one script call for every gate --------------------------

    def colocate(self, group: str, names: Iterable[str]) -> None:
        with self._lock:
            for name in names:
                self._groups[name] = group
            self._buckets.clear()  # keys cached before are recomputed with the group
            self._member_keys.clear()

    def _group_of(self, spec: LimiterSpec | BreakerSpec | BulkheadSpec) -> str:
        return spec.group or self._groups.get(spec.name, "")

    def _keys_of(self, gates: Gates, key: str | None) -> _MemberKeys:
        found = self._member_keys.get((id(gates), key))
        if found is None or found[0] is not gates:
            bulkhead, breaker = gates.bulkhead, gates.breaker
            found = (
                gates,
                tuple(self._bucket(s, key if s.keyed else None)[0] for s in gates.limits),
                None if bulkhead is None else self._lease_args(bulkhead)[0],
                None
                if breaker is None
                else policy_key(self._prefix, breaker.name, "breaker", self._group_of(breaker)),
            )
            with self._lock:
                if len(self._member_keys) >= _BUCKET_CACHE:
                    self._member_keys.clear()
                self._member_keys[id(gates), key] = found
        return found

    def _admission(self, gates: Gates, key: str | None) -> admission.Call:
        _, limit_keys, bulkhead, breaker_key = self._keys_of(gates, key)
        holder = f"{self._holder_prefix}{next(self._holder_ids):x}"
        if self._lost_answers:  # read without the lock: an answer lost meanwhile waits a call
            with self._lock:
                limit_lost = [self._lost_answers.pop(k, []) for k in limit_keys]
                lost = self._lost_answers
                breaker_lost = [] if breaker_key is None else lost.pop(breaker_key, [])
        else:
            limit_lost = [[] for _ in limit_keys]
            breaker_lost = []
        bulkhead_lost = [] if bulkhead is None else self._leases.take_lost(bulkhead)
        return admission.Call(
            limit_keys, bulkhead, breaker_key, holder, limit_lost, bulkhead_lost, breaker_lost
        )

    def _admission_lost(self, gates: Gates, call: admission.Call, exc: BaseException) -> None:
        """The script may still run: every gate cancels this holder next time."""
        for rkey, lost in zip(call.limit_keys, call.limit_lost, strict=True):
            self._answer_lost(rkey, [call.holder, *lost], exc)
        if call.bulkhead_key is not None and gates.bulkhead is not None:
            self._lost(call.bulkhead_key, gates.bulkhead, [*call.bulkhead_lost, call.holder], exc)
        if call.breaker_key is not None:
            self._answer_lost(call.breaker_key, [call.holder, *call.breaker_lost], exc)

    def _admitted(self, gates: Gates, call: admission.Call, raw: list[str]) -> Admission:
        reply = admission.parse(raw)
        if reply.limits_corrupt:
            replies.warn_if_reset("1", "limiter", self.url)
        if reply.breaker_corrupt:
            replies.warn_if_reset("1", "breaker", self.url)
        if not reply.breaker_reached and call.breaker_key is not None and call.breaker_lost:
            with self._lock:  # not cancelled this time: the next call on the breaker will
                self._lost_answers.setdefault(call.breaker_key, []).extend(call.breaker_lost)
        hold = None
        if reply.slot >= 0 and call.bulkhead_key is not None and gates.bulkhead is not None:
            self._leases.held(call.bulkhead_key, gates.bulkhead, call.holder)
            hold = _RedisHold(self, call.bulkhead_key, gates.bulkhead, call.holder, reply.slot)
        return Admission(
            reply.refused_by, reply.retry_after, reply.limits, hold, reply.ticket, reply.transition
        )

    def admit_request(
        self, gates: Gates, key: str | None, costs: Sequence[int] | None = None
    ) -> Admission:
        charge = _admit.check_costs(gates, costs)
        call = self._admission(gates, key)
        args = admission.arguments(call, gates, key, charge, self._now(), _RECEIPT)
        try:
            raw = run(self._conn(), script("admit"), call.keys, args, self.url)
        except BaseException as exc:
            self._admission_lost(gates, call, exc)
            raise
        return self._admitted(gates, call, raw)

    async def aadmit_request(
        self, gates: Gates, key: str | None, costs: Sequence[int] | None = None
    ) -> Admission:
        charge = _admit.check_costs(gates, costs)
        call = self._admission(gates, key)
        args = admission.arguments(call, gates, key, charge, self._now(), _RECEIPT)
        try:
            if self._async.native():
                raw = await self._async.run(script("admit"), call.keys, args)
            else:
                conn = self._conn()
                raw = await anyio.to_thread.run_sync(
                    run, conn, script("admit"), call.keys, args, self.url
                )
        except BaseException as exc:  # timed out, disconnected or cancelled: answer lost
            self._admission_lost(gates, call, exc)
            raise
        return self._admitted(gates, call, raw)

    def _admit_many(
        self, requests: Sequence[Request]
    ) -> tuple[list[tuple[Gates, admission.Call]], list[str], list[str]]:
        members = []
        packed = []
        for gates, key, costs in requests:
            charge = _admit.check_costs(gates, costs)
            call = self._admission(gates, key)
            members.append((gates, call))
            packed.append((call, gates, key, charge))
        keys, args = admission.pack(packed, self._now(), _RECEIPT)
        return members, keys, args

    def _admitted_many(
        self, members: list[tuple[Gates, admission.Call]], raw: list[str]
    ) -> list[Admission]:
        parts = admission.split(raw)
        return [self._admitted(g, c, r) for (g, c), r in zip(members, parts, strict=True)]

    def admit_requests(self, requests: Sequence[Request]) -> list[Admission]:
        members, keys, args = self._admit_many(requests)
        try:
            raw = run(self._conn(), script("admit_many"), keys, args, self.url)
        except BaseException as exc:
            for gates, call in members:
                self._admission_lost(gates, call, exc)
            raise
        return self._admitted_many(members, raw)

    async def aadmit_requests(self, requests: Sequence[Request]) -> list[Admission]:
        members, keys, args = self._admit_many(requests)
        try:
            if self._async.native():
                raw = await self._async.run(script("admit_many"), keys, args)
            else:
                conn = self._conn()
                raw = await anyio.to_thread.run_sync(
                    run, conn, script("admit_many"), keys, args, self.url
                )
        except BaseException as exc:  # timed out, disconnected or cancelled: answers lost
            for gates, call in members:
                self._admission_lost(gates, call, exc)
            raise
        return self._admitted_many(members, raw)

    def _settle_args(
        self, gates: Gates, items: Sequence[Settlement]
    ) -> tuple[list[str], list[str], list[_RedisHold]]:
        bulkhead, breaker = gates.bulkhead, gates.breaker
        keys: list[str] = []
        args = [self._now(), "0", "0", "", "0", "0", "0", "0", "0", str(len(items))]
        if bulkhead is not None:
            keys.append(self._lease_args(bulkhead)[0])
            args[1] = "1"
        if breaker is not None:
            key, prelude = self._breaker_args(breaker, ())
            keys.append(key)
            args[2] = "1"
            args[3:9] = prelude[1:7]
        released: list[_RedisHold] = []
        own: list[str] = []
        for item in items:
            holder = ""
            hold = item.hold
            if isinstance(hold, _RedisHold) and not hold._gone():
                holder = hold._holder
                released.append(hold)
            extra: tuple[str, ...] = ()
            if item.ticket is not None and breaker is not None:
                extra = _outcome_args(item.ticket, item.outcome, breaker, item.duration)
            own += [holder, str(len(extra)), *extra]
        args.append(admission.as_json(own))
        return keys, args, released

    def _settled(self, reply: list[str]) -> list[Transition | None]:
        raw: list[str] = json.loads(reply[0])
        found = []
        for i in range(0, len(raw), 9):
            reply = raw[i : i + 9]
            if reply[0] or reply[3]:
                replies.warn_if_reset(reply[8], "breaker", self.url)
            found.append(replies.transition(reply) if reply[3] == "1" else None)
        return found

    def settle_requests(self, gates: Gates, items: Sequence[Settlement]) -> list[Transition | None]:
        keys, args, released = self._settle_args(gates, items)
        try:
            raw = run(self._conn(), script("settle"), keys, args, self.url)
        except BaseException:
            for hold in released:
                hold._lost()  # cancelled by the next call on the bulkhead, for sure
            raise
        return self._settled(raw)

    async def asettle_requests(
        self, gates: Gates, items: Sequence[Settlement]
    ) -> list[Transition | None]:
        keys, args, released = self._settle_args(gates, items)
        try:
            if self._async.native():
                raw = await self._async.run(script("settle"), keys, args)
            else:
                conn = self._conn()
                raw = await anyio.to_thread.run_sync(
                    run, conn, script("settle"), keys, args, self.url
                )
        except BaseException:
            for hold in released:
                hold._lost()  # cancelled by the next call on the bulkhead, for sure
            raise
        return self._settled(raw)

    # -- administration ---------------------------------------------------------------------

    def _status_now(self, client: Client) -> float:
        if self.time_source == "client":
            return self._clock.time()
        seconds, micros = client.time()
        return int(seconds) + int(micros) / 1_000_000

    def _status(self, client: Client) -> list[PolicyStatus]:
        now = self._status_now(client)
        found: list[PolicyStatus] = []
        for key in client.scan_iter(match=store_pattern(self._prefix), count=1000):
            if ":r:" in _text(key):
                continue  # a reservation's receipt, not a policy
            raw = client.hgetall(key)
            fields = {_text(k): _text(v) for k, v in raw.items()}
            build = _STATUS.get(fields.get("kind", ""))
            if build is not None:
                found.append(build(fields, now))
        return sorted(found, key=lambda p: (p.kind, p.name, p.key or ""))

    def status(self) -> list[PolicyStatus]:
        return self._call(self._status)

    def _reset(self, client: Client, name: str) -> int:
        keys = list(client.scan_iter(match=policy_pattern(self._prefix, name), count=1000))
        # The same policy kept in an admission's group (see keys.py) lives under another tag.
        keys += client.scan_iter(match=grouped_pattern(self._prefix, name), count=1000)
        # Receipts go too, but only records count: a receipt is no state of its own.
        return sum(int(client.delete(k)) for k in keys if ":r:" not in _text(k))

    def reset(self, name: str) -> int:
        return self._call(lambda c: self._reset(c, name))

    def close(self) -> None:
        self._leases.close()
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        if self._async_clients is not None:
            await self._async_clients.aclose()
        await anyio.to_thread.run_sync(self.close)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _outcome_args(
    ticket: Ticket, outcome: int, spec: BreakerSpec, duration: float
) -> tuple[str, ...]:
    if outcome not in (0, 1, 2):
        raise ValueError(f"outcome must be SUCCESS, FAILURE or NEUTRAL, got {outcome!r}")
    generation, probe_id = ticket
    cfg = spec.config
    if not cfg.uses_window:
        return str(int(generation)), str(int(probe_id)), str(outcome)
    # breaker_record.lua's window arguments; '' for a rate that is off.
    return (
        str(int(generation)),
        str(int(probe_id)),
        str(outcome),
        fmt(duration),
        _optional(cfg.failure_rate_threshold),
        _optional(cfg.slow_call_duration),
        _optional(cfg.slow_call_rate_threshold),
        str(cfg.window_size),
        str(cfg.minimum_calls),
        fmt(cfg.bucket_width),
        str(cfg.window_buckets),
    )


def _optional(value: float | None) -> str:
    return "" if value is None else fmt(value)
