"""Helpers for tests against the real broker and Redis."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tastemaker.messaging.kafka_python import read_topic_to_end
from tastemaker.messaging.ports import Record

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout_s: float = 30.0, what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; last value {last!r}")


def records_on(bootstrap: str, topic: str, where: Callable[[Record], bool] = lambda r: True) -> list[Record]:
    return [r for r in read_topic_to_end(bootstrap, topic) if where(r)]
