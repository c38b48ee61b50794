"""One request's admission and settlement in the file store, against the memory store.

    python3 benchmarks/bench_file_admission.py                 # ~20 s
    python3 benchmarks/bench_file_admission.py --rounds 7 --requests 20000

In process, no server: each request is ``Store.admit_request`` through the middleware's
gates (a per-client limit that never refuses, a bulkhead of 1,000, a breaker), then
``Store.settle_requests`` with a success, as ``ResilienceMiddleware`` does. Time is the
process's CPU time per request (a loaded machine's waits are not counted); the stores are
measured in interleaved rounds and each keeps its fastest. The file store lives in a
temporary directory on the system temp dir's file system.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from seawall import CircuitBreaker
from seawall._core.breaker import SUCCESS
from seawall.stores import FileStore, MemoryStore, Store
from seawall.stores._base import BulkheadSpec, Gates, LimiterSpec, Settlement, group_gates


def _gates() -> Gates:
    config = CircuitBreaker(name="bench", store=MemoryStore()).store_spec
    assert config is not None
    limit = LimiterSpec("bench-limit", 1e-6, 1e6, keyed=True)  # 1,000,000 per second
    return group_gates("bench", [limit], BulkheadSpec("bench-pool", 1000), config)


def _round(store: Store, gates: Gates, requests: int) -> float:
    began = time.process_time()
    for _ in range(requests):
        answer = store.admit_request(gates, "127.0.0.1")
        store.settle_requests(gates, [Settlement(answer.hold, answer.ticket, SUCCESS)])
    return (time.process_time() - began) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()
    gates = _gates()
    with tempfile.TemporaryDirectory() as tmp:
        stores: dict[str, Store] = {"memory": MemoryStore(), "file": FileStore(tmp + "/state")}
        best = dict.fromkeys(stores, float("inf"))
        for store in stores.values():
            _round(store, gates, 500)  # warm-up: files created, caches filled
        for _ in range(args.rounds):
            for name, store in stores.items():
                best[name] = min(best[name], _round(store, gates, args.requests))
        for store in stores.values():
            store.close()
    print(f"admit + settle, CPU us per request, best of {args.rounds} x {args.requests}")
    for name, seconds in best.items():
        print(f"{name:7s} {seconds * 1e6:7.1f}  x memory {seconds / best['memory']:5.2f}")


if __name__ == "__main__":
    main()
