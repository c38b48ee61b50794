"""Metrics exporters, one module per ecosystem, each behind its own extra.

* :mod:`seawall.metrics.prometheus` (``pip install 'seawall[prometheus]'``):
  ``install(registry=None)``;
* :mod:`seawall.metrics.otel` (``pip install 'seawall[otel]'``): ``install(meter_provider=None)``.

Both listen to seawall's events (:mod:`seawall.events`) and return a handle with ``watch(...)``
(read limiter tokens and current states at collection time) and ``uninstall()``. Importing
this package imports neither library.
"""

__all__: list[str] = []  # the exporters are its submodules
