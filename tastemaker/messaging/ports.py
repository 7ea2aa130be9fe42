"""Interfaces every Kafka adapter implements (topic names belong to the domain: `features.topics`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

#: Header that says how a record's value is encoded.
CONTENT_TYPE_HEADER = "content-type"
PROTOBUF_CONTENT_TYPE = "application/x-protobuf"
JSON_CONTENT_TYPE = "application/json"


#: The largest record a producer sends (Apache Kafka's default broker limit is 1 MiB + 12 bytes).
MAX_RECORD_BYTES = 1024 * 1024


class RecordTooLarge(ValueError):
    """A record the producer will never send (over MAX_RECORD_BYTES): retrying cannot help."""


@dataclass(frozen=True)
class Record:
    """One consumed record, adapter-neutral."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes] = field(default_factory=dict)
    timestamp_ms: int = 0


class Producer(Protocol):
    def send(self, topic: str, value: bytes, key: bytes | None = None, headers: dict[str, bytes] | None = None) -> None:
        """Queue one record; may block only while the client's own buffer is full."""

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every queued record is acknowledged; raises if one failed."""

    def close(self) -> None: ...


class Consumer(Protocol):
    def poll(self, timeout_s: float, max_records: int = 500) -> list[Record]: ...

    def commit(self, offsets: dict[tuple[str, int], int] | None = None) -> None:
        """Commit `offsets` ((topic, partition) → next offset to read), or else the offsets of
        every record returned by `poll` so far."""

    def rewind(self) -> None:
        """Go back to the last committed offsets, so uncommitted records are redelivered."""

    def lag(self) -> int:
        """Records not yet consumed across this consumer's assigned partitions."""

    def close(self) -> None: ...
