"""A child process using one CircuitBreaker kept in a store (file or Redis).

Usage: shared_breaker_child.py URL NAME PROBE_AT

It asks the breaker once at start (the parent opened it), then once more at wall time
PROBE_AT (after the open period), keeping any probe it gets unsettled, and prints one JSON line:
{"first": "rejected"|"admitted", "second": "probe"|"rejected"}.
"""

from __future__ import annotations

import json
import sys
import time

from seawall import CircuitBreaker, CircuitOpenError
from seawall.stores import open_store


def ask(breaker: CircuitBreaker, admitted: str) -> str:
    try:
        breaker.admit()
    except CircuitOpenError:
        return "rejected"
    return admitted


def main() -> None:
    url, name, probe_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
    # A generous store timeout: a loaded machine must not turn a decision into a degraded one.
    store = open_store(url, timeout=5.0)
    breaker = CircuitBreaker(
        name=name, store=store, max_failures=1, reset_timeout=5.0, degraded="deny"
    )
    first = ask(breaker, "admitted")
    time.sleep(max(0.0, probe_at - time.time()))
    second = ask(breaker, "probe")
    print(json.dumps({"first": first, "second": second}), flush=True)


if __name__ == "__main__":
    main()
