"""A process admitting requests through a shared FileStore, one per line it reads.

Usage: ``file_admit_child.py DIR``. Each ``admit`` line on stdin runs one
``admit_request`` through the gates of :data:`file_store_common.ADMIT_GATES` (keyed limit of
10 per hour, a bulkhead of 1, a breaker) and prints the gate that refused (``-`` when
admitted); the admitted request keeps its slot until a ``settle`` line reports it a success.
The process exits when stdin closes.
"""

from __future__ import annotations

import sys

from file_store_common import ADMIT_GATES

from seawall._core.breaker import SUCCESS
from seawall.stores._base import Admission, Settlement
from seawall.stores._file.store import FileStore


def main(path: str) -> None:
    store = FileStore(path, timeout=2.0)
    held: list[Admission] = []
    for line in sys.stdin:
        if line.strip() == "admit":
            answer = store.admit_request(ADMIT_GATES, "client")
            if answer.refused_by is None:
                held.append(answer)
            sys.stdout.write(f"{answer.refused_by or '-'}\n")
        else:
            settled = [Settlement(a.hold, a.ticket, SUCCESS) for a in held]
            store.settle_requests(ADMIT_GATES, settled)
            held.clear()
            sys.stdout.write("settled\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1])
