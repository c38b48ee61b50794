"""``seawall config [FILE] [--json]``: check a configuration and show what it amounts to.

FILE (else the file ``SEAWALL_CONFIG`` names) and the ``SEAWALL_*`` variables are read exactly
as :func:`seawall.config.load_settings` reads them, which is also how policies load them on
first use; the output says which file was read and which variables applied, then prints every
key with its value and where the value came from. Exit status 0 when the configuration is
valid, 2 (with the error on stderr) when it is not, so the command doubles as a deployment
check.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

from .._config.load import CONFIG_VAR
from .._config.settings import SECTIONS, rules
from .._errors import ConfigError
from .._redact import redact_url
from ..config import Settings, load_settings

__all__ = ["register", "rows"]

VALID, INVALID = 0, 2

_DESCRIPTION = """\
Check a configuration and print every setting with its value and where the
value came from (default, file, or a SEAWALL_* environment variable). FILE is
YAML or TOML with a resilience: section; without FILE, the file SEAWALL_CONFIG
names is read, and none at all if it is unset. Exit 0 when the configuration is
valid, 2 with the error on stderr when it is not: a deployment check."""

_EXAMPLES = """\
examples:
  seawall config resilience.yml
  SEAWALL_CONFIG=app.yml SEAWALL_WATCHDOG__TIMEOUT=10 seawall config --json"""

# Keys no constructor reads on its own (they reach policies through Settings.*_kwargs()):
# a table that shows them as set without saying so would promise what the app does not do.
_HELPER_ONLY = ("bulkhead.", "retry.", "rate_limiter.default_burst", "rate_limiter.max_keys")


def register(subparsers: Any) -> None:
    """Attach ``config`` to the ``seawall`` command line."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "config",
        help="check a configuration file and print the effective settings",
        description=_DESCRIPTION,
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "file", nargs="?", metavar="FILE", help="YAML or TOML file (default: $SEAWALL_CONFIG)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=_run)


def rows(settings: Settings) -> list[tuple[str, object, str]]:
    """``(dotted key, value, origin)`` for every key of ``settings``, in documentation order."""
    return [
        (f"{name}.{key}", getattr(getattr(settings, name), key), settings.origin(f"{name}.{key}"))
        for name, cls in SECTIONS.items()
        for key in rules(cls)
    ]


def _run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.file, env=os.environ)
    except (ConfigError, ModuleNotFoundError) as exc:
        print(f"seawall config: {exc}", file=sys.stderr, flush=True)
        return INVALID
    table = rows(settings)
    if args.json:
        print(_as_json(settings, table), flush=True)
    else:
        print(_summary(settings, args.file), "", _as_table(table), sep="\n", flush=True)
        unread = [key for key, _, origin in table if origin != "default" and _helper_only(key)]
        if unread:
            print(
                f"\nnote: no constructor reads {', '.join(unread)} on its own; pass them with "
                "settings.bulkhead_kwargs(), retry_kwargs() or (keyed_)rate_limiter_kwargs()",
                flush=True,
            )
    return VALID


def _helper_only(key: str) -> bool:
    return key.startswith(_HELPER_ONLY)


def _summary(settings: Settings, given: str | None) -> str:
    """Two lines: the file read and why, and the variables that set a key."""
    named = os.environ.get(CONFIG_VAR)
    if given is None:
        why = f"named by {CONFIG_VAR}" if named else f"{CONFIG_VAR} is {_unset(named)}"
    else:
        # The app reads SEAWALL_CONFIG, not FILE: say so when the two differ.
        elsewhere = f"names {named}" if named else f"is {_unset(named)}"
        why = "given as FILE" + ("" if named == given else f"; {CONFIG_VAR} {elsewhere}")
    variables = ", ".join(settings.variables) or "none"
    return f"file: {settings.file or 'none'} ({why})\nvariables: {variables}"


def _unset(value: str | None) -> str:
    return "not set" if value is None else "empty"


def _shown(value: object) -> object:
    # JSON has no infinity; "inf" is also what a SEAWALL_* variable would say.
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, str):  # store.url may carry a password
        return redact_url(value)
    return value


def _text(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(_shown(value))


def _as_json(settings: Settings, table: list[tuple[str, object, str]]) -> str:
    document = {
        "file": settings.file,
        "variables": list(settings.variables),
        "settings": {key: {"value": _shown(value), "from": origin} for key, value, origin in table},
    }
    return json.dumps(document, indent=2)


def _as_table(table: list[tuple[str, object, str]]) -> str:
    cells = [("KEY", "VALUE", "FROM")]
    cells += [(key, _text(value), origin) for key, value, origin in table]
    widths = [max(len(row[i]) for row in cells) for i in range(2)]
    return "\n".join(
        f"{key:<{widths[0]}}  {value:<{widths[1]}}  {origin}" for key, value, origin in cells
    )
