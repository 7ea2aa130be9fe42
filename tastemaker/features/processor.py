"""The stream processor: `tastemaker.events` → per-user features in Redis.

Offsets are committed only after Redis holds the batch's updates (and the DLQ holds its
rejects), and each event is applied at most once per `event_id`, so a crash between the
update and the commit redelivers events without counting them twice.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from tastemaker.features.dead_letters import dead_letter, send_dead_letter
from tastemaker.features.events import EventRejected, decode_event
from tastemaker.features.store import FeatureStore
from tastemaker.messaging.ports import Consumer, Producer
from tastemaker.v1 import records_pb2

log = logging.getLogger(__name__)


@dataclass
class ProcessorStats:
    consumed: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0


class StreamProcessor:
    def __init__(self, consumer: Consumer, store: FeatureStore, dlq_producer: Producer, dlq_topic: str) -> None:
        self._consumer = consumer
        self._store = store
        self._dlq = dlq_producer
        self._dlq_topic = dlq_topic
        self.stats = ProcessorStats()

    def process_once(self, timeout_s: float = 0.5) -> int:
        """Poll one batch, apply it, commit. Returns the number of records consumed."""
        records = self._consumer.poll(timeout_s)
        if not records:
            return 0
        events: list[records_pb2.UserEvent] = []
        rejected = 0
        for record in records:
            try:
                events.append(decode_event(record.value, record.headers))
            except EventRejected as exc:
                log.warning(
                    "event rejected to DLQ: %s (topic=%s partition=%d offset=%d)",
                    exc,
                    record.topic,
                    record.partition,
                    record.offset,
                )
                send_dead_letter(self._dlq, self._dlq_topic, dead_letter(record, str(exc), "features"))
                rejected += 1
        applied = self._store.apply_events(events)
        if rejected:
            self._dlq.flush()
        self._consumer.commit()
        self.stats.consumed += len(records)
        self.stats.applied += applied
        self.stats.duplicates += len(events) - applied
        self.stats.rejected += rejected
        return len(records)

    def _rewind(self) -> None:
        try:
            self._consumer.rewind()
        except Exception:
            log.exception("rewind failed; will retry")

    def close(self) -> None:
        self._consumer.close()
        self._dlq.close()

    def run(self, stop: threading.Event) -> None:
        log.info("stream processor started")
        while not stop.is_set():
            try:
                self.process_once()
            except Exception:  # keep the stream going: rewind so the uncommitted batch is redelivered
                log.exception("stream processor batch failed; rewinding to the last commit, retry in 1 s")
                stop.wait(1.0)
                self._rewind()
        log.info("stream processor stopped: %s", self.stats)
