"""Exactly-once effect of the stream processor, with real processes killed by SIGKILL."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from tastemaker.features.status import group_lag
from tastemaker.features.store import FeatureStore
from tastemaker.features.topics import Topics
from tastemaker.messaging import make_producer
from tastemaker.messaging.kafka_python import read_topic_to_end
from tastemaker.services.bootstrap import consumer_group, prepare_topics
from tastemaker.services.config import Settings
from tastemaker.v1 import records_pb2
from tests.support.event_stream import TYPES, Expected, produce_stream

pytestmark = pytest.mark.integration
N_EVENTS = 100_000


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "TASTEMAKER_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TASTEMAKER_REDIS_URL": settings.redis_url,
        "TASTEMAKER_TOPIC_PREFIX": settings.topic_prefix,
        "TASTEMAKER_REDIS_NAMESPACE": settings.redis_namespace,
        "TASTEMAKER_LOG_LEVEL": "WARNING",
    }


def _start(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tastemaker.services.cli", "features", "run"],
            env=_env(settings), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _wait_until_drained(settings: Settings, timeout_s: float = 300) -> None:
    """Offsets are contiguous from 0, so the group has committed everything when they sum to N."""
    group, topic = consumer_group(settings, "features"), Topics(settings.topic_prefix).events
    deadline = time.monotonic() + timeout_s
    lag = None
    while time.monotonic() < deadline:
        lag = group_lag(settings.kafka_bootstrap, group, topic)
        if sum(lag["committed"].values()) == N_EVENTS:
            return
        time.sleep(1.0)
    raise AssertionError(f"the processors did not drain the topic in {timeout_s} s: {lag}")


def _assert_exact(settings: Settings, expected: Expected) -> None:
    store = FeatureStore(redis.Redis.from_url(settings.redis_url), namespace=settings.redis_namespace)
    users = sorted(expected.users)
    mismatches = []
    for user, features in zip(users, store.read_many(users), strict=True):
        for event_type in TYPES:
            want = expected.counts[(user, f"events.{event_type}.count")]
            if features.event_count(event_type) != want:
                mismatches.append((user, event_type, features.event_count(event_type), want))
        for (u, shelf), want in expected.shelf.items():
            if u == user and features.shelf_engagement(shelf) != want:
                mismatches.append((user, shelf, features.shelf_engagement(shelf), want))
    for item, want in expected.item.items():
        got = store.read_item(item)["item.engagement.count"]
        if got != want:
            mismatches.append((item, got, want))
    assert not mismatches, f"{len(mismatches)} counters differ from the recount, e.g. {mismatches[:5]}"

    letters = [
        records_pb2.DeadLetter.FromString(r.value)
        for r in read_topic_to_end(settings.kafka_bootstrap, Topics(settings.topic_prefix).events_dlq, timeout_s=60)
    ]
    assert Counter(letter.original_value for letter in letters) == Counter(expected.malformed), (
        "the DLQ must hold exactly the malformed records, once each"
    )
    assert all(letter.reason for letter in letters)


@pytest.fixture
def stream(settings: Settings) -> Expected:
    prepare_topics(settings)
    producer = make_producer("confluent", settings.kafka_bootstrap)
    expected = produce_stream(producer, Topics(settings.topic_prefix).events, N_EVENTS, malformed_share=0.01, seed=3)
    producer.close()
    assert 800 < len(expected.malformed) < 1200
    return expected


def test_sigkill_at_five_random_points_then_restart(settings: Settings, stream: Expected, tmp_path: Path) -> None:
    rng = random.Random(11)
    log = tmp_path / "processor.log"
    group, topic = consumer_group(settings, "features"), Topics(settings.topic_prefix).events
    progress = []
    # kill at random points of the stream, whatever this machine's speed: once the committed work
    # passes a random share of it, plus a random fraction of a batch cycle
    for target in sorted(rng.uniform(0.05, 0.85) * N_EVENTS for _ in range(5)):
        processor = _start(settings, log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and processor.poll() is None:
            if sum(group_lag(settings.kafka_bootstrap, group, topic)["committed"].values()) >= target:
                break
            time.sleep(0.2)
        time.sleep(rng.uniform(0.0, 0.3))
        processor.kill()  # SIGKILL: no handler, no commit, no clean leave
        processor.wait()
        progress.append(sum(group_lag(settings.kafka_bootstrap, group, topic)["committed"].values()))
    # the kills landed mid-stream: work had been committed and work remained
    assert sum(0 < done < N_EVENTS for done in progress) >= 3, progress
    processor = _start(settings, log)
    try:
        _wait_until_drained(settings)
    finally:
        processor.terminate()
        processor.wait(30)
    _assert_exact(settings, stream)


def test_two_processes_in_one_group_one_killed_mid_stream(settings: Settings, stream: Expected, tmp_path: Path) -> None:
    survivor = _start(settings, tmp_path / "survivor.log")
    victim = _start(settings, tmp_path / "victim.log")
    try:
        status = redis.Redis.from_url(settings.redis_url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and status.hlen(f"{settings.redis_namespace}:processors") < 2:
            time.sleep(0.5)  # both have joined and published their first status
        time.sleep(3.0)
        victim.kill()
        victim.wait()
        _wait_until_drained(settings)
    finally:
        for process in (survivor, victim):
            if process.poll() is None:
                process.terminate()
                process.wait(30)
    _assert_exact(settings, stream)
