"""The stream processor: `tastemaker.events` → per-user and per-item features in Redis.

Each poll is one batch: decode, dead-letter the rejects (exactly once, see dead_letters.py),
apply the rest in one pipelined Redis round trip (exactly once, see store.py), then commit
the offsets. A crash anywhere in between redelivers the batch, which changes nothing twice.
Batches overlap by one: the next is polled and decoded while Redis runs the previous one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import redis

from tastemaker.features import keys
from tastemaker.features.dead_letters import DeadLetterLedger
from tastemaker.features.events import EventRejected, decode_event
from tastemaker.features.feature_writer import FeatureWriter, PendingApply
from tastemaker.features.folding import Provenance
from tastemaker.features.patience import unreachable
from tastemaker.messaging.ports import Consumer, Record
from tastemaker.v1 import records_pb2

log = logging.getLogger(__name__)


@dataclass
class ProcessorStats:
    consumed: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    #: batches that failed (Redis or the broker away, ...) and were rewound to be redelivered
    failures: int = 0
    events_per_s: float = 0.0
    lag: int = -1


@dataclass
class _InFlight:
    pending: PendingApply
    offsets: dict[tuple[str, int], int]
    records: int
    events: int
    rejected: int


class StreamProcessor:
    def __init__(
        self,
        consumer: Consumer,
        store: FeatureWriter,
        dead_letters: DeadLetterLedger,
        status: redis.Redis | None = None,
        namespace: str = "tm",
        instance: str | None = None,
        status_every_s: float = 2.0,
        on_status: Callable[[ProcessorStats], None] | None = None,
        max_batch: int = 2000,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"`max_batch` must be positive, got {max_batch}")
        self._consumer = consumer
        self._store = store
        self._dead_letters = dead_letters
        self._status = status
        self._status_key = keys.processor_status(namespace)
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}"
        self._status_every_s = status_every_s
        self._on_status = on_status
        self._last_status = (time.monotonic(), 0)
        self.stats = ProcessorStats()
        self._in_flight: _InFlight | None = None
        # Larger batches fold more events into each user's one Redis call (folding.py); a batch
        # never waits to fill, so this bounds work per round trip, not freshness.
        self._max_batch = max_batch

    def process_once(self, timeout_s: float = 0.5) -> int:
        """Poll and prepare one batch while Redis runs the previous one, then finish that one
        (wait for Redis, commit its offsets) and send this one. Returns the records polled."""
        records = self._consumer.poll(0.0 if self._in_flight is not None else timeout_s, self._max_batch)
        prepared = self._prepare(records) if records else None
        self.finish()
        if prepared is not None:
            batch, offsets, rejects = prepared
            self._in_flight = _InFlight(self._store.send(batch), offsets, len(records), len(batch), rejects)
        self._maybe_publish_status()
        return len(records)

    def _prepare(
        self, records: list[Record]
    ) -> tuple[list[tuple[records_pb2.UserEvent, Provenance]], dict[tuple[str, int], int], int]:
        batch: list[tuple[records_pb2.UserEvent, Provenance]] = []
        rejects: list[tuple[Record, str]] = []
        offsets: dict[tuple[str, int], int] = {}
        for record in records:
            offsets[(record.topic, record.partition)] = record.offset + 1
            try:
                event = decode_event(record.value, record.headers)
            except EventRejected as exc:
                rejects.append((record, str(exc)))
                continue
            batch.append((event, Provenance(record.topic, record.partition, record.offset)))
        if rejects:
            sent = self._dead_letters.send(rejects)
            first, reason = rejects[0]
            log.warning(
                "dead-lettered %d of %d rejected records, e.g. offset %d: %s", sent, len(rejects), first.offset, reason
            )
        return batch, offsets, len(rejects)

    def finish(self) -> None:
        """Wait for the batch in flight, then commit its offsets: Redis has it before Kafka forgets it."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None:
            return
        applied = in_flight.pending.wait()
        self._consumer.commit(in_flight.offsets)
        self.stats.consumed += in_flight.records
        self.stats.applied += applied
        self.stats.duplicates += in_flight.events - applied
        self.stats.rejected += in_flight.rejected
        self.stats.batches += 1

    def _maybe_publish_status(self) -> None:
        now = time.monotonic()
        since, consumed_then = self._last_status
        if now - since < self._status_every_s:
            return
        self.stats.events_per_s = (self.stats.consumed - consumed_then) / (now - since)
        self._last_status = (now, self.stats.consumed)
        try:
            self.stats.lag = self._consumer.lag()
        except Exception:  # lag is best-effort: a metadata hiccup must not stop the stream
            self.stats.lag = -1
        if self._on_status is not None:
            self._on_status(self.stats)
        if self._status is not None:
            status = {**asdict(self.stats), "updated_at_ms": int(time.time() * 1000)}
            self._status.hset(self._status_key, self.instance, json.dumps(status))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.finish()
        if self._status is not None:
            with contextlib.suppress(redis.RedisError):
                self._status.hdel(self._status_key, self.instance)
        self._consumer.close()
        self._dead_letters.close()

    def _rewind(self) -> None:
        if self._in_flight is not None:  # never committed: the rewind redelivers it
            self._in_flight.pending.abandon()
            self._in_flight = None
        try:
            self._consumer.rewind()
        except Exception:
            log.exception("rewind failed; will retry")

    def run(self, stop: threading.Event) -> None:
        log.info("stream processor %s started", self.instance)
        while not stop.is_set():
            try:
                self.process_once()
            except Exception as exc:  # keep the stream going: rewind so the uncommitted batch is redelivered
                self.stats.failures += 1
                if self._on_status is not None:  # the metric moves even while Redis is away
                    self._on_status(self.stats)
                if unreachable(exc):  # Redis or the broker away: one line, not a traceback a second
                    log.warning("stream processor: %s: %s; rewinding to the last commit, retry in 1 s",
                                type(exc).__name__, exc)  # fmt: skip
                else:
                    log.exception("stream processor batch failed; rewinding to the last commit, retry in 1 s")
                stop.wait(1.0)
                self._rewind()
        try:
            self.finish()
        except Exception:
            log.exception("could not finish the last batch; it will be redelivered")
        log.info("stream processor stopped: %s", self.stats)
