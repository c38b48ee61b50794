"""The file descriptors this process holds, read without the noise of reading them."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator

_FD_DIR = "/proc/self/fd"


def open_fds() -> set[str]:
    """The descriptors open now, leaving out the one ``listdir`` used to read the directory."""
    # listdir lists its own directory descriptor, and which number that gets depends on what
    # happened to be free; it is closed again by the time lexists looks.
    return {fd for fd in os.listdir(_FD_DIR) if os.path.lexists(f"{_FD_DIR}/{fd}")}


@contextlib.contextmanager
def no_collection() -> Iterator[None]:
    """Collect garbage now and keep the collector off inside: no finalizer closes a descriptor."""
    # An object an earlier test dropped (a socket, a pipe) can be finalized by a collection that
    # any allocation triggers, closing its descriptor in the middle of a before/after comparison.
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
