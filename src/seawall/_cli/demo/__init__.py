"""``seawall demo``: a protected service, a misbehaving upstream, and traffic, for real.

Two uvicorn servers on loopback ports: an upstream quote service that misbehaves on a
schedule (slow, a 5xx burst, 429 with Retry-After, stalled, recovered) and a Starlette app
behind :class:`~seawall.asgi.ResilienceMiddleware` that calls it through
:class:`~seawall.httpx.ResilientTransport`. Simulated clients drive traffic at the service;
the terminal shows what each policy does as it happens, then the service shuts down
gracefully and a summary gives the run's exact counts. Needs the ``demo`` extra (starlette,
uvicorn, httpx).

``--adaptive`` runs another scene (:mod:`._adaptive`): an upstream whose latency grows with
load, a service that sheds by priority under an adaptive concurrency limit, and a crowd that
overloads it, then leaves.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from typing import TYPE_CHECKING, Any, TextIO

from ..._errors import StoreError
from ._narration import SHED_ORDER

if TYPE_CHECKING:
    from ...stores._base import Store
    from ._display import AdaptiveStatus
    from ._run import DemoResult

__all__ = ["register", "run_demo", "summary_lines"]

_EXTRA = ("starlette", "uvicorn", "httpx")

_DESCRIPTION = """\
Run a protected service against a misbehaving upstream, for real, and watch
each policy act: an upstream quote service (uvicorn, loopback) turns slow,
fails, answers 429, stalls and recovers on a schedule; the service in front of
it (ResilienceMiddleware, ResilientTransport) limits, sheds, retries, degrades,
trips and recovers its breakers while simulated clients call it. Each phase
says what it shows and why; a summary gives the exact counts at the end.
Needs the demo extra: python3 -m pip install -e '.[demo]'"""

_EXAMPLES = """\
examples:
  seawall demo                           # 24 s of traffic, live
  seawall demo --duration 10 > demo.log  # a log: plain lines, one a second
  seawall demo --workers 3 --store redis://localhost:6379/0
  seawall demo --adaptive                # adaptive limit, shedding by priority

Ctrl-C ends the traffic early; the service still shuts down gracefully and the
summary covers what ran. Exit status: 0 when every request is accounted for and
the service's counts equal the clients'; 1 when they do not; 2 for a bad
option or store; 130 after Ctrl-C."""

_ROWS = (
    ("requests sent", None),
    ("served fresh", "fresh"),
    ("served degraded (fallback)", "degraded"),
    ("429 rate limited", "rate_limited"),
    ("503 shed (bulkhead full)", "overloaded"),
    ("503 circuit open", "circuit_open"),
    ("504 timeout", "timeout"),
    ("errors", "error"),
)

_ADAPTIVE_ROWS = (
    ("served", "fresh"),
    ("503 shed (adaptive limit)", "overloaded"),
    ("504 timeout", "timeout"),
    ("errors", "error"),
)


def register(subparsers: Any) -> None:
    """Add ``seawall demo`` to the command line."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run a protected service against a misbehaving upstream and show each policy",
        description=_DESCRIPTION,
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=24.0,
        metavar="S",
        help="seconds of traffic, 5 to 55 (default 24)",
    )
    parser.add_argument(
        "--store",
        default="memory://",
        metavar="URL",
        help="where the breakers and the host limiter keep state: memory:// (default), "
        "file:///dir, redis://host:port/db",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="run the service as N processes sharing the store (1 to 8; with memory://, "
        "a temporary file store is used)",
    )
    parser.add_argument(
        "--seed", type=int, default=7, metavar="N", help="seed for prices and retry jitter"
    )
    parser.add_argument(
        "--backend",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="event loop of the clients and the run (default asyncio); uvicorn itself "
        "always serves on asyncio",
    )
    parser.add_argument(
        "--adaptive",
        action="store_true",
        help="show adaptive concurrency instead: the service sheds by priority under a limit "
        "learned from latency while a crowd overloads it (one process: not with --workers or "
        "--store)",
    )
    parser.set_defaults(handler=_command)


def _command(args: argparse.Namespace) -> int:
    return run_demo(
        duration=args.duration,
        store=args.store,
        seed=args.seed,
        workers=args.workers,
        backend=args.backend,
        adaptive=args.adaptive,
    )


def run_demo(
    out: TextIO | None = None,
    *,
    duration: float = 24.0,
    store: str = "memory://",
    seed: int = 7,
    workers: int = 1,
    live: bool | None = None,
    backend: str = "asyncio",
    adaptive: bool = False,
) -> int:
    """Run the demo, print it to ``out`` (stdout); 0 when the run's counts add up, else 1.

    Ctrl-C ends the traffic early; the service still shuts down gracefully, the summary
    covers what ran, and the status is 130.

    ``workers`` above 1 runs the service as that many processes sharing ``store`` (a
    temporary file store when ``store`` is ``memory://``). ``live`` (default: whether ``out``
    is a terminal) redraws the status block in place. ``backend`` (``"asyncio"`` or
    ``"trio"``) runs the clients and the run on that event loop. ``adaptive`` runs the
    adaptive concurrency demo (one process, in-process state: not with ``workers`` above 1 or
    another store). Bad arguments, a missing extra and a store that cannot be used print a
    one-line message on stderr and return 2.
    """
    out = sys.stdout if out is None else out
    with contextlib.ExitStack() as cleanup:
        try:
            from ._run import run
            from ._schedule import build_schedule

            build_schedule(duration)  # check the arguments before starting anything
            _check_backend(backend)
            _check_adaptive(adaptive, _check_workers(workers), store)
            opened = _open(store, workers, cleanup)
        except (ImportError, TypeError, ValueError, StoreError) as exc:
            print(f"seawall demo: {_explain(exc)}", file=sys.stderr)
            return 2
        import anyio

        if live is None:
            live = out.isatty()
        try:
            result = anyio.run(
                lambda: run(
                    out,
                    duration=duration,
                    store=opened,
                    seed=seed,
                    live=live,
                    workers=workers,
                    adaptive=adaptive,
                ),
                backend=backend,
            )
        except StoreError as exc:  # the store refused the demo's first reset: nothing ran
            print(f"seawall demo: cannot use the store: {exc}", file=sys.stderr)
            return 2
    out.write("\n".join(summary_lines(result)) + "\n")
    out.flush()
    if result.interrupted_at is not None:
        print(
            f"seawall demo: interrupted after {result.interrupted_at:.1f} s of traffic",
            file=sys.stderr,
        )
        return 130
    return 0 if result.consistent else 1


def _check_workers(workers: int) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 8:
        raise ValueError(f"workers must be an integer from 1 to 8, got {workers!r}")
    return workers


def _check_adaptive(adaptive: bool, workers: int, store: str) -> None:
    # An adaptive limit is learned by each process from its own requests: there is nothing
    # for worker processes or a store to share.
    if adaptive and workers > 1:
        raise ValueError(
            f"--adaptive runs the service in one process (each process learns its own "
            f"limit): it cannot be used with --workers {workers}"
        )
    if adaptive and store.lower() != "memory://":  # (not echoed: a URL may hold a password)
        raise ValueError(
            "--adaptive keeps its state in the process: it cannot be used with --store"
        )


def _open(url: str, workers: int, cleanup: contextlib.ExitStack) -> Store | None:
    if url.lower() == "memory://" and workers == 1:
        return None  # in-process state: nothing to open
    from ...stores import open_store

    if url.lower() != "memory://":
        return open_store(url, timeout=0.5)
    # Several processes need a shared store: a file store in a directory of our own.
    directory = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="seawall-demo-"))
    return open_store(f"file://{directory}", timeout=0.5)


def _check_backend(backend: str) -> None:
    if backend not in ("asyncio", "trio"):
        raise ValueError(f"backend must be 'asyncio' or 'trio', got {backend!r}")
    if backend == "trio":
        import trio  # noqa: F401  (ImportError: the trio extra is missing)


def _explain(exc: Exception) -> str:
    if isinstance(exc, ImportError) and exc.name in _EXTRA:
        return f"{exc}; install the extra: python3 -m pip install 'seawall[demo]'"
    if isinstance(exc, ImportError) and exc.name == "trio":
        return f"{exc}; install the extra: python3 -m pip install 'seawall[trio]'"
    return str(exc)


def summary_lines(result: DemoResult) -> list[str]:
    """The summary block of one run."""
    lines = ["", "== summary =="]
    if result.interrupted_at is not None:
        lines.append(
            f"  (interrupted after {result.interrupted_at:.1f} s: the counts cover what ran)"
        )
    if result.adaptive is not None:
        return lines + _adaptive_lines(result, result.adaptive)
    for label, key in _ROWS:
        value = result.sent if key is None else result.seen[key]
        lines.append(f"  {label:34} {value}")
    lines.append(f"  {'upstream retries':34} {result.retries}")
    lines.append(f"  {'upstream responses':34} {sum(result.upstream.values())}")
    lines.append(f"  {'store degraded decisions':34} {result.degraded_decisions}")
    for name in sorted(result.final_states):
        lines.append(f"  {name + ' trips':34} {result.count(name, 'CLOSED', 'OPEN')}")
        lines.append(f"  {name + ' recoveries':34} {result.count(name, 'HALF_OPEN', 'CLOSED')}")
    lines.append(f"  {'shutdown callbacks run':34} {len(result.shutdown_ran)}")
    statuses = ", ".join(f"{code}: {n}" for code, n in result.upstream.items())
    lines.append(f"upstream answered by status: {statuses}")
    states = ", ".join(f"{name} {state}" for name, state in sorted(result.final_states.items()))
    lines.append(f"breakers at the end: {states}")
    lines.append(_verdict(result))
    return lines


def _adaptive_lines(result: DemoResult, adaptive: AdaptiveStatus) -> list[str]:
    lines = [f"  {label:34} {value}" for label, value in _adaptive_rows(result, adaptive)]
    lines.append(f"  {'shutdown callbacks run':34} {len(result.shutdown_ran)}")
    seen = ", ".join(f"{p} {result.shed_seen.get(p, 0)}" for p in SHED_ORDER)
    lines.append(f"shed 503s the clients got, by priority: {seen}")
    lines.append(f"adaptive limit: {adaptive.first} at the start, {adaptive.limit} at the end")
    lines.append(_verdict(result))
    return lines


def _adaptive_rows(result: DemoResult, adaptive: AdaptiveStatus) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = [("requests sent", result.sent)]
    rows += [(label, result.seen[key]) for label, key in _ADAPTIVE_ROWS]
    # From the bulkhead's own events (Rejected, AdaptiveBulkheadChanged), not from the clients.
    rows += [(f"{p} shed", adaptive.shed.get(p, 0)) for p in SHED_ORDER]
    rows += [("lowest limit", adaptive.lowest), ("highest limit", adaptive.highest)]
    rows.append(("upstream responses", sum(result.upstream.values())))
    return rows


def _verdict(result: DemoResult) -> str:
    verdict = "yes" if result.consistent else "NO (a bug: please report it)"
    return f"every request accounted for, service and clients agree: {verdict}"
