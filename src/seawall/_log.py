"""The ``seawall`` logger, which every module that logs takes from here.

A library logs and the application decides where it goes: the NullHandler keeps Python's
last-resort handler from printing seawall's warnings to stderr in programs that configured no
logging. It is set here, on first use, so that ``import seawall`` does not load ``logging``.
"""

from __future__ import annotations

import logging

__all__ = ["logger"]

logger = logging.getLogger("seawall")
logger.addHandler(logging.NullHandler())
