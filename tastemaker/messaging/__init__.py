"""The Kafka port: small producer/consumer interfaces and their adapters.

Everything else talks to Kafka through these interfaces; `kafka_python` is the default adapter.
"""

from collections.abc import Iterable
from typing import Any

from tastemaker.messaging.ports import (
    JSON_CONTENT_TYPE,
    PROTOBUF_CONTENT_TYPE,
    Consumer,
    Producer,
    Record,
)
from tastemaker.messaging.recovering import RecoveringProducer
from tastemaker.messaging.security import KafkaSecurity

KAFKA_CLIENTS = ("kafka-python", "confluent")
#: producer compression codecs both adapters support (`none`: records travel and are kept as written)
COMPRESSIONS = ("none", "gzip", "lz4", "zstd")


def make_producer(
    client: str,
    bootstrap_servers: str,
    client_id: str = "tastemaker",
    security: KafkaSecurity | None = None,
    compression: str = "none",
) -> RecoveringProducer:
    """A producer from the named adapter (`kafka-python`, the default, or `confluent`) that replaces
    its client after any failure (`RecoveringProducer`); its record batches compressed with
    `compression` (one of COMPRESSIONS)."""
    if client not in KAFKA_CLIENTS:
        raise ValueError(f"unknown Kafka client {client!r}; known: {', '.join(KAFKA_CLIENTS)}")
    if compression not in COMPRESSIONS:
        raise ValueError(f"unknown compression {compression!r}; known: {', '.join(COMPRESSIONS)}")
    return RecoveringProducer(
        lambda: _adapter_producer(client, bootstrap_servers, client_id, security, compression), client_id
    )


def _adapter_producer(
    client: str, bootstrap_servers: str, client_id: str, security: KafkaSecurity | None, compression: str
) -> Producer:
    if client == "confluent":
        from tastemaker.messaging.confluent import ConfluentProducer

        return ConfluentProducer(bootstrap_servers, client_id, security, compression)
    if client == "kafka-python":
        from tastemaker.messaging.kafka_python import KafkaPythonProducer

        return KafkaPythonProducer(bootstrap_servers, client_id, security, compression)
    raise ValueError(f"unknown Kafka client {client!r}; known: {', '.join(KAFKA_CLIENTS)}")


def make_consumer(
    client: str,
    bootstrap_servers: str,
    topics: list[str],
    group_id: str,
    client_id: str = "tastemaker",
    security: KafkaSecurity | None = None,
) -> Consumer:
    """A group consumer with manual commits from the named adapter."""
    if client == "confluent":
        from tastemaker.messaging.confluent import ConfluentConsumer

        return ConfluentConsumer(bootstrap_servers, topics, group_id, client_id, security=security)
    if client == "kafka-python":
        from tastemaker.messaging.kafka_python import KafkaPythonConsumer

        return KafkaPythonConsumer(bootstrap_servers, topics, group_id, client_id, security=security)
    raise ValueError(f"unknown Kafka client {client!r}; known: {', '.join(KAFKA_CLIENTS)}")


def ensure_topics(
    bootstrap_servers: str, names: Iterable[str], partitions: int = 3, security: KafkaSecurity | None = None
) -> None:
    """Create the topics that do not exist yet (idempotent); the admin side is kafka-python's."""
    from tastemaker.messaging.kafka_python import ensure_topics as create

    create(bootstrap_servers, names, partitions=partitions, security=security)


def read_topic_to_end(
    bootstrap_servers: str, topic: str, timeout_s: float = 10.0, security: KafkaSecurity | None = None
) -> list[Record]:
    """Every record now in `topic`, from the beginning, without a consumer group (exports, the
    DLQ scan, the closing report)."""
    from tastemaker.messaging.kafka_python import read_topic_to_end as read

    return read(bootstrap_servers, topic, timeout_s=timeout_s, security=security)


def group_lag(
    bootstrap_servers: str, group_id: str, topic: str, security: KafkaSecurity | None = None
) -> dict[str, Any]:
    """Per partition: end offset minus the group's committed offset (`total`, `partitions`, `committed`)."""
    from tastemaker.messaging.kafka_python import group_lag as lag

    return lag(bootstrap_servers, group_id, topic, security=security)


def broker_unreachable_errors() -> tuple[type[BaseException], ...]:
    """What the installed Kafka clients raise when no broker answers (for a worker that waits)."""
    kinds: list[type[BaseException]] = []
    try:
        from kafka import errors as kafka_errors

        names = ("NoBrokersAvailable", "KafkaTimeoutError", "KafkaConnectionError", "BrokerNotAvailableError")
        kinds += [getattr(kafka_errors, name) for name in names if hasattr(kafka_errors, name)]
    except ImportError:  # pragma: no cover - depends on the install
        pass
    try:
        from confluent_kafka import KafkaException

        kinds.append(KafkaException)
    except ImportError:  # pragma: no cover - depends on the install
        pass
    return tuple(kinds)


__all__ = [
    "broker_unreachable_errors",
    "ensure_topics",
    "group_lag",
    "read_topic_to_end",
    "KAFKA_CLIENTS",
    "make_consumer",
    "make_producer",
    "JSON_CONTENT_TYPE",
    "PROTOBUF_CONTENT_TYPE",
    "Consumer",
    "Producer",
    "Record",
    "RecoveringProducer",
    "KafkaSecurity",
]
