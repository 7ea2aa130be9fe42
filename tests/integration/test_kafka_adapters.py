"""Both Kafka adapters honour the same port against the real broker."""

from __future__ import annotations

import uuid

import pytest

from tastemaker.messaging import KAFKA_CLIENTS, make_consumer, make_producer
from tastemaker.messaging.kafka_python import ensure_topics
from tests.integration.helpers import wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_produce_consume_commit_and_rewind(client: str, kafka_bootstrap: str) -> None:
    topic = f"adapter-{client}-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, [topic], partitions=2)
    producer = make_producer(client, kafka_bootstrap)
    for i in range(10):
        producer.send(topic, f"v{i}".encode(), key=f"k{i}".encode(), headers={"content-type": b"x/test"})
    producer.flush()
    producer.close()

    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = make_consumer(client, kafka_bootstrap, [topic], group)
    got: list = []
    wait_for(lambda: got.extend(consumer.poll(0.5)) or len(got) >= 10, what="ten records")
    assert sorted(r.value for r in got) == sorted(f"v{i}".encode() for i in range(10))
    assert all(r.headers == {"content-type": b"x/test"} and r.topic == topic for r in got)
    consumer.commit()

    producer = make_producer(client, kafka_bootstrap)
    producer.send(topic, b"uncommitted", key=b"k0")
    producer.flush()
    producer.close()
    first: list = []
    wait_for(lambda: first.extend(consumer.poll(0.5)) or first, what="the new record")
    consumer.rewind()  # not committed: it comes again
    again: list = []
    wait_for(lambda: again.extend(consumer.poll(0.5)) or again, what="the redelivered record")
    assert [r.value for r in first] == [r.value for r in again] == [b"uncommitted"]
    consumer.close()


def test_unknown_client_is_a_clear_error(kafka_bootstrap: str) -> None:
    with pytest.raises(ValueError, match="unknown Kafka client 'kafka-java'"):
        make_producer("kafka-java", kafka_bootstrap)
