"""Real components for the tests: a Kafka-protocol broker (Tansu) started for the session, Redis at
TASTEMAKER_TEST_REDIS_URL (default redis://127.0.0.1:6379/15), started when nothing answers, and a
6-node Redis Cluster on loopback (3 masters + 3 replicas), started for the session when a test asks.

`settings` is one Redis; `any_settings` runs a test twice, on one Redis and on the cluster (with
the replication fence on, as a cluster deployment should run)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tastemaker.features.redis_connect import connect
from tastemaker.services.config import Settings
from tastemaker.services.embedded import start_broker, start_redis
from tests.support.redis_cluster import LocalCluster


@pytest.fixture(scope="session", autouse=True)
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`serve` and `up` spool under the state directory by default: the tests' own, not the home's."""
    path = tmp_path_factory.mktemp("state")
    before = os.environ.get("TASTEMAKER_STATE_DIR")
    os.environ["TASTEMAKER_STATE_DIR"] = str(path)
    yield path
    if before is None:
        os.environ.pop("TASTEMAKER_STATE_DIR", None)
    else:
        os.environ["TASTEMAKER_STATE_DIR"] = before


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    configured = os.environ.get("TASTEMAKER_TEST_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    broker = start_broker()
    try:
        yield f"127.0.0.1:{broker.port}"
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("TASTEMAKER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
        yield url
        return
    except redis.ConnectionError:
        pass
    child = start_redis()
    try:
        yield f"redis://127.0.0.1:{child.port}/0"
    finally:
        child.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(Path(tmp_path_factory.mktemp("redis-cluster")))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def _isolated(kafka_bootstrap: str, redis_url: str, **overrides: object) -> Iterator[Settings]:
    """Settings with their own topic prefix and Redis namespace (its keys removed afterwards)."""
    tag = uuid.uuid4().hex[:10]
    yield Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        topic_prefix=f"test-{tag}.tastemaker",
        redis_namespace=f"test-{tag}",
        grpc_port=0,
        reward_window_s=1.0,
        epsilon=0.2,
        **overrides,  # type: ignore[arg-type]
    )
    client = connect(redis_url)
    for key in list(client.scan_iter(match=f"test-{tag}:*", count=1000)):
        client.delete(key)  # one by one: on a cluster the keys live in many slots
    client.close()


@pytest.fixture
def settings(kafka_bootstrap: str, redis_url: str) -> Iterator[Settings]:
    """Settings isolated per test, on one Redis."""
    yield from _isolated(kafka_bootstrap, redis_url)


@pytest.fixture(params=["redis", "redis-cluster"])
def any_settings(request: pytest.FixtureRequest, kafka_bootstrap: str, redis_url: str) -> Iterator[Settings]:
    """Settings isolated per test, once on one Redis and once on the Redis Cluster (WAIT for 1 replica)."""
    if request.param == "redis":
        yield from _isolated(kafka_bootstrap, redis_url)
        return
    cluster: LocalCluster = request.getfixturevalue("redis_cluster")
    yield from _isolated(kafka_bootstrap, cluster.url, redis_wait_replicas=1)
