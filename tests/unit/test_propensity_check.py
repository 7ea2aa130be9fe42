"""`tastemaker check propensities`: correct logs of every strategy pass; a slot logged 30% off, or a
strategy that shows something other than what it logs, is caught."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import (
    Candidates,
    EpsilonGreedy,
    LinearState,
    LinUCB,
    Softmax,
    SquareCB,
    Strategy,
    Thompson,
    with_floor,
)
from tastemaker.cli import main
from tastemaker.records.log_files import write_export
from tastemaker.training.lifecycle.propensity_check import check_propensities
from tastemaker.training.lifecycle.validation import validate
from tastemaker.v1 import records_pb2
from tests.support.simulated import home_service, rewarded_logs

WORLD = SimulatedWorld(seed=3)

STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "epsilon-greedy": lambda: EpsilonGreedy(0.2),
    "softmax": lambda: Softmax(0.5),
    "squarecb+floor": lambda: with_floor(SquareCB(gamma=5.0), 0.01),
    "linucb+floor": lambda: with_floor(LinUCB(LinearState(2), alpha=0.5), 0.01),
    "thompson": lambda: Thompson(LinearState(2), n_samples=500),
}


def _logs(strategy: Strategy, n: int = 300) -> list[records_pb2.RewardedDecision]:
    """Two users in turn: two contexts repeated 150 times each (no learner moves the posterior)."""
    return rewarded_logs(home_service(WORLD, strategy=strategy, seed=1), WORLD, n, users=2)


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_correct_logs_of_every_strategy_pass(name: str) -> None:
    report = check_propensities(_logs(STRATEGIES[name]()))
    assert report.passed, report.lines()
    assert report.contexts_tested == 2 and report.cells_tested > 0
    replayable = name in ("epsilon-greedy", "softmax", "squarecb+floor")
    assert (report.replayed == 300) == replayable and (bool(report.not_replayable) != replayable)


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_a_slot_logged_30_percent_off_is_caught(name: str) -> None:
    replayable = name in ("epsilon-greedy", "softmax", "squarecb+floor")
    # without a replay only frequencies can tell: a flat Thompson posterior spreads the top row over
    # 8 shelves (p ≈ 0.13), and telling 0.13 from 0.09 under a 1-in-1,000 false-alarm rate over
    # thousands of cells takes about a thousand pages of one context
    logs = _logs(STRATEGIES[name](), n=300 if replayable else 2400)
    for rewarded in logs:  # the serving bug: the top row's propensity is logged 30% low
        rewarded.decision.shown[0].propensity *= 0.7
    report = check_propensities(logs)
    assert not report.passed
    assert all(m.row == 0 for m in report.mismatches)
    checks = {m.check for m in report.mismatches}
    assert ("replay" in checks) == replayable, checks


@dataclass(frozen=True)
class _ShowsOtherThanItLogs:
    """Logs ε-greedy 0.2's propensities but draws with ε = 0.9: every logged number is consistent
    with ε = 0.2, so only the frequencies give it away."""

    name: str = "epsilon-greedy"

    def marginals(self, candidates: Candidates, k: int) -> np.ndarray:
        return EpsilonGreedy(0.2).marginals(candidates, k)

    def ranking_probability(self, candidates: Candidates, order: np.ndarray) -> float:
        return EpsilonGreedy(0.2).ranking_probability(candidates, order)

    def sample_order(self, candidates: Candidates, k: int, rng: np.random.Generator) -> np.ndarray:
        return EpsilonGreedy(0.9).sample_order(candidates, k, rng)

    def info(self, n: int, k: int):  # type: ignore[no-untyped-def]
        return EpsilonGreedy(0.2).info(n, k)

    def parameters(self) -> dict[str, float]:
        return {"epsilon": 0.2}


def test_a_strategy_that_shows_something_other_than_what_it_logs_is_caught() -> None:
    report = check_propensities(_logs(_ShowsOtherThanItLogs()))  # type: ignore[arg-type]
    assert report.cells_replayed > 0 and not any(m.check == "replay" for m in report.mismatches)
    assert any(m.check == "frequency" for m in report.mismatches), report.lines()


def test_the_command_exits_3_with_a_readable_report_and_retrain_validation_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    logs = _logs(EpsilonGreedy(0.2))
    write_export(logs, good)
    for rewarded in logs:
        rewarded.decision.shown[0].propensity *= 0.7
    write_export(logs, bad)
    assert main(["check", "propensities", "--logs", str(good)]) == 0
    assert "propensity check: PASSED on 300 home decisions" in capsys.readouterr().out
    out = tmp_path / "r.json"
    assert main(["check", "propensities", "--logs", str(bad), "--show", "2", "--json", str(out)]) == 3
    text = capsys.readouterr().out
    assert "FAILED" in text and "replay: decision" in text and "the logging policy re-run gives" in text
    assert json.loads(out.read_text())["passed"] is False
    findings = validate(logs)
    assert any(f.check == "propensities" and f.severity == "critical" and "FAILED" in f.message for f in findings)
    assert main(["check", "propensities", "--logs", str(good), "--alpha", "2"]) == 2
    assert main(["check", "propensities", "--logs", str(good), "--sample", "-5"]) == 2
    assert main(["check", "propensities", "--logs", str(tmp_path / "missing.jsonl")]) == 2
