"""Instructions per request through httpx with ResilientTransport, counted by valgrind.

    python3 benchmarks/bench_httpx_instructions.py                  # ~10 minutes, 2 cores
    python3 benchmarks/bench_httpx_instructions.py --only plain standard --kinds sync

``bench_httpx.py mock`` times the same requests, and on a shared machine its ratios move by a
few hundredths between runs; this counts the instructions the process executes per request
(``valgrind --tool=callgrind``, ``apt-get install -y valgrind``), which the machine's load does
not move. Each configuration sends ``--few`` then ``--many`` requests through one
``httpx.Client`` (or ``httpx.AsyncClient`` on asyncio) over ``httpx.MockTransport``, in two runs
under callgrind; the difference between the totals divided by the difference in requests is
one request's cost, start-up cancelled out. Each line gives what a configuration adds to the
plain transport.

Configurations: ``plain`` (the MockTransport alone), ``standard`` (``ResilientTransport()``),
the standard pipeline with one part switched off (``no-bulkhead``, ``no-breaker``,
``no-timeouts``), with every part off (``skeleton``: what the transport and its engine cost
alone), and httpx-retries if installed.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from typing import Any

CONFIGS = ["plain", "standard", "no-bulkhead", "no-breaker", "no-timeouts", "skeleton"]
CONFIGS += ["httpx-retries"]


def _transport(config: str) -> Any:
    import httpx

    from seawall.httpx import ResilientTransport

    inner = httpx.MockTransport(lambda request: httpx.Response(200, content=b"ok"))
    if config == "plain":
        return inner
    if config == "httpx-retries":
        import httpx_retries

        return httpx_retries.RetryTransport(inner, retry=httpx_retries.Retry(total=3))
    off: dict[str, Any] = {
        "standard": {},
        "no-bulkhead": {"bulkhead": None},
        "no-breaker": {"breaker": None},
        "no-timeouts": {"timeout": None, "attempt_timeout": None},
        "skeleton": {
            "bulkhead": None, "breaker": None, "retry": None, "timeout": None,
            "attempt_timeout": None,
        },
    }[config]  # fmt: skip
    return ResilientTransport(inner, **off)


def _send(config: str, kind: str, requests: int) -> None:
    """The child: ``requests`` GETs through one client (run under callgrind)."""
    import httpx

    if kind == "sync":
        with httpx.Client(transport=_transport(config)) as client:
            for _ in range(requests):
                client.get("http://upstream.test/")
        return

    async def main() -> None:
        async with httpx.AsyncClient(transport=_transport(config)) as client:
            for _ in range(requests):
                await client.get("http://upstream.test/")

    asyncio.run(main())


def _count(config: str, kind: str, requests: int) -> int:
    out = subprocess.run(
        [
            "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
            sys.executable, __file__, "--child", config, kind, str(requests),
        ],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"{config} {kind}: no count from callgrind:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def per_request(config: str, kind: str, few: int, many: int) -> float:
    """Instructions per request: the difference of two runs over the difference in requests."""
    return (_count(config, kind, many) - _count(config, kind, few)) / (many - few)


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        _send(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=CONFIGS, help="configurations (+ plain)")
    parser.add_argument("--kinds", nargs="*", choices=["sync", "async"], default=["sync", "async"])
    parser.add_argument("--few", type=int, default=200)
    parser.add_argument("--many", type=int, default=2200)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install -y valgrind)")
    wanted = set(args.only or CONFIGS) | {"plain"}
    configs = [c for c in CONFIGS if c in wanted]
    if importlib.util.find_spec("httpx_retries") is None and "httpx-retries" in configs:
        configs.remove("httpx-retries")
    jobs = [(c, k) for k in args.kinds for c in configs]

    def count(job: tuple[str, str]) -> float:
        return per_request(*job, args.few, args.many)

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = dict(zip(jobs, pool.map(count, jobs), strict=True))
    print(f"instructions per request (callgrind, ({args.many} - {args.few}) requests)")
    for kind in args.kinds:
        plain = counts["plain", kind]
        print(f"{kind}: plain httpx.MockTransport {plain:,.0f}")
        for config in configs[1:]:
            added = counts[config, kind] - plain
            print(f"  {config:<16}{added:>+10,.0f}  ({plain / counts[config, kind]:.3f} of plain)")


if __name__ == "__main__":
    main()
