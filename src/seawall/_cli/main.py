"""The seawall command line.

Each sub-command lives in the module that owns its subject and adds itself here through a
``register(subparsers)`` function, so this file stays a table of contents. Every error any
sub-command reports is one line on stderr that starts with the command it came from
(``seawall status: ...``), usage errors included: :class:`Parser` gives argparse that shape.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .. import __version__

__all__ = ["Parser", "build_parser", "main"]

_DESCRIPTION = """\
seawall: resilience for Python services (circuit breaker, rate limiter,
bulkhead, retry, watchdog, heartbeat, graceful shutdown). These commands run
the demo, probe a heartbeat file, check a configuration, and look at or clear
the policy state kept in a file or Redis store."""

_EPILOG = """\
examples:
  seawall demo                    # about 25 s, live in the terminal
  seawall heartbeat check /run/app/heartbeat.json --max-age 30
  seawall config resilience.yml
  seawall status --store file:///var/lib/myapp/seawall
  seawall reset payments --store redis://localhost:6379/0

Run 'seawall COMMAND --help' for the options and an example of each command."""


class Parser(argparse.ArgumentParser):
    """argparse's parser with seawall's error line: ``seawall <command>: <message>``."""

    def error(self, message: str) -> NoReturn:
        """Print the one-line error, pointing at ``--help``, and exit with status 2."""
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> argparse.Namespace:
        """Parse as argparse does, but blame unknown arguments on the command they follow."""
        parsed: argparse.Namespace
        parsed, rest = self.parse_known_args(args, namespace)
        if rest:
            # argparse would report them as the top command's ("seawall: unrecognized ..."),
            # though they were given to a sub-command.
            Parser(prog=parsed.cli_prog).error(f"unrecognized arguments: {' '.join(rest)}")
        return parsed


def _name_commands(parser: argparse.ArgumentParser) -> None:
    # Each parser records its full name (e.g. "seawall heartbeat check") as a default; the
    # innermost sub-command's defaults win, so ``cli_prog`` names the command that ran.
    parser.set_defaults(cli_prog=parser.prog)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _name_commands(sub)


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every sub-command attached."""
    from . import config, demo, heartbeat, store

    parser = Parser(
        prog="seawall",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"seawall {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", title="commands"
    )
    demo.register(subparsers)
    heartbeat.register(subparsers)
    config.register(subparsers)
    store.register(subparsers)
    _name_commands(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print(f"{args.cli_prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``seawall status | head``): not an error of ours. Point stdout
        # at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
