"""An app that builds policies without calling configure(), then prints what they took.

Run as ``python config_app.py DIR``: prints one JSON object with the file and variables
``seawall.config`` loaded on first use and, for each key a policy takes as a default, the
value the built policy actually holds (``test_config_lazy`` compares it with
``seawall config --json`` run in the same environment).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from seawall import CircuitBreaker, GracefulShutdown, Heartbeat, Watchdog, config, rate_limiter


@rate_limiter(blocking=False)
def ping() -> str:
    return "pong"


def main(directory: str) -> None:
    breaker = CircuitBreaker()._config
    limiter = ping.limiter  # type: ignore[attr-defined]
    shutdown = GracefulShutdown()
    values = {
        "circuit_breaker.max_failures": breaker.max_failures,
        "circuit_breaker.reset_timeout": breaker.reset_timeout,
        "circuit_breaker.half_open_max_calls": breaker.half_open_max_calls,
        "circuit_breaker.success_threshold": breaker.success_threshold,
        "rate_limiter.default_rate": limiter.rate,
        "rate_limiter.default_per": limiter.per,
        "shutdown.timeout": shutdown.timeout,
        "shutdown.default_timeout": shutdown._default_timeout,
        "heartbeat.interval": Heartbeat(Path(directory) / "hb.json").interval,
        "watchdog.timeout": Watchdog().timeout,
    }
    settings = config.current()
    document = {"file": settings.file, "variables": list(settings.variables), "values": values}
    print(json.dumps(document), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
