"""A bulkhead slot pool with a hook, to put a step of another thread inside a lock-free release."""

from __future__ import annotations

from collections.abc import Callable


class AppendHook(list[None]):
    """A slot pool that runs a callback just before a slot is appended."""

    callback: Callable[[], object] | None = None

    def append(self, item: None) -> None:
        callback, self.callback = self.callback, None
        if callback is not None:
            callback()
        super().append(item)
