"""The one evaluation entry point: it picks the log family and the engine, gives the same numbers as
the path it picks, and refuses what cannot run with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.records.log_files import write_export
from tastemaker.training.evaluation.action_eval import evaluate_action_log
from tastemaker.training.evaluation.evaluate import evaluate
from tastemaker.training.evaluation.job import EvaluationError, EvaluationJob, run
from tastemaker.training.evaluation.log_readers import read_action_log
from tastemaker.training.evaluation.ope import IPW, SNIPW
from tests.support.action_logs import RATES, generic_columns, write_csv
from tests.support.simulated import home_service, rewarded_logs


@pytest.fixture(scope="module")
def rewarded():  # type: ignore[no-untyped-def]
    world = SimulatedWorld(seed=2)
    return rewarded_logs(home_service(world), world, 200)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_rewarded_export_is_evaluated_as_evaluate_does(rewarded, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"logs{suffix}"
    write_export(rewarded, path)
    # a .parquet export of rewarded decisions is recognised even when called an action-log parquet
    job = EvaluationJob(format="parquet" if suffix == ".parquet" else "rewarded", logs=path)
    assert job.family() == "rewarded"
    result = run(job)
    direct = evaluate(rewarded, estimators=[IPW(), SNIPW()])
    for policy, body in direct["policies"].items():
        for name, estimate in body["estimates"].items():
            assert result.report["policies"][policy]["estimates"][name]["value"] == pytest.approx(estimate["value"])
    assert "on-policy mean reward" in result.text


def test_without_a_file_the_loader_supplies_the_decisions(rewarded) -> None:
    calls = []
    result = run(EvaluationJob(policies=["greedy"]), load_rewarded=lambda: calls.append(1) or rewarded)
    assert calls == [1]
    assert list(result.report["policies"]) == ["greedy"]
    with pytest.raises(EvaluationError, match="give --logs FILE"):
        run(EvaluationJob())


def test_an_action_log_is_evaluated_as_action_eval_does(tmp_path: Path) -> None:
    path = write_csv(generic_columns(4_000), tmp_path / "log.csv")
    job = EvaluationJob(format="csv", logs=path, estimators=["ipw", "dr"])
    assert job.family() == "action"
    result = run(job)
    direct = evaluate_action_log(read_action_log(path, "csv"), ["uniform-random"], [IPW()], "csv")
    got = result.report["policies"]["uniform-random"]["estimates"]
    assert got["ipw"]["value"] == pytest.approx(direct["policies"]["uniform-random"]["estimates"]["ipw"]["value"])
    assert set(got) == {"ipw", "dr"}
    assert got["ipw"]["lower"] <= RATES.mean() <= got["ipw"]["upper"]


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (EvaluationJob(bootstrap=-1), "--bootstrap must be 0"),
        (EvaluationJob(engine="beam", bootstrap=10), "analytic intervals"),
        (EvaluationJob(engine="spark"), "--engine"),
        (EvaluationJob(format="xml"), "--format"),
        (EvaluationJob(estimators=["ipw", "magic"]), "unknown estimator 'magic'"),
        (EvaluationJob(policies=["nonsense"]), "--policy: unknown policy"),
        (EvaluationJob(format="csv"), "needs --logs FILE"),
        (EvaluationJob(engine="beam"), "--engine beam reads files"),
        (EvaluationJob(logs=Path("/nonexistent/logs.jsonl")), "no such file"),
    ],
)
def test_what_cannot_run_is_refused_with_one_line(job: EvaluationJob, message: str) -> None:
    with pytest.raises(EvaluationError, match=message) as caught:
        run(job, load_rewarded=lambda: [])
    assert "\n" not in str(caught.value)


def test_an_empty_log_is_refused() -> None:
    with pytest.raises(EvaluationError, match="no rewarded decisions"):
        run(EvaluationJob(), load_rewarded=lambda: [])
