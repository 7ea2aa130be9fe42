"""A producer in a state it never leaves is replaced; the publisher resends what it held."""

from __future__ import annotations

import pytest

from tastemaker.messaging.recovering import RecoveringProducer
from tastemaker.services.publisher import BackgroundPublisher


class FatalAfter:
    """A fake Kafka client: every flush after `ok_flushes` fails, forever (like kafka-python's
    producer after InitProducerId failed); what it acknowledged is in `acked`."""

    def __init__(self, acked: list[bytes], ok_flushes: int) -> None:
        self.acked, self._ok, self._pending, self.closed = acked, ok_flushes, [], False

    def send(self, topic: str, value: bytes, key: bytes | None = None, headers: dict[str, bytes] | None = None) -> None:
        self._pending.append(value)

    def flush(self, timeout_s: float = 10.0) -> None:
        if self._ok <= 0:
            self._pending.clear()
            raise RuntimeError("Fatal Error handling request InitProducerIdRequest")
        self._ok -= 1
        self.acked.extend(self._pending)
        self._pending.clear()

    def close(self) -> None:
        self.closed = True


def test_a_failed_client_is_replaced_and_the_error_reaches_the_caller() -> None:
    acked: list[bytes] = []
    built: list[FatalAfter] = []

    def factory() -> FatalAfter:
        built.append(FatalAfter(acked, ok_flushes=1 if not built else 100))
        return built[-1]

    producer = RecoveringProducer(factory)
    producer.send("t", b"a")
    producer.flush()
    producer.send("t", b"b")
    with pytest.raises(RuntimeError, match="InitProducerId"):
        producer.flush()
    assert built[0].closed and producer.rebuilds == 1 and producer.failures == 1
    producer.send("t", b"b")  # the caller sends again: a fresh client takes it
    producer.flush()
    assert acked == [b"a", b"b"] and len(built) == 2


def test_the_publisher_resends_a_failed_batch_and_counts_it() -> None:
    acked: list[bytes] = []
    built: list[FatalAfter] = []

    def factory() -> FatalAfter:
        built.append(FatalAfter(acked, ok_flushes=0 if not built else 100))
        return built[-1]

    publisher = BackgroundPublisher(RecoveringProducer(factory))
    for i in range(20):
        assert publisher.publish("t", str(i).encode())
    publisher.flush(timeout_s=10)
    publisher.close()
    assert sorted(acked, key=int) == [str(i).encode() for i in range(20)]
    assert publisher.stats.failed_attempts >= 1 and publisher.stats.published == 20
    assert publisher.stats.lost == 0 and publisher.stats.dropped == 0
