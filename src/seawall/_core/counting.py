"""Reading an ``itertools.count``: the lock-free counter of the hot paths.

``next()`` on an ``itertools.count`` is one C call, atomic under the GIL and on the
free-threaded builds (made so in CPython 3.13, gh-117657), so a hot path can count without
taking a lock; a reader adds it up later.
"""

from __future__ import annotations

import itertools

__all__ = ["count_value"]


def count_value(counter: itertools.count[int]) -> int:
    """How many times ``next()`` was called on a counter made by ``itertools.count()``."""
    # itertools.count has no public read; its repr is "count(N)" on every CPython version.
    return int(repr(counter)[6:-1])
