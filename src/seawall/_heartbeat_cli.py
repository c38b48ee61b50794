"""``seawall heartbeat check FILE --max-age S``: a liveness probe for containers.

Exit status: 0 alive, 1 stale or stopped, 2 missing or unreadable. One line on stdout says why,
so the command drops straight into a Docker ``HEALTHCHECK`` or a Kubernetes exec probe.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ._clock import SYSTEM_CLOCK, Clock
from ._heartbeat_file import read_state
from ._validate import check_number

__all__ = ["check", "register"]

ALIVE, DEAD, UNKNOWN = 0, 1, 2


def register(subparsers: Any) -> None:
    """Attach ``heartbeat check`` to the ``seawall`` command line."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "heartbeat", help="inspect heartbeat files written by seawall.Heartbeat"
    )
    actions = parser.add_subparsers(dest="heartbeat_command", required=True, metavar="ACTION")
    check_parser = actions.add_parser(
        "check",
        help="exit 0 if FILE holds a fresh beat, 1 if stale or stopped, 2 if missing/unreadable",
    )
    check_parser.add_argument("file", metavar="FILE", help="the heartbeat file")
    check_parser.add_argument(
        "--max-age",
        type=_positive_seconds,
        default=30.0,
        metavar="S",
        help="oldest acceptable beat, in seconds (default: 30)",
    )
    check_parser.set_defaults(handler=lambda args: _run_check(args))


def _positive_seconds(text: str) -> float:
    try:
        return check_number("--max-age", float(text))
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _run_check(args: argparse.Namespace) -> int:
    status, message = check(args.file, args.max_age)
    print(message, flush=True)
    return status


def check(
    path: str | os.PathLike[str], max_age: float, *, clock: Clock | None = None
) -> tuple[int, str]:
    """The probe's exit status and its one-line reason for ``path``."""
    name = os.fspath(path)
    if not os.path.lexists(name):
        return UNKNOWN, f"missing: {name} does not exist"
    state = read_state(name)
    if state is None:
        return UNKNOWN, f"unreadable: {name} is not a readable heartbeat file"
    age = state.age((clock or SYSTEM_CLOCK).time())
    who = f"pid {state.pid} on {state.hostname}"
    if state.stopped:
        return DEAD, f"stopped: {who} stopped its heartbeat cleanly {age:.1f}s ago"
    if age > max_age:
        return DEAD, f"stale: last beat from {who} was {age:.1f}s ago (max age {max_age:g}s)"
    return ALIVE, f"alive: last beat from {who} was {age:.1f}s ago (max age {max_age:g}s)"
