"""The ``seawall`` command line.

Each sub-command lives in the module that owns its subject and adds itself here through a
``register(subparsers)`` function, so this file stays a table of contents.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import __version__

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every sub-command attached."""
    from . import _demo

    parser = argparse.ArgumentParser(prog="seawall", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"seawall {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _demo.register(subparsers)
    from . import _heartbeat_cli

    _heartbeat_cli.register(subparsers)
    from . import _config_cli

    _config_cli.register(subparsers)
    from . import _store_cli

    _store_cli.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``seawall status | head``): not an error of ours. Point stdout
        # at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
