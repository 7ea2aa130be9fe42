"""One way to reach Redis from a URL, a single server or a Redis Cluster, and what the writers need
to stay exactly-once through a failover.

- `redis://host:port/db` (or `rediss://`): one server.
- `redis+cluster://host:port[,host:port...]` (or `rediss+cluster://`): a Redis Cluster, found from
  any of the seed nodes; user and password as in `redis://user:pass@host:port`.

Every Redis user takes the client `connect` returns; the cluster client answers the same commands
(keys of one entity share a hash tag, so each Lua script and each transaction touches one slot).

Replication is asynchronous: a write a master acknowledged can vanish when its replica is promoted,
while the Kafka offset that covered it is already committed. The stream processor's fence between
the two is a WAIT sent on each connection right after its writes (WAIT counts the writes of its own
connection): fewer acknowledgements than asked raise `NotReplicated`, the batch's offsets are not
committed, the batch comes again, and the per-partition watermarks make what did survive a no-op.
The joiner, the learner and the dead-letter ledger use `Fence`, which ends on each master written
with a write and a WAIT of its own."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote, urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")

#: what a cluster says while it moves or elects: retry after refreshing the slot map
CLUSTER_RETRYABLE = (
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


class NotReplicated(redis.exceptions.RedisError):
    """Fewer replicas than required acknowledged a batch's writes in time."""


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def connect(url: str, socket_timeout: float | None = None) -> redis.Redis:
    """A client for `url` (one connection pool per node). A Redis Cluster client is returned under
    the `redis.Redis` type: it answers the same commands, routed by key."""
    if not is_cluster_url(url):
        return redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout)
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    credentials, hosts = (netloc[0], netloc[1]) if len(netloc) == 2 else ("", netloc[0])
    username, _, password = credentials.partition(":")
    nodes = []
    for host_port in hosts.split(","):
        host, _, port = host_port.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"TASTEMAKER_REDIS_URL: {host_port!r} is not host:port in {url!r}")
        nodes.append(ClusterNode(host.strip("[]"), int(port)))
    client = RedisCluster(
        startup_nodes=nodes,
        username=unquote(username) or None,
        password=unquote(password) or None,
        ssl=parts.scheme.startswith("rediss"),
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
    )
    return cast(redis.Redis, client)


def is_cluster(client: object) -> bool:
    return isinstance(client, RedisCluster)


def node_pool(client: redis.Redis, key: str) -> tuple[str, redis.ConnectionPool]:
    """(node name, its connection pool) holding `key`: the one server, or the slot's master."""
    if not is_cluster(client):
        return "", client.connection_pool
    node = cast(RedisCluster, client).get_node_from_key(key)
    if node.redis_connection is None:
        cast(RedisCluster, client).nodes_manager.initialize()
        node = cast(RedisCluster, client).get_node_from_key(key)
    return node.name, node.redis_connection.connection_pool  # type: ignore[union-attr]


def refresh(client: redis.Redis) -> None:
    """Re-read the cluster's slot map (after MOVED, a failover or a lost node); no-op for one server."""
    if is_cluster(client):
        cast(RedisCluster, client).nodes_manager.initialize()


def _fence_key(key: str) -> str:
    """A key in `key`'s slot: its own hash tag kept, or (untagged) the whole key made the tag."""
    start = key.find("{")
    if start >= 0 and key.find("}", start + 1) > start + 1:
        return f"{key}:fence"
    return f"{{{key}}}:fence"


@dataclass(frozen=True)
class Fence:
    """The replication fence of the writers that use redis-py commands (joiner, learner, dead-letter
    ledger): after their writes, on each master written, one short-lived write of our own followed
    by WAIT on the same connection. The replication stream is ordered, so a replica that holds the
    fence write holds every write that master acknowledged before it."""

    replicas: int = 0
    timeout_ms: int = 1000

    def __call__(self, client: redis.Redis, written: Iterable[str]) -> None:
        """Raise `NotReplicated` unless `replicas` replicas of every master holding a key of
        `written` acknowledged its writes so far within `timeout_ms`. No-op for replicas 0."""
        if self.replicas <= 0:
            return
        masters: dict[str, tuple[redis.ConnectionPool, str]] = {}
        for key in written:
            name, pool = node_pool(client, key)
            masters.setdefault(name, (pool, key))
        for name, (pool, key) in masters.items():
            connection = pool.get_connection()
            try:
                connection.send_packed_command(
                    connection.pack_commands(
                        [("SET", _fence_key(key), b"1", "PX", 60_000), ("WAIT", self.replicas, self.timeout_ms)]
                    )
                )
                connection.read_response()
                acknowledged = int(connection.read_response())
            except BaseException:
                connection.disconnect()
                raise
            finally:
                pool.release(connection)
            if acknowledged < self.replicas:
                raise NotReplicated(
                    f"{acknowledged} of {self.replicas} replicas of {name or 'the Redis server'} acknowledged "
                    f"within {self.timeout_ms} ms: not committing (the batch will be applied again)"
                )


def retry_cluster(client: redis.Redis, attempts: int = 40, first_wait_s: float = 0.05) -> Iterable[int]:
    """Attempt numbers for a cluster operation: between attempts the slot map is re-read and the
    wait doubles up to 1 s (about 30 s in all: a failover's detection plus election)."""
    wait = first_wait_s
    for attempt in range(attempts):
        if attempt:
            time.sleep(wait)
            wait = min(1.0, wait * 2)
            with contextlib.suppress(redis.exceptions.RedisError):
                refresh(client)
        yield attempt
