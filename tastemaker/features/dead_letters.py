"""Dead letters: a rejected record, its reason and where it came from, to the DLQ topic."""

from __future__ import annotations

import time

from tastemaker.messaging.codec import PROTOBUF_HEADERS
from tastemaker.messaging.ports import Producer, Record
from tastemaker.v1 import records_pb2


def dead_letter(record: Record, reason: str, stage: str) -> records_pb2.DeadLetter:
    return records_pb2.DeadLetter(
        reason=reason,
        original_value=record.value,
        original_key=record.key or b"",
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        failed_at_ms=int(time.time() * 1000),
        stage=stage,
    )


def send_dead_letter(producer: Producer, dlq_topic: str, letter: records_pb2.DeadLetter) -> None:
    producer.send(
        dlq_topic,
        letter.SerializeToString(),
        key=letter.original_key or None,
        headers={**PROTOBUF_HEADERS, "reason": letter.reason.encode()},
    )
