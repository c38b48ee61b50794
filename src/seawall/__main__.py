"""``python -m seawall``: the same as the ``seawall`` command."""

from ._cli import main

raise SystemExit(main())
