"""kafka-python adapter (pure Python; the design card's default client)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import MessageSizeTooLargeError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from tastemaker.messaging.ports import MAX_RECORD_BYTES, Record, RecordTooLarge
from tastemaker.messaging.security import KafkaSecurity

log = logging.getLogger(__name__)

# Group-join settings that join in ~3 s against Tansu; the defaults can stall.
_GROUP_SETTINGS: dict[str, Any] = {
    "max_poll_interval_ms": 10_000,
    "session_timeout_ms": 6_000,
    "heartbeat_interval_ms": 1_000,
    # A fetch returns after at most 100 ms with what it has: features stay fresh at low rates.
    "fetch_max_wait_ms": 100,
}


class KafkaPythonProducer:
    def __init__(
        self,
        bootstrap_servers: str,
        client_id: str = "tastemaker",
        security: KafkaSecurity | None = None,
        compression: str = "none",
    ) -> None:
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            **(security or KafkaSecurity()).kafka_python(),
            acks="all",
            linger_ms=5,
            retries=5,
            compression_type=None if compression == "none" else compression,
            max_request_size=MAX_RECORD_BYTES,
        )
        self._futures: list[Any] = []

    def send(self, topic: str, value: bytes, key: bytes | None = None, headers: dict[str, bytes] | None = None) -> None:
        header_list = list((headers or {}).items())
        try:
            self._futures.append(self._producer.send(topic, value=value, key=key, headers=header_list))
        except MessageSizeTooLargeError as exc:
            raise RecordTooLarge(f"a {len(value):,}-byte record for {topic}: {exc}") from exc
        if len(self._futures) > 10_000:
            self._futures = [f for f in self._futures if not f.is_done]

    def flush(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout=timeout_s)
        futures, self._futures = self._futures, []
        for future in futures:
            if future.failed():
                raise future.exception
        return None

    def close(self) -> None:
        self._producer.close(timeout=5)


class KafkaPythonConsumer:
    """A group consumer with manual commits: callers commit only after their side effects."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Iterable[str],
        group_id: str,
        client_id: str = "tastemaker",
        auto_offset_reset: str = "earliest",
        security: KafkaSecurity | None = None,
    ) -> None:
        self._consumer = KafkaConsumer(
            *topics,
            **(security or KafkaSecurity()).kafka_python(),
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset=auto_offset_reset,
            **_GROUP_SETTINGS,
        )

    def poll(self, timeout_s: float, max_records: int = 500) -> list[Record]:
        batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        return [_to_record(msg) for messages in batches.values() for msg in messages]

    def commit(self, offsets: dict[tuple[str, int], int] | None = None) -> None:
        if offsets is None:
            self._consumer.commit()
        elif offsets:
            self._consumer.commit({TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()})

    def rewind(self) -> None:
        for tp in self._consumer.assignment():
            committed = self._consumer.committed(tp)
            if committed is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)

    def lag(self) -> int:
        """Records not yet consumed across this consumer's assigned partitions."""
        assigned = list(self._consumer.assignment())
        if not assigned:
            return 0
        ends = self._consumer.end_offsets(assigned)
        return sum(max(0, ends[tp] - self._consumer.position(tp)) for tp in assigned)

    def close(self) -> None:
        self._consumer.close()


def _to_record(msg: Any) -> Record:
    headers = {name: value for name, value in (msg.headers or [])}
    return Record(
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=msg.key,
        value=msg.value if msg.value is not None else b"",
        headers=headers,
        timestamp_ms=msg.timestamp or 0,
    )


def read_topic_to_end(
    bootstrap_servers: str, topic: str, timeout_s: float = 10.0, security: KafkaSecurity | None = None
) -> list[Record]:
    """Read every record currently in `topic`, from the beginning, without a consumer group.

    Reads until every partition is at its reported end offset *and* a poll comes back empty:
    some brokers (Tansu) report the end as the last batch's base offset + 1."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, **(security or KafkaSecurity()).kafka_python()
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        records: list[Record] = []
        deadline = time.monotonic() + timeout_s
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out reading {topic} to its end after {len(records)} records")
            batches = consumer.poll(timeout_ms=300)
            for messages in batches.values():
                records.extend(_to_record(m) for m in messages)
            if not batches and all(consumer.position(tp) >= ends[tp] for tp in tps):
                return records
    finally:
        consumer.close()


def ensure_topics(
    bootstrap_servers: str, names: Iterable[str], partitions: int = 3, security: KafkaSecurity | None = None
) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="tastemaker-admin",
        **(security or KafkaSecurity()).kafka_python(),
    )
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if missing:
            try:
                admin.create_topics(missing)
                log.info("created topics %s", [t.name for t in missing])
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def group_lag(
    bootstrap_servers: str, group_id: str, topic: str, security: KafkaSecurity | None = None
) -> dict[str, Any]:
    """Per partition: end offset minus the group's committed offset (all of it when nothing is committed).

    Tansu reports a partition's end offset as its last batch's base offset + 1, so against
    Tansu this under-counts lag by up to one batch; Apache Kafka reports the true end."""
    extra = (security or KafkaSecurity()).kafka_python()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="tastemaker-status", **extra)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, client_id="tastemaker-status", **extra)
    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = consumer.end_offsets(tps) if tps else {}
        committed = admin.list_group_offsets({group_id: tps}).get(group_id, {}) if tps else {}
        per_partition, committed_offsets = {}, {}
        for tp in tps:
            done = committed.get(tp)
            offset = done.offset if done is not None and done.offset >= 0 else 0
            committed_offsets[str(tp.partition)] = offset
            per_partition[str(tp.partition)] = max(0, ends[tp] - offset)
        return {"total": sum(per_partition.values()), "partitions": per_partition, "committed": committed_offsets}
    finally:
        consumer.close()
        admin.close()
