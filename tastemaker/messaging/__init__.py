"""The Kafka port: small producer/consumer interfaces, the topic names, and their adapters.

Everything else talks to Kafka through these interfaces; `kafka_python` is the default adapter.
"""

from tastemaker.messaging.ports import (
    JSON_CONTENT_TYPE,
    PROTOBUF_CONTENT_TYPE,
    Consumer,
    Producer,
    Record,
    Topics,
)

__all__ = ["JSON_CONTENT_TYPE", "PROTOBUF_CONTENT_TYPE", "Consumer", "Producer", "Record", "Topics"]
