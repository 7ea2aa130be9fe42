"""The feature store and stream processor against real Redis and the real broker."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from tastemaker.features.processor import StreamProcessor
from tastemaker.features.store import FeatureStore
from tastemaker.messaging.kafka_python import KafkaPythonConsumer, KafkaPythonProducer
from tastemaker.messaging.ports import Topics
from tastemaker.services.bootstrap import prepare_topics
from tastemaker.services.config import Settings
from tastemaker.v1 import records_pb2
from tests.integration.helpers import wait_for

pytestmark = pytest.mark.integration


def _click(user: str, shelf: str, card: str) -> records_pb2.UserEvent:
    return records_pb2.UserEvent(
        event_id=uuid.uuid4().hex,
        user_id=user,
        type="card_click",
        shelf_id=shelf,
        item_id=card,
        event_time_ms=int(time.time() * 1000),
    )


def test_applying_the_same_events_twice_counts_them_once(settings: Settings) -> None:
    store = FeatureStore(redis.Redis.from_url(settings.redis_url), namespace=settings.redis_namespace)
    events = [_click("dora", "shelf-01", "c1"), _click("dora", "shelf-01", "c2"), _click("eve", "shelf-02", "c1")]
    assert store.apply_events(events) == 3
    assert store.apply_events(events) == 0  # a redelivery after a crash
    dora = store.read("dora")
    assert dora.shelf_engagement("shelf-01") == 2 and dora.event_count("card_click") == 2
    assert store.read("eve").card_engagement("c1") == 1
    assert store.read("nobody").shelf_engagement("shelf-01") == 0


def test_uncommitted_batch_is_redelivered_to_the_next_consumer_without_double_counting(settings: Settings) -> None:
    """A processor that dies after writing Redis but before committing: its successor re-reads
    the batch and the per-event dedup leaves the counts as if each event was applied once."""
    prepare_topics(settings)
    topics = Topics(settings.topic_prefix)
    client = redis.Redis.from_url(settings.redis_url)
    store = FeatureStore(client, namespace=settings.redis_namespace)
    producer = KafkaPythonProducer(settings.kafka_bootstrap)
    for _ in range(5):
        producer.send(topics.events, _click("fay", "shelf-03", "c9").SerializeToString(), key=b"fay")
    producer.flush()
    group = f"{settings.topic_prefix}.features"

    crashed = KafkaPythonConsumer(settings.kafka_bootstrap, [topics.events], group)
    applied = 0

    def poll_and_apply() -> bool:
        nonlocal applied
        from tastemaker.features.events import decode_event

        records = crashed.poll(0.5)
        applied += store.apply_events([decode_event(r.value, r.headers) for r in records])
        return applied >= 5

    wait_for(poll_and_apply, what="the first consumer to apply the batch")
    crashed.close()  # closes without committing: as if killed before the commit

    successor = StreamProcessor(
        KafkaPythonConsumer(settings.kafka_bootstrap, [topics.events], group), store, producer, topics.events_dlq
    )
    try:
        wait_for(lambda: successor.process_once() and successor.stats.consumed >= 5, what="redelivery")
        assert successor.stats.duplicates == 5 and successor.stats.applied == 0
        assert store.read("fay").shelf_engagement("shelf-03") == 5
    finally:
        successor.close()
