"""``seawall demo``: a scripted scenario that shows each policy at work."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register", "run_demo"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="run a short scripted scenario showing each policy at work"
    )
    parser.set_defaults(handler=lambda args: run_demo())


def run_demo() -> int:
    print("seawall demo: under construction")
    return 0
