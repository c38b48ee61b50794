"""mkdocs hooks for the API reference.

A type in a signature that has no page of its own (a ``TypeVar``, a private protocol) is
rendered by mkdocs-autorefs as a span whose tooltip is the full path where it is defined,
a private module (``seawall._breaker.breaker.P``). Users are told to import only public
paths, so the tooltip goes; the name itself stays.
"""

from __future__ import annotations

import re
from typing import Any

PRIVATE_TITLE = re.compile(r'\s+title="seawall(?:\.\w+)*\._(?!_)[^"]*"')


def on_post_page(output: str, **kwargs: Any) -> str:
    """The page's HTML without tooltips that name a private module."""
    return PRIVATE_TITLE.sub("", output)
