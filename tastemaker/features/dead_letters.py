"""Dead letters: a rejected record, its reason and where it came from, to the DLQ topic.

`DeadLetterLedger` sends each rejected source record's letter exactly once across crashes:
per source partition it keeps in Redis the last offset whose letters are acknowledged, and an
intent written before a send; a restart that finds an intent scans the DLQ for the letters
that did get out before the crash, and skips them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import redis

from tastemaker.features import keys
from tastemaker.features.redis_connect import Fence
from tastemaker.messaging.codec import PROTOBUF_HEADERS
from tastemaker.messaging.ports import Producer, Record
from tastemaker.v1 import records_pb2

log = logging.getLogger(__name__)


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


class DeadLetterLedger:
    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        producer: Producer,
        dlq_topic: str,
        source_topic: str,
        scan_dlq: Callable[[], list[Record]],
        stage: str = "features",
        fence: Fence | None = None,
    ) -> None:
        self._redis = client
        self._fence = fence or Fence()
        self._producer = producer
        self._dlq_topic = dlq_topic
        self._stage = stage
        self._sent_key = keys.dead_letter_watermark(namespace, source_topic)
        self._intent_key = keys.dead_letter_intent(namespace, source_topic)
        self._scan_dlq = scan_dlq
        #: (partition, offset) of letters found already sent by a recovery scan
        self._already_sent: set[tuple[int, int]] = set()
        #: partitions checked for an unfinished send by an earlier owner
        self._checked: set[int] = set()

    def _recover(self, partitions: set[int]) -> None:
        """For partitions seen for the first time: if an earlier owner died mid-send, find what it sent."""
        self._checked |= partitions
        intents = self._redis.hmget(self._intent_key, [str(p) for p in sorted(partitions)])
        if not any(intents):
            return
        log.warning("an earlier run may have died while dead-lettering partitions %s; scanning the DLQ", partitions)
        for record in self._scan_dlq():
            letter = records_pb2.DeadLetter.FromString(record.value)
            if letter.stage == self._stage:
                self._already_sent.add((letter.partition, letter.offset))

    def send(self, rejects: Sequence[tuple[Record, str]]) -> int:
        """Send the letters not sent before; returns how many were sent now."""
        if not rejects:
            return 0
        unchecked = {record.partition for record, _ in rejects} - self._checked
        if unchecked:
            self._recover(unchecked)
        sent = {int(keys.text(p)): int(o) for p, o in self._redis.hgetall(self._sent_key).items()}
        todo = [
            (record, reason)
            for record, reason in rejects
            if record.offset > sent.get(record.partition, -1)
            and (record.partition, record.offset) not in self._already_sent
        ]
        last: dict[int, int] = {}
        for record, _ in rejects:
            last[record.partition] = max(last.get(record.partition, -1), record.offset)
        if todo:
            now = int(time.time() * 1000)
            self._redis.hset(self._intent_key, mapping={p: f"{o},{now}" for p, o in last.items()})
            self._fence(self._redis, [self._intent_key])  # the intent survives a failover before we send
            for record, reason in todo:
                send_dead_letter(self._producer, self._dlq_topic, dead_letter(record, reason, self._stage))
            self._producer.flush()
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._sent_key, mapping={p: max(o, sent.get(p, -1)) for p, o in last.items()})
        pipe.hdel(self._intent_key, *[str(p) for p in last])
        pipe.execute()
        self._fence(self._redis, [self._sent_key])
        return len(todo)

    def close(self) -> None:
        self._producer.close()
