"""What issue 14's switches add to an enforcing middleware's request path, line by line.

    python3 benchmarks/bench_asgi_switches.py
    python3 benchmarks/bench_asgi_switches.py --calls 200000 --rounds 5

Three lines of ``ResilienceMiddleware._guarded`` changed for keys, weighted limits and the
testing switch; each is timed beside the line it replaced, in interleaved rounds, keeping
the fastest round of each (a loaded machine's pauses only ever add time):

* the testing switch: ``OFF or (exempt ...)`` against ``exempt ...`` alone;
* the key: a sync-or-async dispatch through a local against a direct call;
* the cost: ``group.cost or group.weight(scope)`` against the constant 1.

Report-only mode and the websocket gate replace a whole path of their own instance, so an
enforcing middleware's HTTP path has no other new line to measure.
"""

from __future__ import annotations

import argparse
import timeit
from typing import Any

from seawall._gates import OFF
from seawall.asgi._limits import LimitGroup, parse_limits

PAIRS = (
    (
        "testing switch",
        "if m._exempt is not None and m._exempt(scope): pass",
        "if OFF or (m._exempt is not None and m._exempt(scope)): pass",
    ),
    (
        "key dispatch",
        "k = m._sync_key(scope)",
        "s = m._sync_key\nk = s(scope) if s is not None else None",
    ),
    ("cost", "c = 1", "c = g.cost or g.weight(scope)"),
)


class _Middleware:
    _exempt = None

    @staticmethod
    def _sync_key(scope: Any) -> str:
        return "192.0.2.1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    group = LimitGroup("default", parse_limits("rate_limit", "100/minute"), max_keys=1, clock=None)
    names = {"OFF": OFF, "m": _Middleware(), "scope": {"path": "/"}, "g": group}
    print(f"fastest of {args.rounds} interleaved rounds x {args.calls} runs, ns per run")
    print(f"{'line':<16}{'before':>8}{'after':>8}{'added':>8}")
    for label, before, after in PAIRS:
        old: list[float] = []
        new: list[float] = []
        for _ in range(args.rounds):
            old.append(timeit.timeit(before, globals=names, number=args.calls))
            new.append(timeit.timeit(after, globals=names, number=args.calls))
        a, b = min(old) / args.calls * 1e9, min(new) / args.calls * 1e9
        print(f"{label:<16}{a:8.1f}{b:8.1f}{b - a:+8.1f}")


if __name__ == "__main__":
    main()
