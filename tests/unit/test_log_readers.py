"""Logs people bring: the generic CSV/Parquet layout, the Parquet export of rewarded decisions,
and policies given as Python entry points — each checked against a known answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tastemaker.cli import main
from tastemaker.records.log_files import LogFormatError, read_export, write_export
from tastemaker.training.evaluation.action_eval import evaluate_action_log
from tastemaker.training.evaluation.action_policies import PolicyError
from tastemaker.training.evaluation.log_readers import read_action_log
from tastemaker.training.evaluation.ope import IPW, SNIPW, estimator_by_name
from tastemaker.v1 import records_pb2
from tests.support.action_logs import NAMES, RATES, generic_columns, write_csv  # noqa: E402


def pick_blue(log) -> np.ndarray:
    """An entry-point policy: always the action whose id is "blue" (true value 0.30)."""
    out = np.zeros((log.n_rounds, log.n_actions))
    out[:, log.action_ids.index("blue")] = 1.0
    return out


def test_generic_csv_and_parquet_give_the_same_estimates_that_cover_the_truth(tmp_path: Path) -> None:
    columns = generic_columns()
    csv_log = read_action_log(write_csv(columns, tmp_path / "log.csv"), "csv")
    pq.write_table(pa.table(columns), tmp_path / "log.parquet")
    parquet_log = read_action_log(tmp_path / "log.parquet", "parquet")
    assert csv_log.action_ids == tuple(sorted(NAMES)) and csv_log.len_list == 2
    assert set(csv_log.context) == {"country"}
    estimators = [estimator_by_name(n) for n in ("ipw", "snipw", "dm", "dr", "sndr")]
    policies = ["uniform-random", "tests.unit.test_log_readers:pick_blue"]
    a = evaluate_action_log(csv_log, policies, estimators, "csv")
    b = evaluate_action_log(parquet_log, policies, estimators, "parquet")
    for policy, truth in (("uniform-random", RATES.mean()), ("tests.unit.test_log_readers:pick_blue", 0.30)):
        for name, estimate in a["policies"][policy]["estimates"].items():
            assert estimate == b["policies"][policy]["estimates"][name]
            if name == "dm":  # its interval ignores the model's own error: check the value only
                assert abs(estimate["value"] - truth) < 0.01
            else:
                assert estimate["lower"] <= truth <= estimate["upper"], (policy, name, estimate)
    assert len(a["policies"]["uniform-random"]["over_time_ipw"]) == 10
    assert len(a["policies"]["uniform-random"]["per_position_ipw"]) == 2


@pytest.mark.parametrize("unique_rows", [True, False])
def test_greedy_over_the_reward_model_finds_the_best_action(tmp_path: Path, unique_rows: bool) -> None:
    columns = generic_columns()
    if not unique_rows:  # only 20 distinct rows: cross-fitting folds must still split each of them
        del columns["timestamp_ms"], columns["country"]
    log = read_action_log(write_csv(columns, tmp_path / "log.csv"), "csv")
    report = evaluate_action_log(log, ["greedy"], [IPW(), SNIPW()], "csv")
    estimate = report["policies"]["greedy"]["estimates"]["snipw"]
    assert estimate["lower"] <= 0.30 <= estimate["upper"]


def test_bootstrap_intervals_are_close_to_the_analytic_ones(tmp_path: Path) -> None:
    log = read_action_log(write_csv(generic_columns(5000), tmp_path / "log.csv"), "csv")
    analytic = evaluate_action_log(log, ["uniform-random"], [IPW()], "csv")["policies"]["uniform-random"]
    boot = evaluate_action_log(log, ["uniform-random"], [IPW()], "csv", bootstrap=300)["policies"]["uniform-random"]
    a, b = analytic["estimates"]["ipw"], boot["estimates"]["ipw"]
    assert b["interval"] == "bootstrap-300" and a["interval"] == "normal"
    assert b["value"] == a["value"]
    width = a["upper"] - a["lower"]
    assert abs(b["lower"] - a["lower"]) < 0.2 * width and abs(b["upper"] - a["upper"]) < 0.2 * width


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("action,reward\nred,1\n", r"missing columns \['propensity'\]"),
        ("action,reward,propensity\n", "no rows"),
        ("action,reward,propensity\nred,nan,0.5\nred,,0.5\nred,1,0.5\n", "2 rows with `reward` not a finite number"),
        ("action,reward,propensity\nred,1,0\nred,1,1.2\nred,1,0.5\n", r"2 rows with `propensity` not in \(0, 1\]"),
        ("action,reward,propensity,position\nred,1,0.5,-1\n", "1 rows with `position` not an integer from 0"),
        ("action,reward,propensity\n,1,0.5\n", "1 rows with `action` not a non-empty id"),
    ],
)
def test_bad_generic_logs_are_refused_with_the_column_and_count(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(LogFormatError, match=message):
        read_action_log(path, "csv")


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_text("hello")
    with pytest.raises(LogFormatError, match="not a Parquet file"):
        read_action_log(path, "parquet")


def bad_shape(log) -> np.ndarray:
    return np.ones((log.n_rounds, 2))


def not_a_distribution(log) -> np.ndarray:
    return np.full((log.n_rounds, log.n_actions), 0.5)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("tests.unit.test_log_readers:bad_shape", "returned shape"),
        ("tests.unit.test_log_readers:not_a_distribution", "rows are not probability distributions"),
        ("tests.unit.test_log_readers:missing", "has no attribute"),
        ("no_such_module_xyz:f", "cannot import"),
        ("telepathy", "unknown policy"),
    ],
)
def test_bad_policies_are_refused(tmp_path: Path, policy: str, message: str) -> None:
    log = read_action_log(write_csv(generic_columns(100), tmp_path / "log.csv"), "csv")
    with pytest.raises(PolicyError, match=message):
        evaluate_action_log(log, [policy], [IPW()], "csv")


def test_a_policy_from_a_python_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_path = write_csv(generic_columns(2000), tmp_path / "log.csv")
    policy_file = tmp_path / "my_policy.py"
    policy_file.write_text(
        "import numpy as np\n"
        "def first(log):\n"
        "    out = np.zeros((log.n_rounds, log.n_actions)); out[:, 0] = 1.0; return out\n"
    )
    out = tmp_path / "r.json"
    code = main(["evaluate", "--format", "csv", "--logs", str(log_path), "--policy", f"{policy_file}:first",
                 "--estimators", "ipw", "--json", str(out)])  # fmt: skip
    assert code == 0
    assert f"{policy_file}:first" in json.loads(out.read_text())["policies"]
    assert main(["evaluate", "--format", "csv", "--logs", str(log_path), "--policy", "nope"]) == 2
    assert "unknown policy" in capsys.readouterr().err


def _rewarded(n: int) -> list[records_pb2.RewardedDecision]:
    out = []
    for i in range(n):
        decision = records_pb2.DecisionLog(decision_id=f"d{i}", user_id="u", surface="home", served_at_ms=i)
        decision.exploration.epsilon = 0.5
        shelf = decision.shown.add(shelf_id="s1", position=0, score=1.0, propensity=0.75)
        shelf.cards.add(card_id="c1", position=0, score=1.0, propensity=0.75)
        shelf.card_candidates.item_ids.extend(["c1", "c2"])
        shelf.card_candidates.scores.extend([1.0, 0.0])
        decision.shelf_candidates.item_ids.extend(["s1", "s2"])
        decision.shelf_candidates.scores.extend([1.0, 0.0])
        outcomes = [records_pb2.Outcome(decision_id=f"d{i}", item_id="c1", reward=1.0)] if i % 3 == 0 else []
        out.append(records_pb2.RewardedDecision(decision=decision, outcomes=outcomes, reward=float(len(outcomes))))
    return out


def test_the_parquet_export_of_rewarded_decisions_round_trips_and_evaluates(tmp_path: Path) -> None:
    decisions = _rewarded(30)
    path = tmp_path / "rewarded.parquet"
    assert write_export(decisions, path) == 30
    assert read_export(path) == decisions
    table = pq.read_table(path)
    assert table.column("decision_id").to_pylist()[:2] == ["d0", "d1"] and table.column("reward").to_pylist()[0] == 1.0
    out = tmp_path / "r.json"
    assert main(["evaluate", "--format", "parquet", "--logs", str(path), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["n_decisions"] == 30
    assert report["policies"]["logging"]["estimates"]["ipw"]["value"] == pytest.approx(10 / 30)
