"""A worker process sharing RedisStore state with its siblings (for test_store_redis_procs).

Usage: ``python redis_store_worker.py MODE URL NAME [ARGS...]``; prints one JSON line.

* ``limiter URL NAME SECONDS``: reserve without waiting until SECONDS pass; report grants
  and the wall time of the first and last decision.
* ``bulkhead URL NAME SECONDS``: hold slots of a 3-slot bulkhead briefly, counting holders
  with a separate Redis counter; report holds and the most ever held at once.
* ``hold URL NAME LEASE``: take one slot with a LEASE-second lease, print, and sleep.
* ``probe URL NAME AT``: admit once now and once at wall time AT; report both answers.
"""

from __future__ import annotations

import json
import sys
import time

import redis

from seawall._core.breaker import BreakerConfig
from seawall.stores._base import BreakerSpec, BulkheadSpec, LimiterSpec
from seawall.stores._redis.store import RedisStore

BREAKER = BreakerConfig(1, 5.0, 1, 1, 30.0, None, None, None, 10, 10)


def limiter(store: RedisStore, name: str, seconds: float) -> dict[str, object]:
    spec = LimiterSpec(name, 1 / 50, 10.0)
    grants, first, last = 0, time.time(), 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if store.reserve(spec, None, 1, 0.0).wait == 0.0:
            grants += 1
        last = time.time()
    return {"grants": grants, "first": first, "last": last}


def bulkhead(store: RedisStore, url: str, name: str, seconds: float) -> dict[str, object]:
    spec = BulkheadSpec(name, 3, lease=10.0)
    counter = redis.Redis.from_url(url)
    holds, most = 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        hold = store.try_hold(spec)
        if hold is None:
            continue
        holds += 1
        most = max(most, int(counter.incr(f"{name}:active")))
        time.sleep(0.002)
        counter.decr(f"{name}:active")
        hold.release()
    return {"holds": holds, "most": most}


def main() -> None:
    mode, url, name, arg = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    store = RedisStore(url, timeout=5.0)
    if mode == "limiter":
        out = limiter(store, name, arg)
    elif mode == "bulkhead":
        out = bulkhead(store, url, name, arg)
    elif mode == "hold":
        hold = store.try_hold(BulkheadSpec(name, 1, lease=arg))
        print(json.dumps({"slot": None if hold is None else hold.slot}), flush=True)
        time.sleep(3600)
        return
    else:
        spec = BreakerSpec(name, BREAKER)
        before = store.admit(spec)[0]
        time.sleep(max(0.0, arg - time.time()))
        after = store.admit(spec)[0]
        out = {"before": before, "after": after}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
