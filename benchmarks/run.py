"""Run every benchmark in this folder, one after another, and print their tables.

    python3 benchmarks/run.py              # all of them
    python3 benchmarks/run.py breaker      # only bench_breaker.py (names match by substring)

Benchmarks are never part of the test suite: they print figures (ratios against baselines
measured in the same run) for the docs and the changelog, and never fail on a timing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    scripts = sorted(here.glob("bench_*.py"))
    wanted = [s for s in scripts if not argv or any(word in s.stem for word in argv)]
    status = 0
    for script in wanted:
        print(f"\n### {script.name}\n", flush=True)
        status |= subprocess.call([sys.executable, str(script)])
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
