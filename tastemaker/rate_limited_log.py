"""Log lines that cannot flood: for what a client or an outage can repeat thousands of times a second."""

from __future__ import annotations

import logging
import threading
import time


class RateLimitedLog:
    """At most one line per `every_s` seconds; the lines held back are counted in the next one."""

    def __init__(self, logger: logging.Logger, every_s: float = 10.0) -> None:
        self._logger = logger
        self._every_s = every_s
        self._last = -float("inf")
        self._held = 0
        self._lock = threading.Lock()
        self.total = 0

    def warning(self, message: str, *args: object) -> None:
        with self._lock:
            self.total += 1
            now = time.monotonic()
            if now - self._last < self._every_s:
                self._held += 1
                return
            held, self._held, self._last = self._held, 0, now
        suffix = f" (and {held} more like it in the last {self._every_s:g} s)" if held else ""
        self._logger.warning(message + suffix, *args)
