"""confluent-kafka adapter (librdkafka, C): ~25× kafka-python's produce rate here,
and its produce call releases the GIL quickly, which keeps serving latency flat."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

try:
    from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition
    from confluent_kafka import Consumer as _Consumer
    from confluent_kafka import Producer as _Producer
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("the confluent adapter needs confluent-kafka: pip install confluent-kafka") from exc

from tastemaker.messaging.ports import MAX_RECORD_BYTES, Record, RecordTooLarge
from tastemaker.messaging.security import KafkaSecurity


class ConfluentProducer:
    def __init__(
        self,
        bootstrap_servers: str,
        client_id: str = "tastemaker",
        security: KafkaSecurity | None = None,
        compression: str = "none",
    ) -> None:
        self._producer = _Producer(
            {
                **(security or KafkaSecurity()).confluent(),
                "bootstrap.servers": bootstrap_servers,
                "client.id": client_id,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": compression,
                "message.max.bytes": MAX_RECORD_BYTES,
            }
        )
        self._errors: list[KafkaError] = []

    def _on_delivery(self, error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            self._errors.append(error)

    def send(self, topic: str, value: bytes, key: bytes | None = None, headers: dict[str, bytes] | None = None) -> None:
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=list((headers or {}).items()), on_delivery=self._on_delivery
                )
                break
            except BufferError:  # the local queue is full: serve delivery reports, then retry
                self._producer.poll(0.1)
            except KafkaException as exc:
                if exc.args and exc.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE:
                    raise RecordTooLarge(f"a {len(value):,}-byte record for {topic}: {exc}") from exc
                raise
        self._producer.poll(0)

    def flush(self, timeout_s: float = 10.0) -> None:
        remaining = self._producer.flush(timeout_s)
        errors, self._errors = self._errors, []
        if errors:
            raise KafkaException(errors[0])
        if remaining:
            raise TimeoutError(f"{remaining} records not acknowledged within {timeout_s} s")

    def close(self) -> None:
        self._producer.flush(5)


class ConfluentConsumer:
    def __init__(
        self,
        bootstrap_servers: str,
        topics: Iterable[str],
        group_id: str,
        client_id: str = "tastemaker",
        auto_offset_reset: str = "earliest",
        security: KafkaSecurity | None = None,
    ) -> None:
        self._consumer = _Consumer(
            {
                **(security or KafkaSecurity()).confluent(),
                "bootstrap.servers": bootstrap_servers,
                "group.id": group_id,
                "client.id": client_id,
                "enable.auto.commit": False,
                "auto.offset.reset": auto_offset_reset,
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 1000,
                "max.poll.interval.ms": 10000,
                "fetch.wait.max.ms": 100,
            }
        )
        self._consumer.subscribe(list(topics))
        self._positions: dict[tuple[str, int], int] = {}

    def poll(self, timeout_s: float, max_records: int = 500) -> list[Record]:
        # Block only until the first record, then take what is already fetched: a batch never
        # waits to fill up, so features stay fresh at low rates.
        messages = self._consumer.consume(num_messages=1, timeout=timeout_s)
        if messages:
            messages += self._consumer.consume(num_messages=max_records - 1, timeout=0)
        out = []
        for msg in messages:
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(error)
            record = _to_record(msg)
            self._positions[(record.topic, record.partition)] = record.offset + 1
            out.append(record)
        return out

    def commit(self, offsets: dict[tuple[str, int], int] | None = None) -> None:
        chosen = self._positions if offsets is None else offsets
        if chosen:
            self._consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in chosen.items()], asynchronous=False)
        if offsets is None:
            self._positions.clear()

    def rewind(self) -> None:
        assigned = self._consumer.assignment()
        for tp in self._consumer.committed(assigned, timeout=10):
            self._consumer.seek(
                TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
            )
        self._positions.clear()

    def lag(self) -> int:
        total = 0
        for tp in self._consumer.position(self._consumer.assignment()):
            _low, high = self._consumer.get_watermark_offsets(tp, cached=True)  # from fetch replies; no request
            if high < 0:
                continue
            total += max(0, high - tp.offset) if tp.offset >= 0 else high
        return total

    def close(self) -> None:
        self._consumer.close()


def _to_record(msg: Any) -> Record:
    return Record(
        topic=msg.topic(),
        partition=msg.partition(),
        offset=msg.offset(),
        key=msg.key(),
        value=msg.value() or b"",
        headers={name: value or b"" for name, value in (msg.headers() or [])},
        timestamp_ms=msg.timestamp()[1],
    )
