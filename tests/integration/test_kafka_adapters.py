"""Both Kafka adapters honour the same port against the real broker."""

from __future__ import annotations

import uuid

import pytest

from tastemaker.messaging import COMPRESSIONS, KAFKA_CLIENTS, make_consumer, make_producer
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


@pytest.mark.parametrize("compression", [c for c in COMPRESSIONS if c != "none"])
@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_compressed_batches_from_either_adapter_read_back_in_both(
    client: str, compression: str, kafka_bootstrap: str
) -> None:
    """TASTEMAKER_KAFKA_COMPRESSION: each adapter writes compressed batches the broker keeps and
    either adapter reads back byte for byte."""
    topic = f"compressed-{client}-{compression}-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, [topic], partitions=1)
    values = [(b"decision %d " % i) * 300 for i in range(20)]
    producer = make_producer(client, kafka_bootstrap, compression=compression)
    for value in values:
        producer.send(topic, value)
    producer.flush()
    producer.close()
    for reader in KAFKA_CLIENTS:
        consumer = make_consumer(reader, kafka_bootstrap, [topic], f"g-{uuid.uuid4().hex[:8]}")
        got: list = []
        wait_for(
            lambda consumer=consumer, got=got: got.extend(consumer.poll(0.5)) or len(got) >= len(values),
            what="20 records",
        )
        consumer.close()
        assert [r.value for r in got] == values, reader


def test_unknown_compression_is_a_clear_error(kafka_bootstrap: str) -> None:
    with pytest.raises(ValueError, match="unknown compression 'brotli'"):
        make_producer("kafka-python", kafka_bootstrap, compression="brotli")
