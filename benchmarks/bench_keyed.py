"""KeyedRateLimiter at its key cap: the cost of a new key against a known key, same run.

    python3 benchmarks/bench_keyed.py            # 1k, 10k and 100k keys
    python3 benchmarks/bench_keyed.py --quick    # fewer calls

For each cap, the limiter is filled to ``max_keys`` keys that all carry quota (the fake clock
stands still), then four calls are timed, each over many calls in a row:

* known key refused: ``try_acquire`` of a held key whose bucket is empty (the baseline);
* new key refused: ``try_acquire`` of a key never seen (every slot carries quota);
* new key evicting: after the clock moves past every refill, each new key takes the place of
  a key whose bucket is full again;
* known key granted: a held key with tokens left, on a second limiter.

A flood of new clients must not cost more per request as the map grows: the ratio of
"new key refused" to "known key refused" should stay flat from 1k to 100k keys.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import time
from collections.abc import Callable

from seawall import KeyedRateLimiter
from seawall.testing import FakeClock


def per_call_ns(call: Callable[[], object], number: int, repeat: int) -> float:
    """The best of ``repeat`` runs of ``number`` calls, in nanoseconds per call."""
    best = float("inf")
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter_ns()
            for _ in range(number):
                call()
            best = min(best, (time.perf_counter_ns() - start) / number)
    finally:
        gc.enable()
    return best


def full_limiter(keys: int, clock: FakeClock) -> KeyedRateLimiter:
    keyed = KeyedRateLimiter(rate=1, per=3600.0, burst=1, max_keys=keys, clock=clock)
    for key in range(keys):
        keyed.try_acquire(key)
    return keyed


def measure(keys: int, number: int, repeat: int) -> dict[str, float]:
    clock = FakeClock()
    keyed = full_limiter(keys, clock)
    fresh = itertools.count(keys)
    figures = {
        "known key refused": per_call_ns(lambda: keyed.try_acquire(0), number, repeat),
        "new key refused": per_call_ns(lambda: keyed.try_acquire(next(fresh)), number, repeat),
    }
    assert len(keyed) == keys
    # Every bucket refills; each new key now evicts one (at most `keys` of them per round).
    evicting = min(number, keys // repeat)
    clock.advance(3600.0)
    figures["new key evicting"] = per_call_ns(
        lambda: keyed.try_acquire(next(fresh)), evicting, repeat
    )
    roomy = KeyedRateLimiter(rate=1e9, burst=1e9, max_keys=keys, clock=clock)
    roomy.try_acquire("client")
    figures["known key granted"] = per_call_ns(lambda: roomy.try_acquire("client"), number, repeat)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls per figure")
    args = parser.parse_args()
    number, repeat = (5_000, 3) if args.quick else (20_000, 5)
    rows = {keys: measure(keys, number, repeat) for keys in (1_000, 10_000, 100_000)}
    names = list(next(iter(rows.values())))
    print(f"{'ns per call':<22}" + "".join(f"{k:>12,} keys" for k in rows))
    for name in names:
        print(f"{name:<22}" + "".join(f"{rows[k][name]:>17,.0f}" for k in rows))
    ratio = "new/known refused"
    print(f"{ratio:<22}" + "".join(
        f"{rows[k]['new key refused'] / rows[k]['known key refused']:>16.1f}x" for k in rows
    ))  # fmt: skip


if __name__ == "__main__":
    main()
