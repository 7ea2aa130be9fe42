"""Publishes records from request threads without ever blocking them.

Requests put records on a bounded in-memory queue; one background thread hands them to the Kafka
producer in batches and waits for each batch's acknowledgement. A batch that fails is sent again
(the producer replaces a client that failed, `RecoveringProducer`), with a growing pause, until
the broker takes it: a broker restart loses nothing that is queued. While the broker is away the
queue fills; when it is full a new record is dropped. Every drop, failed attempt and record given
up at shutdown is counted (`stats`, Prometheus) and logged: nothing is lost silently.

With a spool (`TASTEMAKER_SPOOL_PATH`, `services/spool.py`) the queue is on disk instead: a record
is stored durably before `publish` returns, survives the broker's outage and the process's death,
and is deleted only once acknowledged; a restarted process sends what the last one left, in order.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass

from tastemaker.messaging.ports import Producer, RecordTooLarge
from tastemaker.services.spool import Spool

log = logging.getLogger(__name__)

#: records handed to the producer before waiting for their acknowledgement
BATCH = 500


@dataclass(frozen=True)
class _Pending:
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


@dataclass
class PublisherStats:
    published: int = 0
    #: refused because the queue was full
    dropped: int = 0
    #: batches that failed to send and were sent again
    failed_attempts: int = 0
    #: records still unsent when `close` gave up
    lost: int = 0
    #: records the producer refuses outright (over the record size limit)
    refused: int = 0


class BackgroundPublisher:
    def __init__(
        self, producer: Producer, max_queued: int = 10_000, ack_timeout_s: float = 10.0, spool: Spool | None = None
    ) -> None:
        self._producer = producer
        self._spool = spool
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=max_queued)
        self._ack_timeout_s = ack_timeout_s
        self._closing = threading.Event()
        self._idle = threading.Condition()
        self._count_lock = threading.Lock()
        self._accepted = 0  # records queued so far
        self._finished = 0  # of those, acknowledged or given up
        self.stats = PublisherStats()
        if spool is not None and len(spool):
            log.warning(
                "%d records left in the spool %s by an earlier process: sending them first", len(spool), spool.path
            )
        target = self._drain if spool is None else self._drain_spool
        self._thread = threading.Thread(target=target, name="record-publisher", daemon=True)
        self._thread.start()

    def queued(self) -> int:
        """Records waiting for the broker (queued or in an unacknowledged batch)."""
        if self._spool is not None:
            return len(self._spool)
        return self._accepted - self._finished

    def publish(
        self, topic: str, value: bytes, key: bytes | None = None, headers: dict[str, bytes] | None = None
    ) -> bool:
        """Queue a record; returns False (and counts a drop) when the queue is full."""
        if self._spool is not None:
            if self._spool.append(topic, value, key, headers or {}):
                return True
            self.stats.dropped += 1
            if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                log.error("spool full: %d records dropped so far (is the broker down?)", self.stats.dropped)
            return False
        try:
            with self._count_lock:
                self._queue.put_nowait(_Pending(topic, key, value, headers or {}))
                self._accepted += 1
            return True
        except queue.Full:
            self.stats.dropped += 1
            if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                log.error("publish queue full: %d records dropped so far (is the broker down?)", self.stats.dropped)
            return False

    def _next_batch(self) -> tuple[list[_Pending], bool]:
        """Up to BATCH records (waiting for the first), and whether `close` asked to stop."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _drain(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._next_batch()
            size = len(batch)
            self._send(batch)
            with self._idle:
                self._finished += size
                self._idle.notify_all()

    def _drain_spool(self) -> None:
        assert self._spool is not None
        while True:
            records = self._spool.take(BATCH, timeout_s=0.2)
            if not records:
                if self._closing.is_set():
                    return
                continue
            batch = [_Pending(r.topic, r.key, r.value, r.headers) for r in records]
            if not self._send(batch):
                return  # closing while the broker is away: the records stay in the spool
            self._spool.done(records[-1].row)
            with self._idle:
                self._idle.notify_all()

    def _send(self, batch: list[_Pending]) -> bool:
        """True once the broker has the batch; False when `close` gave up on it."""
        attempt = 0
        while batch:
            try:
                for item in list(batch):
                    try:
                        self._producer.send(item.topic, item.value, key=item.key, headers=item.headers)
                    except RecordTooLarge as exc:  # never sendable: count it, say so, send the rest
                        batch.remove(item)
                        self.stats.refused += 1
                        log.error("dropped a record the producer refuses (%d so far): %s", self.stats.refused, exc)
                self._producer.flush(self._ack_timeout_s)
                self.stats.published += len(batch)
                if attempt:
                    log.warning("sent %d records after %d failed attempts", len(batch), attempt)
                return True
            except Exception as exc:
                attempt += 1
                self.stats.failed_attempts += 1
                if self._closing.is_set():
                    if self._spool is not None:
                        log.error(
                            "shutting down: %d records stay in the spool for the next start (%s)", len(self._spool), exc
                        )
                        return False
                    self.stats.lost += len(batch)
                    log.error("shutting down: %d records could not be sent (%s)", len(batch), exc)
                    return False
                pause = min(5.0, 0.1 * 2**attempt)
                log.error(
                    "could not send %d records (attempt %d: %s: %s); sending them again in %.1f s",
                    len(batch), attempt, type(exc).__name__, exc, pause,
                )  # fmt: skip
                self._closing.wait(pause)
        return True  # nothing sendable was left (every record refused)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every record queued so far is acknowledged by the broker (or `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self.queued() and time.monotonic() < deadline:
                self._idle.wait(min(0.05, max(0.0, deadline - time.monotonic())))

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued within `timeout_s`, then stop; what is still unsent is counted lost."""
        deadline = time.monotonic() + timeout_s
        self.flush(timeout_s)
        self._closing.set()
        if self._spool is not None:
            self._spool.wake()
        else:
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=max(0.0, deadline - time.monotonic()))
        self._thread.join(max(0.1, deadline - time.monotonic()))
        if self._thread.is_alive() and self._spool is None:
            self.stats.lost += self.queued()
            log.error("publisher did not finish within %.0f s: %d records unsent", timeout_s, self.queued())
        if self._spool is not None and len(self._spool):
            log.warning("%d records stay in the spool %s for the next start", len(self._spool), self._spool.path)
        try:
            self._producer.close()
        except Exception as exc:
            log.warning("closing the producer: %s", exc)
