"""A Redis Cluster on loopback for tests: N `redis-server` nodes in cluster mode, slots split
evenly, ready once every node reports `cluster_state:ok`.

    with RedisClusterServer(nodes=3) as cluster:
        store = RedisStore.from_url(cluster.url, cluster=True)

Each node's cluster bus listens on its port + 10000 (Redis 6.2 has no `cluster-port`), so a
node whose bus port is out of range or taken fails to start and is retried on another port.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType
from typing import Self

import redis

from nudge.devservers import DevServerError, RedisServer

SLOTS = 16384


class _ClusterNode(RedisServer):
    name = "redis-cluster-node"

    def _argv(self, binary: str, port: int, workdir: Path) -> list[str]:
        if port + 10000 > 65535:
            # Let the start loop try another port: exit at once with a clear log line.
            return [binary, "--port", "0", "--bogus-option-bus-port-out-of-range", "yes"]
        return [
            *super()._argv(binary, port, workdir),
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(workdir / "nodes.conf"),
            "--cluster-node-timeout", "5000",
        ]  # fmt: skip


class RedisClusterServer:
    def __init__(self, nodes: int = 3, *, timeout: float = 30.0) -> None:
        self.size = nodes
        self.timeout = timeout
        self.nodes: list[_ClusterNode] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> Self:
        try:
            for _ in range(self.size):
                self.nodes.append(_ClusterNode(attempts=20).start())
            self._form()
        except BaseException:
            self.stop()
            raise
        return self

    def _form(self) -> None:
        clients = [redis.Redis(host="127.0.0.1", port=n.port) for n in self.nodes]
        try:
            per_node = SLOTS // self.size
            for i, client in enumerate(clients):
                first = i * per_node
                last = SLOTS if i == self.size - 1 else first + per_node
                client.execute_command("CLUSTER ADDSLOTS", *range(first, last))
            for node in self.nodes[1:]:
                clients[0].execute_command("CLUSTER MEET", "127.0.0.1", node.port)
            deadline = time.monotonic() + self.timeout
            while not all(self._ready(c) for c in clients):
                if time.monotonic() > deadline:
                    raise DevServerError(f"redis cluster not ready in {self.timeout}s")
                time.sleep(0.05)
        finally:
            for client in clients:
                client.close()

    def _ready(self, client: redis.Redis) -> bool:
        info = client.execute_command("CLUSTER INFO")  # redis-py parses it into a dict
        fields = {str(k): str(v) for k, v in dict(info).items()}
        return (
            fields.get("cluster_state") == "ok"
            and fields.get("cluster_known_nodes") == str(self.size)
            and fields.get("cluster_slots_assigned") == str(SLOTS)
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
