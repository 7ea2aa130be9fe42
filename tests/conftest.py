"""Real components for the tests: a Kafka-protocol broker (Tansu) started for the session, and
Redis at TASTEMAKER_TEST_REDIS_URL (default redis://127.0.0.1:6379/15), started when nothing answers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from tastemaker.services.config import Settings
from tastemaker.services.embedded import start_broker, start_redis


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


@pytest.fixture
def settings(kafka_bootstrap: str, redis_url: str) -> Iterator[Settings]:
    """Settings isolated per test: their own topic prefix and Redis namespace (removed afterwards)."""
    tag = uuid.uuid4().hex[:10]
    yield Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        topic_prefix=f"test-{tag}.tastemaker",
        redis_namespace=f"test-{tag}",
        grpc_port=0,
        reward_window_s=1.0,
        epsilon=0.2,
    )
    client = redis.Redis.from_url(redis_url)
    stale = list(client.scan_iter(match=f"test-{tag}:*", count=1000))
    if stale:
        client.delete(*stale)
