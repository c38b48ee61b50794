"""``seawall status`` and ``seawall reset``: look at, and clear, the policy state in a store.

The store is named by ``--store URL``, else by the ``SEAWALL_STORE`` environment variable.
The in-process memory store is refused: it lives and dies with one process, so another
process (this command) has nothing to read in it.

Exit status: 0 done; 1 ``reset`` found nothing of that name; 2 bad usage, a bad URL, or a
store that cannot be reached or refuses us (the message names the URL). Every URL printed,
on stdout or stderr, shows a password as ``***``.

``status --json`` prints one document with a stable shape::

    {"store": "<url, password shown as ***>",
     "policies": [{"kind": "breaker" | "limiter" | "bulkhead",
                   "name": "<policy name>",
                   "key": "<key>" | null,
                   "state": {<what the store reports for that kind>}}, ...]}

sorted by (kind, name, key). See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .._errors import StoreError
from .._redact import redact_url

if TYPE_CHECKING:
    from ..stores import PolicyStatus, Store

__all__ = ["ENV_VAR", "format_table", "register", "status_document"]

ENV_VAR = "SEAWALL_STORE"

# The field that leads each kind's line (the first one present); the others follow as
# name=value. A bulkhead's line reads "held/capacity".
_HEADLINE = {"breaker": ("state",), "limiter": ("tokens",), "bulkhead": ("held", "holders")}
_CAPACITY = ("slots", "max_concurrent")


_STATUS_DESCRIPTION = """\
List every policy (and every key of a keyed limiter) kept in a file or Redis
store, with its state: a breaker's state, a limiter's tokens, a bulkhead's held
slots. The store is --store URL, else $SEAWALL_STORE. Passwords show as ***."""

_STATUS_EXAMPLES = """\
examples:
  seawall status --store file:///var/lib/myapp/seawall
  SEAWALL_STORE=redis://localhost:6379/0 seawall status --json

Exit status: 0 listed (possibly nothing); 2 bad usage or URL, or a store that
cannot be reached."""

_RESET_DESCRIPTION = """\
Forget every record of the policy called NAME (its name= argument; every key
of a keyed limiter) in a file or Redis store, so its next call starts fresh:
a closed breaker, a full bucket, free slots. Slots that running processes
still hold are not taken from them."""

_RESET_EXAMPLES = """\
example:
  $ seawall reset payments --store redis://localhost:6379/0
  reset 'payments': 1 record removed from redis://localhost:6379/0

Exit status: 0 removed at least one record; 1 no policy of that name; 2 bad
usage or URL, or a store that cannot be reached."""


class _UsageError(Exception):
    """A problem with what the user asked for: exit status 2."""


def register(subparsers: Any) -> None:
    """Add ``seawall status`` and ``seawall reset`` to the command line."""
    status = subparsers.add_parser(
        "status",
        help="list every policy and key kept in a store, with its state",
        description=_STATUS_DESCRIPTION,
        epilog=_STATUS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _store_option(status)
    status.add_argument("--json", action="store_true", help="print one JSON document")
    status.set_defaults(handler=_status)
    reset = subparsers.add_parser(
        "reset",
        help="forget every record of one policy in a store",
        description=_RESET_DESCRIPTION,
        epilog=_RESET_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reset.add_argument("name", metavar="NAME", help="the policy's name (its name= argument)")
    _store_option(reset)
    reset.set_defaults(handler=_reset)


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        help=f"file:///dir or redis://host:port/db (default: ${ENV_VAR})",
    )


# -- commands -----------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    def show(store: Store, url: str) -> int:  # url: redacted
        policies = store.status()
        if args.json:
            print(json.dumps(status_document(url, policies), indent=2, sort_keys=False))
        elif policies:
            print("\n".join(format_table(policies)))
        else:
            print(f"no policy state in {url}")
        return 0

    return _with_store("status", args.store, show)


def _reset(args: argparse.Namespace) -> int:
    def clear(store: Store, url: str) -> int:
        removed = store.reset(args.name)
        if removed == 0:
            print(f"seawall reset: no policy named {args.name!r} in {url}", file=sys.stderr)
            return 1
        noun = "record" if removed == 1 else "records"
        print(f"reset {args.name!r}: {removed} {noun} removed from {url}")
        return 0

    return _with_store("reset", args.store, clear)


def _with_store(command: str, given: str | None, action: Callable[[Store, str], int]) -> int:
    """Run ``action(store, shown_url)``; ``shown_url`` is the URL with its password hidden."""
    try:
        secret_url = _store_url(given)
        url = redact_url(secret_url)
        store = _open(secret_url)
    except _UsageError as exc:
        print(f"seawall {command}: {exc}", file=sys.stderr)
        return 2
    try:
        return action(store, url)
    except StoreError as exc:
        print(f"seawall {command}: cannot use the store at {url}: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()


def _store_url(given: str | None) -> str:
    url = given or os.environ.get(ENV_VAR, "")
    if not url:
        raise _UsageError(
            f"no store given: pass --store URL or set {ENV_VAR} "
            "(for example file:///var/lib/myapp/seawall or redis://localhost:6379/0)"
        )
    if url.lower().startswith("memory:"):
        raise _UsageError(
            f"{redact_url(url)!r} is the in-process memory store: its state lives and dies with "
            "the process that made it, so there is nothing to read from here; use a file:// "
            "or redis:// store"
        )
    return url


def _open(url: str) -> Store:
    from ..stores import open_store

    try:
        store = open_store(url, timeout=2.0)
    except (TypeError, ValueError) as exc:
        raise _UsageError(str(exc)) from None
    if url.lower().startswith("file:"):
        # Opening a file store creates its directory; a typo must not create an empty one.
        directory = Path(unquote(urlsplit(url).path))
        if not directory.is_dir():
            raise _UsageError(f"no file store at {redact_url(url)}: {directory} is not a directory")
    return store


# -- output -------------------------------------------------------------------------------


def status_document(url: str, policies: Sequence[PolicyStatus]) -> dict[str, Any]:
    """The ``--json`` document for ``policies`` (``PolicyStatus`` items) found at ``url``.

    ``url`` is printed as given: pass it through ``redact_url`` first.
    """
    return {
        "store": url,
        "policies": [
            {"kind": p.kind, "name": p.name, "key": p.key, "state": _plain(p.state)}
            for p in policies
        ],
    }


def _plain(state: dict[str, Any]) -> dict[str, Any]:
    # JSON has no infinity or NaN: such values become null rather than invalid JSON.
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in state.items()
    }


def format_table(policies: Sequence[PolicyStatus]) -> list[str]:
    """Aligned lines: KIND, NAME, KEY, STATE (the kind's headline), then the other fields."""
    rows = [("KIND", "NAME", "KEY", "STATE", "DETAILS")]
    for p in policies:
        lead = next((k for k in _HEADLINE.get(p.kind, ()) if k in p.state), None)
        shown = {lead} if lead else set()
        headline = "-" if lead is None else _value(p.state[lead])
        if p.kind == "bulkhead":
            capacity = next((k for k in _CAPACITY if k in p.state), None)
            if capacity is not None:
                headline = f"{headline}/{_value(p.state[capacity])}"
                shown.add(capacity)
        rest = " ".join(f"{k}={_value(v)}" for k, v in p.state.items() if k not in shown)
        rows.append((p.kind, p.name, "-" if p.key is None else p.key, headline, rest))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[4]]
        ).rstrip()
        for row in rows
    ]


def _value(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if math.isfinite(value) else str(value)
    return str(value)
