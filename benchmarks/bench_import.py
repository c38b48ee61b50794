"""What ``import seawall`` costs a fresh process, against ``import anyio`` and an empty one.

Run: ``python3 benchmarks/bench_import.py`` (about 10-20 s on 2 cores).

Each figure is the median wall time of whole ``python -c ...`` processes, the three commands
taking turns so that a busy moment of a shared machine hits each of them alike. The table gives
each command's time and the import's own cost (its time less the empty process's), and the
ratios asked of seawall: ``import seawall`` against ``import anyio`` (whole processes), and the
cost of a first policy (``from seawall import CircuitBreaker``) for comparison.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

ROUNDS = 25
COMMANDS = {
    "python -c pass": "pass",
    "import anyio": "import anyio",
    "import seawall": "import seawall",
    "from seawall import CircuitBreaker": "from seawall import CircuitBreaker",
    "from seawall import RateLimiter": "from seawall import RateLimiter",
}


def _once(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> None:
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for code in COMMANDS.values():  # warm the OS caches and the bytecode files once
        _once(code)
    for _ in range(ROUNDS):
        for name, code in COMMANDS.items():
            samples[name].append(_once(code))
    medians = {name: statistics.median(times) for name, times in samples.items()}
    bare = medians["python -c pass"]
    print(f"{'command':<38}{'median ms':>10}{'import ms':>10}")
    for name, value in medians.items():
        print(f"{name:<38}{value * 1e3:>10.1f}{(value - bare) * 1e3:>10.1f}")
    anyio_, seawall = medians["import anyio"], medians["import seawall"]
    print()
    print(f"import seawall / import anyio (whole processes): {seawall / anyio_:.2f}")
    print(f"import seawall / python -c pass: {seawall / bare:.2f}")


if __name__ == "__main__":
    main()
