"""A circuit breaker for the feature store on the request path.

Closed: reads go to Redis, each within its own short budget. After `failures` failures in a row
the breaker opens: requests skip the read at once (ranking serves non-personalised) while one
background thread probes Redis every `probe_s`; the first probe that answers closes it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class CircuitBreaker:
    def __init__(
        self, probe: Callable[[], object], failures: int = 3, probe_s: float = 1.0, name: str = "redis"
    ) -> None:
        if failures < 1 or probe_s <= 0:
            raise ValueError(f"`failures` must be >= 1 and `probe_s` positive, got {failures}, {probe_s}")
        self._probe = probe
        self._threshold = failures
        self._probe_s = probe_s
        self._name = name
        self._lock = threading.Lock()
        self._in_a_row = 0
        self._open = threading.Event()
        #: times the breaker opened, and reads skipped while it was open
        self.opened = 0
        self.short_circuited = 0

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def allow(self) -> bool:
        """Whether to try the read now (False while open)."""
        if self._open.is_set():
            self.short_circuited += 1
            return False
        return True

    def success(self) -> None:
        self._in_a_row = 0

    def failure(self) -> None:
        with self._lock:
            self._in_a_row += 1
            if self._in_a_row < self._threshold or self._open.is_set():
                return
            self._open.set()
            self.opened += 1
        log.error(
            "%s: %d failures in a row; serving without it and probing every %.1f s",
            self._name, self._threshold, self._probe_s,
        )  # fmt: skip
        threading.Thread(target=self._probe_until_back, name=f"{self._name}-probe", daemon=True).start()

    def _probe_until_back(self) -> None:
        while True:
            time.sleep(self._probe_s)
            try:
                self._probe()
            except Exception as exc:
                log.debug("%s probe failed: %s", self._name, exc)
                continue
            with self._lock:
                self._in_a_row = 0
                self._open.clear()
            log.warning("%s answers again: back to personalised reads", self._name)
            return
