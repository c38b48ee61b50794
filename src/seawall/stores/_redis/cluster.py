"""The Redis Cluster client of the store: every decision answers within the store timeout.

redis-py's :class:`~redis.cluster.RedisCluster` recovers from a cluster in trouble by
waiting: a ``CLUSTERDOWN`` (or uncovered slot) reply makes it sleep a fixed 0.25 s and
reload the topology before it raises, whatever retry policy it was given, so each decision
of a policy whose own master is alive cost 0.255 s against a 0.1 s store timeout (measured
with a real three-master cluster in which another master was stopped).

:class:`FailFastCluster` sends the store's commands on one key (the scripts, and a lease's
``HDEL``) straight to the master its slot map names, through that node's plain client: one
attempt, no retry, no sleep; ``CLUSTERDOWN`` raises at once and the policy decides in
degraded mode. The cluster client's own machinery is used only where waiting is not the
point: a redirect (``MOVED``/``ASK``, a slot that moved: it follows it and patches its map),
and the first call to a master after it failed to answer (so its refresh of the topology
finds a promoted replica). Administration (``status``, ``reset``) keeps the plain path.
"""

from __future__ import annotations

import threading
from typing import Any, cast

from redis.cluster import RedisCluster
from redis.exceptions import AskError, MovedError, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["FailFastCluster"]

# Where each routed command names its key: EVALSHA sha numkeys key..., HDEL key field.
_KEY_AT = {"EVALSHA": 3, "EVAL": 3, "HDEL": 1}
_REDIRECTS = (MovedError, AskError, TryAgainError)
# redis-py's cluster client is untyped: its command path, reached through one typed name.
_plain = cast("Any", RedisCluster.execute_command)


class FailFastCluster(RedisCluster):
    """A :class:`RedisCluster` whose single-key commands make one attempt, without sleeping."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._suspects: set[str] = set()  # masters whose last answer was a timeout
        self._suspects_lock = threading.Lock()

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        at = _KEY_AT.get(str(args[0]).upper())
        if at is None or len(args) <= at or "target_nodes" in kwargs:
            return _plain(self, *args, **kwargs)
        node = cast("Any", self).get_node_from_key(args[at])
        if node.name in self._suspects:
            return self._through_cluster(node.name, args, kwargs)
        try:
            master: Any = self.get_redis_connection(node)
            return master.execute_command(*args, **kwargs)
        except _REDIRECTS:
            return _plain(self, *args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError):
            with self._suspects_lock:
                self._suspects.add(node.name)
            raise

    def _through_cluster(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # The cluster client notices the dead master, refreshes its map (a failover's new
        # master) and raises at once (no retries configured); any answer clears the doubt.
        try:
            answer = _plain(self, *args, **kwargs)
        except ResponseError:  # an answer, if not a good one: a timeout or refusal propagates
            self._trust(name)
            raise
        self._trust(name)
        return answer

    def _trust(self, name: str) -> None:
        with self._suspects_lock:
            self._suspects.discard(name)
