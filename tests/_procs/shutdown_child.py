"""A process that installs GracefulShutdown and then waits: driven by tests/test_shutdown.py.

Usage: ``shutdown_child.py MODE [FORCE_EXIT_CODE]`` where MODE is ``ordered`` (callbacks print
their names, a previous Python handler is chained), ``hang`` (the first callback hangs after
printing ``hanging``), ``asyncio`` or ``trio`` (installed from inside a running loop, with an
async callback). FORCE_EXIT_CODE, if given, is passed as ``force_exit_code``. Every line is
flushed, so the test can synchronise on them.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

import anyio

from seawall import GracefulShutdown


def say(text: str) -> None:
    # One write per line: print() writes the text and the newline separately, so lines
    # printed by two threads at once (the chained handler and a callback) could interleave.
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def backend() -> str:
    """Which event loop runs the calling code (the async callback reports it)."""
    try:
        import asyncio

        asyncio.get_running_loop()
        return "asyncio"
    except RuntimeError:
        import trio

        trio.lowlevel.current_trio_token()
        return "trio"


def build(mode: str) -> GracefulShutdown:
    code = int(sys.argv[2]) if len(sys.argv) > 2 else None
    shutdown = GracefulShutdown(timeout=60, force_exit_code=code)
    if mode == "hang":
        shutdown.register("hang", lambda: (say("hanging"), threading.Event().wait()))
        shutdown.register("after", lambda: say("callback:after"), priority=200)
        return shutdown
    for name, priority in [("c", 50), ("a", 10), ("d", 50), ("b", 10), ("e", 100), ("z", 0)]:
        shutdown.register(name, lambda name=name: say(f"callback:{name}"), priority=priority)
    return shutdown


def slow_previous(signum: int, frame: object) -> None:
    # Long enough for the callbacks to finish and the process to exit, had the runner been
    # woken before this handler ran to its end.
    time.sleep(0.5)
    say(f"previous:{signum}")


def main_sync(mode: str) -> None:
    if mode == "slow-previous":
        signal.signal(signal.SIGTERM, slow_previous)
        mode = "ordered"
    else:
        signal.signal(signal.SIGTERM, lambda signum, frame: say(f"previous:{signum}"))
    shutdown = build(mode)
    shutdown.install()
    say("ready")
    shutdown.wait()
    say("wait returned")  # never printed: the runner exits the process first


async def main_async() -> None:
    shutdown = build("ordered")

    async def async_cleanup() -> None:
        await anyio.lowlevel.checkpoint()
        say(f"callback:async-on-{backend()}")

    shutdown.register("async", async_cleanup, priority=1)
    shutdown.install()
    say("ready")
    await anyio.sleep_forever()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode in ("asyncio", "trio"):
        anyio.run(main_async, backend=mode)
    else:
        main_sync(mode)
