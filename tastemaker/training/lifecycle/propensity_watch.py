"""The propensity self-check on live logs, alongside serving (`tastemaker check propensities
--follow`, and a worker of `tastemaker up`): it follows tastemaker.decisions and, every
`interval_s`, replays the home decisions that arrived since the last check (at most `replay_sample`
of them, the latest) and runs the frequency check over the latest `window` decisions
(`propensity_check`). Its Prometheus metrics (`collector`) say whether the last check passed
(`tastemaker_propensity_check_passed`, 1 or 0: alert on 0) and count decisions and cells checked
and mismatches found; a failed check also logs its first mismatches.

Checks repeat, so each frequency check runs at `alpha` = 1e-6 (not `check propensities`' 1e-3):
checked every 30 s, correct logs raise a false alarm about once a year. Replay is exact for
closed forms; Monte-Carlo propensities replay within 5 logged standard errors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tastemaker.messaging.codec import UndecodableRecord, decode
from tastemaker.messaging.ports import Consumer
from tastemaker.rate_limited_log import RateLimitedLog
from tastemaker.records.layout import LayoutError, unpack
from tastemaker.records.log_files import compact_rows
from tastemaker.training.lifecycle.propensity_check import MIN_REPEATS, PropensityCheck, frequencies, replay
from tastemaker.v1 import records_pb2

log = logging.getLogger(__name__)

#: a frequency check's false-alarm probability on correct logs, per check (module docstring)
LIVE_ALPHA = 1e-6


@dataclass
class WatchStats:
    decisions_seen: int = 0
    checks: int = 0
    checks_failed: int = 0
    decisions_replayed: int = 0
    cells_replayed: int = 0
    cells_tested: int = 0
    mismatches: int = 0
    #: records that did not decode (the joiner dead-letters them; here they are only counted)
    undecodable: int = 0
    #: steps that failed (logged) and were retried
    failures: int = 0


class PropensityWatch(Collector):
    def __init__(
        self,
        consumer: Consumer,
        window: int = 5000,
        interval_s: float = 30.0,
        replay_sample: int = 500,
        alpha: float = LIVE_ALPHA,
        min_repeats: int = MIN_REPEATS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window < 1 or replay_sample < 0 or interval_s <= 0 or not 0 < alpha < 1:
            raise ValueError(
                f"need window >= 1, replay_sample >= 0, interval_s > 0 and 0 < alpha < 1; got {window}, "
                f"{replay_sample}, {interval_s}, {alpha}"
            )
        self._consumer = consumer
        self._window: deque[records_pb2.RewardedDecision] = deque(maxlen=window)
        self._new: deque[records_pb2.RewardedDecision] = deque(maxlen=max(replay_sample, 1))
        self._replay_sample = replay_sample
        self._interval_s = interval_s
        self._alpha = alpha
        self._min_repeats = min_repeats
        self._clock = clock
        self._skip_log = RateLimitedLog(log)
        self._next_check = clock() + interval_s
        self.stats = WatchStats()
        self.last: PropensityCheck | None = None
        self._last_at = 0.0
        self._lock = threading.Lock()

    def consume_once(self, timeout_s: float = 0.2) -> int:
        """Take what the decisions topic has; home decisions join the window and the replay queue."""
        records = self._consumer.poll(timeout_s)
        for record in records:
            decision = records_pb2.DecisionLog()
            try:
                unpack(decode(record.value, record.headers, decision))
            except (UndecodableRecord, LayoutError) as exc:
                self.stats.undecodable += 1  # the joiner dead-letters it; this reader only counts it
                self._skip_log.warning(
                    "propensity check skips undecodable decision %s:%d@%d: %s",
                    record.topic, record.partition, record.offset, exc,
                )  # fmt: skip
                continue
            if decision.surface != "home" or not decision.shown:
                continue
            rewarded = compact_rows(records_pb2.RewardedDecision(decision=decision))
            self.stats.decisions_seen += 1
            self._window.append(rewarded)
            if self._replay_sample:
                self._new.append(rewarded)
        if records:
            self._consumer.commit()
        return len(records)

    def check_now(self) -> PropensityCheck:
        """Replay the decisions that arrived since the last check, test the window's frequencies."""
        fresh = list(self._new)
        self._new.clear()
        report = PropensityCheck(decisions=len(self._window))
        replay(fresh, report)
        frequencies(list(self._window), report, self._alpha, self._min_repeats)
        with self._lock:
            self.last, self._last_at = report, time.time()
            self.stats.checks += 1
            self.stats.decisions_replayed += report.replayed
            self.stats.cells_replayed += report.cells_replayed
            self.stats.cells_tested += report.cells_tested
            self.stats.mismatches += len(report.mismatches)
            if not report.passed:
                self.stats.checks_failed += 1
        if not report.passed:
            log.error("propensity self-check failed:\n%s", "\n".join(report.lines(limit=5)))
        return report

    def run(self, stop: threading.Event) -> None:
        log.info("propensity self-check started (a check every %.0f s)", self._interval_s)
        while not stop.is_set():
            try:
                self.consume_once()
                if self._clock() >= self._next_check:
                    self._next_check = self._clock() + self._interval_s
                    self.check_now()
            except Exception:  # the broker away, or a decision the check cannot read: never die of it
                self.stats.failures += 1
                log.exception("propensity check step failed; retry in 1 s")
                stop.wait(1.0)
        log.info("propensity self-check stopped: %s", self.stats)

    def close(self) -> None:
        self._consumer.close()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            stats, last, last_at = self.stats, self.last, self._last_at
            for name, text in HELP.items():
                yield CounterMetricFamily(f"tastemaker_propensity_check_{name}", text, value=getattr(stats, name))
            # before the first check, or a check of no decisions: no verdict (NaN), not a pass
            passed = float("nan") if last is None or not last.decisions else float(last.passed)
            yield GaugeMetricFamily(
                "tastemaker_propensity_check_passed", "1 if the last check passed, 0 if it failed", value=passed
            )
            yield GaugeMetricFamily(
                "tastemaker_propensity_check_last_mismatches",
                "Mismatches the last check found",
                value=float("nan") if last is None else len(last.mismatches),
            )
            yield GaugeMetricFamily(
                "tastemaker_propensity_check_contexts_tested",
                "Repeated contexts the last frequency check tested",
                value=float("nan") if last is None else last.contexts_tested,
            )
            yield GaugeMetricFamily(
                "tastemaker_propensity_check_window_decisions",
                "Decisions in the frequency window",
                value=len(self._window),
            )
            yield GaugeMetricFamily(
                "tastemaker_propensity_check_last_run_timestamp_seconds",
                "When the last check ran (Unix time; 0: not yet)",
                value=last_at,
            )


HELP = {
    "decisions_seen": "Home decisions consumed from tastemaker.decisions",
    "checks": "Checks run",
    "checks_failed": "Checks that found a mismatch",
    "decisions_replayed": "Decisions whose logging policy was re-run",
    "cells_replayed": "Logged (item, position) propensities compared with the re-run",
    "cells_tested": "(item, position) cells of repeated contexts frequency-tested",
    "mismatches": "Logged propensities found wrong",
    "undecodable": "Decision records that did not decode",
    "failures": "Check steps that failed (logged) and were retried",
}
