"""Stream processors as real processes (`tastemaker features run`), and the exactness check: every
counter equals the recount of the produced stream, and the DLQ holds each malformed record once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tastemaker.features.redis_connect import connect
from tastemaker.features.store import FeatureStore
from tastemaker.features.topics import Topics
from tastemaker.messaging import group_lag
from tastemaker.messaging.kafka_python import read_topic_to_end
from tastemaker.services.bootstrap import consumer_group
from tastemaker.services.config import Settings
from tastemaker.v1 import records_pb2
from tests.support.event_stream import TYPES, Expected

N_EVENTS = 100_000


def committed(settings: Settings) -> int:
    """Offsets the processors' group has committed on the events topic, all partitions."""
    group, topic = consumer_group(settings, "features"), Topics(settings.topic_prefix).events
    return sum(group_lag(settings.kafka_bootstrap, group, topic)["committed"].values())


def processor_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "TASTEMAKER_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TASTEMAKER_REDIS_URL": settings.redis_url,
        "TASTEMAKER_TOPIC_PREFIX": settings.topic_prefix,
        "TASTEMAKER_REDIS_NAMESPACE": settings.redis_namespace,
        "TASTEMAKER_REDIS_WAIT_REPLICAS": str(settings.redis_wait_replicas),
        "TASTEMAKER_LOG_LEVEL": "WARNING",
    }


def start_processor(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tastemaker.cli", "features", "run"],
            env=processor_env(settings), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def wait_until_drained(settings: Settings, timeout_s: float = 300) -> None:
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


def assert_exact(settings: Settings, expected: Expected) -> None:
    store = FeatureStore(connect(settings.redis_url), namespace=settings.redis_namespace)
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
