"""The Beam engine on action logs gives the in-memory estimates and intervals to 1e-9 relative:
all seven estimators, cross-fitted reward model included, for CSV, Parquet and the OBD layout."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tastemaker.records.log_files import LogFormatError
from tastemaker.training.evaluation.action_eval import evaluate_action_log
from tastemaker.training.evaluation.action_policies import PolicyError
from tastemaker.training.evaluation.beam_action_ope import BEAM_ESTIMATORS, evaluate_action_log_with_beam
from tastemaker.training.evaluation.log_readers import read_action_log
from tastemaker.training.evaluation.ope import estimator_by_name
from tests.support.action_logs import generic_columns, write_csv
from tests.support.datasets import OBD_DIR, needs_obd

POLICIES = ["uniform-random", "greedy", "softmax:0.05"]


def _assert_same(path: Path, fmt: str) -> None:
    memory = evaluate_action_log(
        read_action_log(path, fmt), POLICIES, [estimator_by_name(n) for n in BEAM_ESTIMATORS], fmt
    )
    beam = evaluate_action_log_with_beam(str(path), fmt, POLICIES)
    assert beam["n_decisions"] == memory["n_decisions"]
    for policy in POLICIES:
        for name in BEAM_ESTIMATORS:
            a, b = memory["policies"][policy]["estimates"][name], beam["policies"][policy]["estimates"][name]
            for key in ("value", "lower", "upper", "effective_sample_size", "mean_weight", "unsupported_mass"):
                assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-15), (policy, name, key)
            assert b["warnings"] == a["warnings"] and b.get("warning") == a.get("warning"), (policy, name)
        assert beam["policies"][policy]["effective_sample_size"] == pytest.approx(
            memory["policies"][policy]["effective_sample_size"], rel=1e-9
        )
    assert beam["on_policy_mean_reward"] == pytest.approx(memory["on_policy_mean_reward"], rel=1e-12)


def test_generic_csv_and_parquet(tmp_path: Path) -> None:
    columns = generic_columns(3000)
    _assert_same(write_csv(columns, tmp_path / "log.csv"), "csv")
    pq.write_table(pa.table(columns), tmp_path / "log.parquet")
    _assert_same(tmp_path / "log.parquet", "parquet")


@needs_obd
def test_open_bandit_dataset_csv() -> None:
    assert OBD_DIR is not None
    _assert_same(OBD_DIR / "bts" / "all" / "all.csv", "obd")


def test_bad_rows_fail_the_run_with_counts(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("action,reward,propensity\nred,1,0.5\nred,nan,0.5\nblue,1,2\nblue,0,0.5\n")
    with pytest.raises(LogFormatError, match=r"1 rows with a bad `propensity`; 1 rows with a bad `reward`"):
        evaluate_action_log_with_beam(str(path), "csv", ["uniform-random"])


def test_policies_beyond_the_built_in_three_are_refused(tmp_path: Path) -> None:
    path = write_csv(generic_columns(10), tmp_path / "log.csv")
    with pytest.raises(PolicyError, match="Beam engine evaluates"):
        evaluate_action_log_with_beam(str(path), "csv", ["empirical:x.csv"])


def test_the_command_prints_the_memory_engines_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tastemaker.cli import main

    path = write_csv(generic_columns(500), tmp_path / "log.csv")
    assert main(["evaluate", "--engine", "beam", "--format", "csv", "--logs", str(path), "--policy", "greedy"]) == 0
    beam = capsys.readouterr().out
    assert main(["evaluate", "--format", "csv", "--logs", str(path), "--policy", "greedy"]) == 0
    memory = capsys.readouterr().out
    table = [line for line in beam.splitlines() if line.startswith(("decisions:", "policy", "greedy"))]
    assert len(table) == 2 + len(BEAM_ESTIMATORS) and all(line in memory.splitlines() for line in table), beam
