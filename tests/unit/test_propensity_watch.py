"""The live propensity self-check (`check propensities --follow`, a worker of `up`): it follows
the decisions topic, checks every interval, and its gauges say pass or fail. The consumer here is a
list of records (the broker path is tested in tests/integration/test_live_propensity_check.py)."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import EpsilonGreedy
from tastemaker.messaging.codec import PROTOBUF_HEADERS
from tastemaker.messaging.ports import Record
from tastemaker.records.layout import pack
from tastemaker.training.lifecycle.propensity_watch import PropensityWatch
from tastemaker.v1 import records_pb2
from tests.support.simulated import home_service, rewarded_logs
from tests.unit.test_propensity_check import _ShowsOtherThanItLogs

WORLD = SimulatedWorld(seed=3)


class _Records:
    """A consumer over fixed batches of records."""

    def __init__(self, batches: list[list[Record]]) -> None:
        self.batches = batches
        self.commits = 0

    def poll(self, timeout_s: float, max_records: int = 500) -> list[Record]:
        return self.batches.pop(0) if self.batches else []

    def commit(self, offsets: dict[tuple[str, int], int] | None = None) -> None:
        self.commits += 1

    def close(self) -> None:
        pass


def _records(decisions: list[records_pb2.DecisionLog], start: int = 0) -> list[Record]:
    return [
        Record("tastemaker.decisions", 0, start + i, None, pack(d).SerializeToString(), dict(PROTOBUF_HEADERS))
        for i, d in enumerate(decisions)
    ]


def _decisions(strategy: object, n: int) -> list[records_pb2.DecisionLog]:
    service = home_service(WORLD, strategy=strategy, seed=1)  # type: ignore[arg-type]
    return [r.decision for r in rewarded_logs(service, WORLD, n, users=2)]


def _gauges(watch: PropensityWatch) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(watch)
    out = {}
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith("tastemaker_propensity_check_"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _watch(batches: list[list[Record]], **kwargs: object) -> tuple[PropensityWatch, list[float]]:
    now = [0.0]
    watch = PropensityWatch(_Records(batches), interval_s=10.0, clock=lambda: now[0], **kwargs)  # type: ignore[arg-type]
    return watch, now


def test_correct_logs_pass_and_the_gauges_say_so() -> None:
    decisions = _decisions(EpsilonGreedy(0.2), 300)
    watch, _ = _watch([_records(decisions[:150]), _records(decisions[150:], 150)])
    assert math.isnan(_gauges(watch)["tastemaker_propensity_check_passed"])  # no verdict before a check
    watch.check_now()
    assert math.isnan(_gauges(watch)["tastemaker_propensity_check_passed"])  # nor after one of nothing
    while watch.consume_once():
        pass
    report = watch.check_now()
    assert report.passed, report.lines()
    assert report.replayed == 300 and report.contexts_tested == 2 and report.cells_tested > 0
    gauges = _gauges(watch)
    assert gauges["tastemaker_propensity_check_passed"] == 1.0
    assert gauges["tastemaker_propensity_check_decisions_seen_total"] == 300
    assert gauges["tastemaker_propensity_check_checks_total"] == 2
    assert gauges["tastemaker_propensity_check_mismatches_total"] == 0
    assert gauges["tastemaker_propensity_check_window_decisions"] == 300
    assert gauges["tastemaker_propensity_check_last_run_timestamp_seconds"] > 0
    # the next check replays only what arrived since; the frequencies still see the window
    again = watch.check_now()
    assert again.replayed == 0 and again.contexts_tested == 2


def test_a_slot_logged_30_percent_off_fails_the_check_and_the_gauge() -> None:
    decisions = _decisions(EpsilonGreedy(0.2), 200)
    for decision in decisions[100:]:  # a release that logs the top row's propensity 30% low
        decision.shown[0].propensity *= 0.7
    watch, _ = _watch([_records(decisions[:100]), _records(decisions[100:], 100)])
    watch.consume_once()
    assert watch.check_now().passed
    watch.consume_once()
    report = watch.check_now()
    assert not report.passed and {m.check for m in report.mismatches} >= {"replay"}
    gauges = _gauges(watch)
    assert gauges["tastemaker_propensity_check_passed"] == 0.0
    assert gauges["tastemaker_propensity_check_checks_failed_total"] == 1
    assert gauges["tastemaker_propensity_check_last_mismatches"] == len(report.mismatches) > 0


def test_frequencies_catch_a_strategy_that_shows_something_other_than_what_it_logs() -> None:
    """Every logged number is consistent with ε = 0.2 (replay passes) but pages are drawn with
    ε = 0.9: the frequency check over the window catches it, at the live check's 1e-6 false-alarm rate."""
    watch, _ = _watch([_records(_decisions(_ShowsOtherThanItLogs(), 300))])
    watch.consume_once()
    report = watch.check_now()
    assert report.replayed == 300 and not any(m.check == "replay" for m in report.mismatches)
    assert not report.passed and {m.check for m in report.mismatches} == {"frequency"}


def test_run_checks_on_its_interval_and_skips_what_is_not_a_home_decision() -> None:
    decisions = _decisions(EpsilonGreedy(0.2), 40)
    sticker = records_pb2.DecisionLog(decision_id="s", surface="stickers")
    garbage = Record("tastemaker.decisions", 0, 99, None, b"\xff\x00 not a decision", dict(PROTOBUF_HEADERS))
    watch, now = _watch([_records(decisions[:20]), [garbage, *_records([sticker], 98)], _records(decisions[20:], 20)])

    class _Stop:
        def __init__(self) -> None:
            self.polls = 0

        def is_set(self) -> bool:
            now[0] += 6.0  # each loop turn: six seconds later
            self.polls += 1
            return self.polls > 4

    watch.run(_Stop())  # type: ignore[arg-type]
    assert watch.stats.decisions_seen == 40 and watch.stats.undecodable == 1
    # polls at 6, 12, 18, 24 s: checks at 12 s (due at 10 s) and 24 s (due at 22 s)
    assert watch.stats.checks == 2 and watch.stats.decisions_replayed == 40


@pytest.mark.parametrize("kwargs", [{"window": 0}, {"interval_s": 0.0}, {"alpha": 1.0}, {"replay_sample": -1}])
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PropensityWatch(_Records([]), **kwargs)  # type: ignore[arg-type]


def test_a_failing_step_is_counted_logged_and_retried_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    """The broker away (poll raises): the loop counts the failure, logs it, and carries on."""
    decisions = _decisions(EpsilonGreedy(0.2), 10)
    consumer = _Records([_records(decisions)])
    polls = [0]
    real_poll = consumer.poll

    def flaky(timeout_s: float, max_records: int = 500) -> list[Record]:
        polls[0] += 1
        if polls[0] == 1:
            raise ConnectionError("broker away")
        return real_poll(timeout_s, max_records)

    consumer.poll = flaky  # type: ignore[method-assign]
    watch = PropensityWatch(consumer, interval_s=10.0, clock=lambda: 0.0)  # type: ignore[arg-type]

    class _Stop:
        turns = 0

        def is_set(self) -> bool:
            self.turns += 1
            return self.turns > 3

        def wait(self, seconds: float) -> bool:
            return False

    with caplog.at_level("ERROR"):
        watch.run(_Stop())  # type: ignore[arg-type]
    assert watch.stats.failures == 1 and "propensity check step failed" in caplog.text
    assert watch.stats.decisions_seen == 10  # the next poll went on where it was
    assert _gauges(watch)["tastemaker_propensity_check_failures_total"] == 1
