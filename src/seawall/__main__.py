"""``python -m seawall``: the same as the ``seawall`` command."""

from ._cli.main import main

raise SystemExit(main())
