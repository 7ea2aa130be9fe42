"""A producer that replaces its client when a send or a flush fails.

A Kafka client can fall into a state it never leaves: kafka-python's idempotent producer, after
the broker restarts without its producer-id state, fails every later batch with "Fatal Error
handling request InitProducerIdRequest". Any failure therefore closes the client and builds a new
one before the error goes to the caller, who still holds the records and sends them again: a
retry always meets a fresh client.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tastemaker.messaging.ports import Producer, RecordTooLarge

log = logging.getLogger(__name__)


class RecoveringProducer:
    def __init__(self, factory: Callable[[], Producer], name: str = "producer") -> None:
        self._factory = factory
        self._name = name
        self._lock = threading.Lock()
        self._inner: Producer | None = None
        #: failed sends or flushes, and clients built to replace a failed one
        self.failures = 0
        self.rebuilds = 0

    def _client(self) -> Producer:
        with self._lock:
            if self._inner is None:
                self._inner = self._factory()
            return self._inner

    def _replace(self, failed: Producer, exc: BaseException) -> None:
        with self._lock:
            self.failures += 1
            if self._inner is not failed:  # another thread replaced it already
                return
            self._inner = None
            self.rebuilds += 1
        log.warning("%s: %s: %s; replacing the Kafka client", self._name, type(exc).__name__, exc)
        try:
            failed.close()
        except Exception as close_exc:  # a client in a fatal state may not close cleanly
            log.info("%s: closing the failed client: %s", self._name, close_exc)

    def send(self, topic: str, value: bytes, key: bytes | None = None, headers: dict[str, bytes] | None = None) -> None:
        client = self._client()
        try:
            client.send(topic, value, key=key, headers=headers)
        except RecordTooLarge:
            raise  # the record, not the client: a new client would refuse it too
        except Exception as exc:
            self._replace(client, exc)
            raise

    def flush(self, timeout_s: float = 10.0) -> None:
        client = self._client()
        try:
            client.flush(timeout_s)
        except Exception as exc:
            self._replace(client, exc)
            raise

    def close(self) -> None:
        with self._lock:
            inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()
