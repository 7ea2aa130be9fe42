"""The on-disk spool behind the publisher: records survive a broker outage and the process, are sent
in order exactly once when the broker returns, and a full spool refuses and counts."""

from __future__ import annotations

import time
from pathlib import Path

from tastemaker.services.publisher import BackgroundPublisher
from tastemaker.services.spool import Spool


class Broker:
    """A fake producer: refuses every flush while `down`, else keeps what it was sent."""

    def __init__(self, down: bool) -> None:
        self.down = down
        self.pending: list[tuple[str, bytes, bytes | None, dict[str, bytes]]] = []
        self.received: list[tuple[str, bytes, bytes | None, dict[str, bytes]]] = []

    def send(self, topic: str, value: bytes, key: bytes | None = None, headers: dict[str, bytes] | None = None) -> None:
        self.pending.append((topic, value, key, headers or {}))

    def flush(self, timeout_s: float = 10.0) -> None:
        if self.down:
            self.pending.clear()
            raise ConnectionError("broker down")
        self.received += self.pending
        self.pending.clear()

    def close(self) -> None:
        pass


def test_spooled_records_outlive_the_outage_and_the_process_and_go_out_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    down = Broker(down=True)
    first = BackgroundPublisher(down, spool=Spool(path))  # type: ignore[arg-type]
    for i in range(120):
        assert first.publish("decisions", f"d{i}".encode(), key=f"k{i}".encode(), headers={"h": b"\x00\xff"})
    time.sleep(0.3)
    assert first.queued() == 120 and first.stats.lost == 0
    first.close(timeout_s=0.5)  # gives up on the broker: the records stay on disk, not lost
    assert first.stats.lost == 0 and len(Spool(path)) == 120

    up = Broker(down=False)
    second = BackgroundPublisher(up, spool=Spool(path))  # type: ignore[arg-type]
    second.flush(timeout_s=10)
    assert second.queued() == 0
    assert [value for _, value, _, _ in up.received] == [f"d{i}".encode() for i in range(120)]
    assert up.received[7] == ("decisions", b"d7", b"k7", {"h": b"\x00\xff"})
    second.close()
    assert len(Spool(path)) == 0


def test_a_full_spool_refuses_and_counts(tmp_path: Path) -> None:
    publisher = BackgroundPublisher(Broker(down=True), spool=Spool(tmp_path / "s.db", max_records=5))  # type: ignore[arg-type]
    accepted = [publisher.publish("t", b"x") for _ in range(8)]
    assert accepted == [True] * 5 + [False] * 3
    assert publisher.stats.dropped == 3
    publisher.close(timeout_s=0.2)
