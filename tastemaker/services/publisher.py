"""Publishes records from request threads without ever blocking them.

Requests put records on a bounded in-memory queue; one background thread hands them to the
Kafka producer. When the queue is full the record is dropped, counted and logged: serving
latency never waits on the broker.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass

from tastemaker.messaging.ports import Producer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Pending:
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


class BackgroundPublisher:
    def __init__(self, producer: Producer, max_queued: int = 10_000) -> None:
        self._producer = producer
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=max_queued)
        self._thread = threading.Thread(target=self._drain, name="record-publisher", daemon=True)
        self.published = 0
        self.dropped = 0
        self.failed = 0
        self._thread.start()

    def publish(
        self, topic: str, value: bytes, key: bytes | None = None, headers: dict[str, bytes] | None = None
    ) -> bool:
        """Queue a record; returns False (and counts a drop) when the queue is full."""
        try:
            self._queue.put_nowait(_Pending(topic, key, value, headers or {}))
            return True
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("publish queue full: %d records dropped so far (is the broker down?)", self.dropped)
            return False

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.task_done()
                return
            try:
                self._producer.send(item.topic, item.value, key=item.key, headers=item.headers)
                self.published += 1
            except Exception:
                self.failed += 1
                log.exception("could not send a record to %s", item.topic)
            finally:
                self._queue.task_done()

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every queued record is handed to and acknowledged by the broker."""
        self._queue.join()
        self._producer.flush(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout_s)
        self._producer.flush(timeout_s)
        self._producer.close()
