"""A real ``redis-server`` for tests: started on a free port in a temporary directory.

Registered for the whole suite by ``tests/conftest.py`` (``pytest_plugins``). A missing
``redis-server`` binary is an error, never a skip: CI must not pass without the Redis store
having run.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

__all__ = [
    "REDIS_PASSWORD",
    "RedisCluster3",
    "RedisServer",
    "locked_redis_server",
    "redis_cluster",
    "redis_server",
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _PortTaken(RuntimeError):
    """redis-server exited during start-up (most often: its port was taken meanwhile)."""


class RedisServer:
    """One ``redis-server`` process without persistence; ``start``/``stop`` may repeat.

    With ``password`` the server requires it (``requirepass``) and ``url`` carries it. A
    ``cluster`` node claims every slot itself unless ``claim_slots=False`` (a member of
    :class:`RedisCluster3`); ``extra_args`` go to redis-server as they are.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        cluster: bool = False,
        password: str | None = None,
        claim_slots: bool = True,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed: the Redis store tests need it "
                "(apt-get install -y redis-server)"
            )
        self.binary = binary
        self.port = _free_port() if port is None else port
        self.cluster = cluster
        self.password = password
        self.claim_slots = claim_slots
        self.extra_args = extra_args
        self._dir = tempfile.TemporaryDirectory(prefix="seawall-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        self._started_before = False

    @property
    def url(self) -> str:
        """``redis://`` (or ``redis+cluster://``) URL of this server."""
        scheme = "redis+cluster" if self.cluster else "redis"
        auth = "" if self.password is None else f":{self.password}@"
        return (
            f"{scheme}://{auth}127.0.0.1:{self.port}/0"
            if not self.cluster
            else (f"{scheme}://{auth}127.0.0.1:{self.port}")
        )

    def client(self) -> redis.Redis:
        """A plain redis-py client for inspecting the server (node-level in cluster mode)."""
        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5
        )

    def start(self) -> None:
        """Start the server and wait until it answers PING.

        A free port found by binding and closing can be taken by someone else before
        redis-server binds it; the server then exits at once, and a first start picks another
        port (a restart keeps its port: the tests restart on purpose on the same one).
        """
        for attempt in range(5):
            try:
                self._start_once()
                return
            except _PortTaken:
                if self._started_before or attempt == 4:
                    raise
                self.port = _free_port()

    def _start_once(self) -> None:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", self._dir.name,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
        ]  # fmt: skip
        if self.password is not None:
            args += ["--requirepass", self.password]
        if self.cluster:
            conf = Path(self._dir.name) / f"nodes-{self.port}.conf"
            conf.unlink(missing_ok=True)
            args += ["--cluster-enabled", "yes", "--cluster-config-file", str(conf)]
        args += self.extra_args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready()
        self._started_before = True
        if self.cluster and self.claim_slots:
            self._claim_all_slots()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10.0
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise _PortTaken(f"redis-server exited with {self.proc.returncode}")
            try:
                with self.client() as c:
                    # Another process's server on this port answers too (ours failed to bind
                    # and has not exited yet): only our own process counts as ready.
                    if c.info("server")["process_id"] == self.proc.pid:
                        return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {self.port} answers, but not as our redis-server")
            time.sleep(0.02)

    def _claim_all_slots(self) -> None:
        with self.client() as c:
            c.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            deadline = time.monotonic() + 10.0
            while c.execute_command("CLUSTER", "INFO").decode().find("cluster_state:ok") < 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("single-node cluster did not become ready")
                time.sleep(0.02)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it keeps its sockets and answers nothing."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again (SIGCONT)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        """Stop the server at once (SIGKILL), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a paused server must not outlive the test
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.kill()
        self._dir.cleanup()


class RedisCluster3:
    """A real Redis Cluster of three masters (no replicas), built by ``redis-cli --cluster``.

    ``node_timeout`` (ms) is how long a silent master takes to be marked failing; then, with
    the default ``cluster-require-full-coverage yes``, every master answers CLUSTERDOWN.
    """

    def __init__(self, *, node_timeout: int = 500) -> None:
        args = ("--cluster-node-timeout", str(node_timeout))
        self.nodes = [RedisServer(cluster=True, claim_slots=False, extra_args=args) for _ in "abc"]

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL naming the first master (the client finds the rest)."""
        return self.nodes[0].url

    def start(self) -> None:
        """Start the three servers, join them with ``redis-cli --cluster create``, wait."""
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=30,
        )
        self.wait_state("ok")

    def wait_state(self, state: str, *, among: list[RedisServer] | None = None) -> None:
        """Wait until every node of ``among`` (default all) reports ``cluster_state:<state>``."""
        deadline = time.monotonic() + 20.0
        for node in self.nodes if among is None else among:
            with node.client() as c:
                while f"cluster_state:{state}" not in c.execute_command("CLUSTER", "INFO").decode():
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"cluster did not reach state {state!r}")
                    time.sleep(0.05)

    def add_replica(self, master: RedisServer) -> RedisServer:
        """Start a fourth node and join it as ``master``'s replica (it can take over)."""
        replica = RedisServer(cluster=True, claim_slots=False, extra_args=self.nodes[0].extra_args)
        replica.start()
        self.nodes.append(replica)
        with master.client() as c:
            master_id = c.execute_command("CLUSTER", "MYID").decode()
        subprocess.run(
            ["redis-cli", "--cluster", "add-node", f"127.0.0.1:{replica.port}",
             f"127.0.0.1:{master.port}", "--cluster-slave", "--cluster-master-id", master_id],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=30,
        )  # fmt: skip
        deadline = time.monotonic() + 20.0
        with replica.client() as c:
            while c.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise RuntimeError("the replica did not sync with its master")
                time.sleep(0.05)
        return replica

    def owner(self, key: str) -> RedisServer:
        """The master that serves ``key``'s hash slot."""
        with self.nodes[0].client() as c:
            slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, (_host, port, *_), *_ in c.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return next(n for n in self.nodes if n.port == int(port))
        raise LookupError(f"no master serves {key!r}")  # pragma: no cover - slots all covered

    def close(self) -> None:
        """Stop every node and remove their directories."""
        for node in self.nodes:
            node.close()


@pytest.fixture
def redis_cluster() -> Iterator[RedisCluster3]:
    """A fresh three-master Redis Cluster for one test."""
    cluster = RedisCluster3()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server for one test."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def shared_redis_server() -> Iterator[RedisServer]:
    """One redis-server for a whole test module (tests use distinct policy names)."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


#: The password of :func:`locked_redis_server`, distinctive so a leak is easy to find.
REDIS_PASSWORD = "pw-7Hq2-do-not-print"


@pytest.fixture(scope="module")
def locked_redis_server() -> Iterator[RedisServer]:
    """One redis-server that requires :data:`REDIS_PASSWORD`, for a whole test module."""
    server = RedisServer(password=REDIS_PASSWORD)
    try:
        server.start()
        yield server
    finally:
        server.close()
