"""Log lines that cannot flood: a burst is one line, and the next line says how many were held back."""

from __future__ import annotations

import logging
import time

import pytest

from tastemaker.rate_limited_log import RateLimitedLog


def test_a_burst_logs_one_line_and_the_next_counts_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    lines = RateLimitedLog(logging.getLogger("burst"), every_s=0.2)
    with caplog.at_level(logging.WARNING, logger="burst"):
        for i in range(100):
            lines.warning("late outcome %d", i)
        assert [r.getMessage() for r in caplog.records] == ["late outcome 0"]
        time.sleep(0.25)
        lines.warning("late outcome %d", 100)
    assert caplog.records[-1].getMessage() == "late outcome 100 (and 99 more like it in the last 0.2 s)"
    assert lines.total == 101
