"""``seawall heartbeat check FILE --max-age S``: a liveness probe for containers.

Exit status: 0 alive, 1 stale or stopped, 2 missing or unreadable. One line says why: on
stdout for a verdict (alive, stale, stopped), on stderr with the ``seawall heartbeat check:``
prefix every seawall error carries when there is no verdict to give (missing, unreadable). The
command drops straight into a Docker ``HEALTHCHECK`` or a Kubernetes exec probe.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .._clock import SYSTEM_CLOCK, Clock
from .._core.validate import check_number
from .._heartbeat_file import read_state

__all__ = ["check", "register"]

ALIVE, DEAD, UNKNOWN = 0, 1, 2

_DESCRIPTION = """\
Inspect the heartbeat files seawall.Heartbeat writes. One action: check, a
liveness probe for containers (exit 0 alive, 1 stale or stopped, 2 missing)."""

_CHECK_DESCRIPTION = """\
Check that the process writing FILE (a seawall.Heartbeat) is alive: exit 0 if
its last beat is at most --max-age seconds old, 1 if it is older or the
heartbeat was stopped cleanly, 2 if FILE is missing or is not a heartbeat file.
One line says why, so the command works as a container health check."""

_CHECK_EXAMPLE = """\
example:
  $ seawall heartbeat check /run/app/heartbeat.json --max-age 30
  alive: last beat from pid 42 on web-1 was 3.2s ago (max age 30s)

in a Dockerfile:
  HEALTHCHECK CMD ["seawall", "heartbeat", "check", "/run/app/heartbeat.json"]"""


def register(subparsers: Any) -> None:
    """Attach ``heartbeat check`` to the ``seawall`` command line."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "heartbeat",
        help="probe a heartbeat file written by seawall.Heartbeat",
        description=_DESCRIPTION,
        epilog=_CHECK_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(
        dest="heartbeat_command", required=True, metavar="ACTION", title="actions"
    )
    check_parser = actions.add_parser(
        "check",
        help="exit 0 if FILE holds a fresh beat, 1 if stale or stopped, 2 if missing/unreadable",
        description=_CHECK_DESCRIPTION,
        epilog=_CHECK_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected seconds above 0, got {text!r}") from None


def _run_check(args: argparse.Namespace) -> int:
    status, message = check(args.file, args.max_age)
    if status == UNKNOWN:  # no verdict: an error, reported as every seawall error is
        print(f"seawall heartbeat check: {message}", file=sys.stderr, flush=True)
    else:
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
