"""One process of a fleet sharing a RetryBudget: count calls, then ask for retries.

argv: store URL, budget name, calls to record, retries to ask for, the wall time to start
at (all children start together). Prints how many retries the shared budget granted.
"""

from __future__ import annotations

import sys
import time

from seawall import RetryBudget
from seawall.stores import open_store


def main() -> None:
    url, name, calls, retries, start_at = sys.argv[1:6]
    store = open_store(url, timeout=5.0)
    # minimum_per_second * window = 5 retries saved; the floor adds one per 100 s, so no
    # whole token comes back while the children run.
    budget = RetryBudget(
        ratio=0.5, minimum_per_second=0.01, window=500, store=store, name=name, degraded="deny"
    )
    for _ in range(int(calls)):
        budget.record_call()
    time.sleep(max(0.0, float(start_at) - time.time()))
    granted = sum(budget.try_retry() for _ in range(int(retries)))
    assert budget.degraded_decisions == 0
    store.close()
    print(granted)


if __name__ == "__main__":
    main()
