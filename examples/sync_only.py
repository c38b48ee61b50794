"""seawall from plain threads: no event loop anywhere.

A rate limiter, a circuit breaker and a bulkhead shared by several threads, with the exact
outcomes they guarantee. Run it::

    python examples/sync_only.py                       # 4 threads
    python examples/sync_only.py --threads 8 --reset-timeout 0.5
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from collections.abc import Callable

from seawall import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitOpenError,
    RateLimiter,
)


def run_threads(count: int, target: Callable[[], None]) -> None:
    """Start ``count`` threads running ``target`` and wait for all of them."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def limiter_demo(threads: int, tries: int) -> None:
    """Every thread tries ``tries`` times; exactly ``burst`` tries pass in total."""
    limiter = RateLimiter(rate=5, per=3600, burst=5)  # 5 at once, then 5 an hour
    granted = []  # list.append is atomic: no lock needed for the tally

    def client() -> None:
        for _ in range(tries):
            granted.append(limiter.try_acquire())

    run_threads(threads, client)
    print(f"limiter: {granted.count(True)} granted, {granted.count(False)} refused")


def down() -> None:
    raise ConnectionError("dependency down")


def breaker_demo(threads: int, reset_timeout: float) -> None:
    """Open after 3 failures; refuse everyone; then exactly one probe while half-open."""
    breaker = CircuitBreaker(max_failures=3, reset_timeout=reset_timeout, name="dependency")
    for _ in range(3):
        with contextlib.suppress(ConnectionError):
            breaker.call(down)
    refused = threading.Semaphore(0)

    def caller() -> None:
        try:
            breaker.call(lambda: None)
        except CircuitOpenError:
            refused.release()

    run_threads(threads, caller)
    print(f"breaker: {breaker.state.name} after 3 failures, {breaker.stats.rejected_calls} refused")

    time.sleep(reset_timeout)  # real time: the open period is over, probes may go
    release = threading.Event()

    def probe() -> None:
        release.wait(timeout=30)  # the probe is in flight while the others arrive

    def prober() -> None:
        try:
            breaker.call(probe)
        except CircuitOpenError:
            refused.release()

    workers = [threading.Thread(target=prober) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for _ in range(threads - 1):  # everyone but the probe is refused at once
        refused.acquire(timeout=30)
    release.set()
    for worker in workers:
        worker.join()
    stats = breaker.stats
    print(
        f"breaker: half-open let {stats.successful_calls} probe through,"
        f" {stats.rejected_calls - threads} refused, now {stats.state.name}"
    )


def bulkhead_demo(threads: int, size: int) -> None:
    """``size`` threads get a slot and hold it; the others are refused at once."""
    bulkhead = Bulkhead(max_concurrent=size)  # max_wait=0: refuse instead of queueing
    admitted, refused = threading.Semaphore(0), threading.Semaphore(0)
    release = threading.Event()

    def caller() -> None:
        try:
            with bulkhead:
                admitted.release()
                release.wait(timeout=30)
        except BulkheadFullError:
            refused.release()

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for _ in range(size):
        admitted.acquire(timeout=30)
    for _ in range(threads - size):
        refused.acquire(timeout=30)
    release.set()
    for worker in workers:
        worker.join()
    stats = bulkhead.stats
    print(f"bulkhead: {stats.total_admitted} admitted, {stats.total_rejected} refused, size {size}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--reset-timeout", type=float, default=0.2)
    args = parser.parse_args()
    limiter_demo(args.threads, tries=3)
    breaker_demo(args.threads, args.reset_timeout)
    bulkhead_demo(args.threads, size=2)


if __name__ == "__main__":
    main()
