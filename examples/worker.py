"""A background worker with a heartbeat, a watchdog and a graceful shutdown.

It processes jobs in an async loop (asyncio or trio), pings a watchdog before each job,
beats a heartbeat file that a probe can check, and on SIGTERM/SIGINT stops taking jobs and
runs its cleanup callbacks by priority before exiting with 143/130. Run it::

    python examples/worker.py --jobs 20 --job-seconds 0.5
    seawall heartbeat check /tmp/seawall-worker/heartbeat.json --max-age 5   # from elsewhere
    kill -TERM <pid>                                                        # clean stop

``--stall-at N`` blocks the event loop during job N for longer than the watchdog timeout, to
show the watchdog firing from its own thread while the loop is stuck.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import anyio

from seawall import GracefulShutdown, Heartbeat, Watchdog


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10, help="jobs to process, then stop")
    parser.add_argument("--job-seconds", type=float, default=0.1, help="time per job")
    parser.add_argument(
        "--state-dir", type=Path, default=Path(tempfile.gettempdir()) / "seawall-worker"
    )
    parser.add_argument("--interval", type=float, default=1.0, help="heartbeat interval")
    parser.add_argument("--watchdog-timeout", type=float, default=0.5)
    parser.add_argument("--stall-at", type=int, default=0, help="block the loop in this job")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    return parser.parse_args(argv)


def build(args: argparse.Namespace) -> tuple[GracefulShutdown, Heartbeat]:
    """The shutdown callbacks, in the order they must run, and the heartbeat they stop last."""
    heartbeat = Heartbeat(
        args.state_dir / "heartbeat.json", interval=args.interval, metadata={"role": "worker"}
    )
    shutdown = GracefulShutdown(timeout=10)

    def cleanup(name: str) -> None:
        print(f"cleanup: {name}", flush=True)

    def stop_heartbeat() -> None:
        heartbeat.stop()  # writes "stopped": true, so probes report the exit at once
        cleanup("heartbeat")

    shutdown.register("stop-consuming", lambda: cleanup("stop-consuming"), priority=10)
    shutdown.register("close-database", lambda: cleanup("close-database"), priority=20)
    # Last: a monitor sees "stopped" only once everything else is done.
    shutdown.register("heartbeat", stop_heartbeat, priority=100)
    return shutdown, heartbeat


def on_stall() -> None:
    """Runs in the watchdog's monitor thread, so it runs even while the loop is blocked."""
    print("watchdog: no progress for too long", flush=True)


async def work(args: argparse.Namespace, shutdown: GracefulShutdown) -> int:
    """Process jobs until done or asked to stop; returns how many were done."""
    done = 0
    async with Watchdog(args.watchdog_timeout, on_timeout=on_stall, name="worker") as wd:
        while done < args.jobs and not shutdown.is_shutting_down:
            await wd.aping()
            if done + 1 == args.stall_at:
                time.sleep(args.watchdog_timeout * 4)  # noqa: ASYNC251 (the stall shown)
            await anyio.sleep(args.job_seconds)
            done += 1
            print(f"job {done} done", flush=True)
    return done


async def main(args: argparse.Namespace, shutdown: GracefulShutdown, heartbeat: Heartbeat) -> None:
    heartbeat.start()  # first beat written now: probes pass from the start
    print(f"worker started ({args.backend}), heartbeat at {heartbeat.state_file}", flush=True)
    done = await work(args, shutdown)
    results = await shutdown.atrigger()  # after a signal: waits for the run already going
    ok = sum(r.status == "ok" for r in results)
    print(f"shutdown: {done} jobs done, {ok} of {len(results)} callbacks ok", flush=True)


if __name__ == "__main__":
    arguments = parse_args()
    cleanup, beat = build(arguments)
    # Main thread, before the loop starts: SIGTERM/SIGINT now run the callbacks (in a thread
    # of their own), then end the process with 128 + signum; a second signal ends it at once.
    cleanup.install()
    anyio.run(main, arguments, cleanup, beat, backend=arguments.backend)
