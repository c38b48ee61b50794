"""Instructions per request under uvicorn, counted by valgrind: what other jobs cannot move.

    python3 benchmarks/bench_asgi_instructions.py                    # ~6 minutes, 2 cores
    python3 benchmarks/bench_asgi_instructions.py --only seawall-limit asgi-ratelimit

``bench_asgi.py`` measures time under load, which on a shared machine moves by 10-20 %
between runs; this counts the instructions the uvicorn process executes per request
(``valgrind --tool=callgrind``, ``apt-get install -y valgrind``), which do not depend on the
machine's load. Each variant of ``bench_asgi.py`` (the same app module) is served by one
uvicorn worker running under callgrind, and sent ``--few`` then ``--many`` sequential
keep-alive requests by a client outside valgrind, in two runs; the difference between the
runs' totals divided by the difference in requests is one request's cost, start-up and
shutdown cancelled out. Ratios are to bare Starlette's count in the same invocation.

An instruction is a proxy, not a time: Python's interpreter retires fewer instructions per
cycle than the C code of the HTTP parser and the event loop, so a middleware's share of the
time is larger than its share of the instructions (``bench_asgi.py`` gives the time).
Variants using a store need it running (``bench_asgi.py`` starts one), so only the memory
variants are offered here.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = [
    "bare",
    "seawall-limit",
    "seawall",
    "seawall-429",
    "seawall-limit-noheaders",
    "seawall-noheaders",
    "floor-send",
    "floor-fields",
    "asgi-ratelimit",
]
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _connect(port: int, process: subprocess.Popen[bytes]) -> socket.socket:
    deadline = time.monotonic() + 120  # uvicorn starts slowly under valgrind
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited: {process.stderr.read()!r}")  # type: ignore[union-attr]
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=60)
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("uvicorn did not start under valgrind")


def _read_response(conn: socket.socket, buffer: bytes) -> bytes:
    """Read one response (headers and its Content-Length body); returns what is left over."""
    while b"\r\n\r\n" not in buffer:
        buffer += _recv(conn)
    head, _, rest = buffer.partition(b"\r\n\r\n")
    found = re.search(rb"(?i)content-length:\s*(\d+)", head)
    length = int(found.group(1)) if found else 0
    while len(rest) < length:
        rest += _recv(conn)
    return rest[length:]


def _recv(conn: socket.socket) -> bytes:
    chunk = conn.recv(65536)
    if not chunk:
        raise RuntimeError("the server closed the connection")
    return chunk


def count(variant: str, requests: int, workdir: Path) -> int:
    """Instructions uvicorn executed from start to exit, serving ``requests`` requests."""
    port = _free_port()
    out = workdir / f"callgrind.{variant}.{requests}"
    env = {**os.environ, "SEAWALL_BENCH_VARIANT": variant}
    process = subprocess.Popen(
        [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "bench_asgi:create",
            "--factory", "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            "--log-level", "warning",
        ],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        with _connect(port, process) as conn:
            left = b""
            for _ in range(requests):
                conn.sendall(REQUEST)
                left = _read_response(conn, left)
    finally:
        process.send_signal(2)  # SIGINT: uvicorn shuts down and callgrind writes its file
        process.wait(timeout=120)
    summary = re.search(r"^summary:\s*(\d+)", out.read_text(), re.MULTILINE)
    if summary is None:
        raise RuntimeError(f"{variant}: no callgrind summary in {out}")
    return int(summary.group(1))


def per_request(variant: str, few: int, many: int, workdir: Path) -> float:
    return (count(variant, many, workdir) - count(variant, few, workdir)) / (many - few)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=VARIANTS, help="variants to run (+ bare)")
    parser.add_argument("--few", type=int, default=200)
    parser.add_argument("--many", type=int, default=1200)
    parser.add_argument("--jobs", type=int, default=2, help="variants counted at once")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install -y valgrind)")
    wanted = set(args.only or VARIANTS) | {"bare"}
    variants = [v for v in VARIANTS if v in wanted]
    with (
        tempfile.TemporaryDirectory(prefix="seawall-instr-") as tmp,
        concurrent.futures.ThreadPoolExecutor(args.jobs) as pool,
    ):
        jobs = {v: pool.submit(per_request, v, args.few, args.many, Path(tmp)) for v in variants}
        counts = {v: job.result() for v, job in jobs.items()}
    bare = counts["bare"]
    print(f"uvicorn 1 worker, sequential keep-alive requests, {args.many} - {args.few} requests")
    print(f"{'variant':<26}{'instructions/request':>22}{'over bare':>11}{'bare / variant':>16}")
    for variant, instructions in counts.items():
        print(
            f"{variant:<26}{instructions:>22,.0f}{instructions - bare:>+11,.0f}"
            f"{bare / instructions:>16.3f}"
        )


if __name__ == "__main__":
    main()
