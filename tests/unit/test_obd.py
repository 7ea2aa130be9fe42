"""Off-policy estimates on the Open Bandit Dataset (ZOZOTOWN, campaign "all", small sample):
the standard protocol estimates one logged policy's click rate from the other policy's log."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tastemaker.cli import main
from tastemaker.records.log_files import LogFormatError
from tastemaker.training.evaluation.action_eval import evaluate_action_log
from tastemaker.training.evaluation.action_log import ActionLog, reward_model
from tastemaker.training.evaluation.log_readers import read_action_log
from tastemaker.training.evaluation.ope import ESTIMATORS, estimator_by_name
from tests.support.datasets import OBD_DIR, needs_obd


@needs_obd
def test_uniform_random_click_rate_estimated_from_the_bts_log() -> None:
    assert OBD_DIR is not None
    bts = read_action_log(OBD_DIR / "bts" / "all" / "all.csv", "obd")
    truth = read_action_log(OBD_DIR / "random" / "all" / "all.csv", "obd").reward.mean()  # on-policy value
    assert (bts.n_rounds, bts.n_actions, bts.len_list) == (10_000, 80, 3)
    report = evaluate_action_log(bts, ["uniform-random"], [estimator_by_name(n) for n in ESTIMATORS], "obd")
    body = report["policies"]["uniform-random"]
    assert body["mean_weight"] == pytest.approx(1.0, abs=0.05)  # the logged BTS propensities are consistent
    for name in ("ipw", "snipw", "dr", "sndr", "switch-dr", "dr-os"):
        estimate = body["estimates"][name]
        assert estimate["lower"] <= truth <= estimate["upper"], (name, estimate, truth)
        assert abs(estimate["value"] - truth) / truth < 0.5, name
    assert any("largest importance weight" in w for w in body["warnings"])
    assert body["unsupported_mass"] > 0  # BTS never showed some (item, position) pairs of the sample


@needs_obd
def test_bts_click_rate_estimated_from_the_random_log() -> None:
    """The reverse direction: Bernoulli-TS's action distribution per position, reconstructed from
    its own log (time-averaged), evaluated on the uniform-random log."""
    assert OBD_DIR is not None
    bts_path = OBD_DIR / "bts" / "all" / "all.csv"
    truth = read_action_log(bts_path, "obd").reward.mean()
    random_log = read_action_log(OBD_DIR / "random" / "all" / "all.csv", "obd")
    policy = f"empirical:{bts_path}"
    report = evaluate_action_log(random_log, [policy], [estimator_by_name(n) for n in ESTIMATORS], "obd")
    body = report["policies"][policy]
    for name in ("ipw", "snipw", "dr", "sndr", "switch-dr", "dr-os"):
        estimate = body["estimates"][name]
        assert estimate["lower"] <= truth <= estimate["upper"], (name, estimate, truth)
    assert body["mean_weight"] == pytest.approx(1.0, abs=0.1)


def test_cross_fitted_click_rates_never_see_their_own_row() -> None:
    # one item, one position: a row's prediction must not include its own click
    log = ActionLog(np.zeros(4, int), np.zeros(4, int), np.array([1.0, 0, 0, 0]), np.ones(4), 1, 1)
    q = reward_model(log, folds=4, prior_strength=0.0, seed=0)
    assert q.shape == (4, 1)
    assert np.all(q[log.reward == 1] <= 1 / 3 + 1e-12)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("a,b\n1,2\n", "missing columns"),
        ("item_id,position,click,propensity_score\n", "no rows"),
        ("item_id,position,click,propensity_score\nx,1,0,0.5\n", r"1 rows with `item_id` not a non-negative integer"),
        (
            "item_id,position,click,propensity_score\n1,1,0,0\n1,1,0,0.5\n2,1,0,1.5\n",
            r"2 rows with `propensity_score` not in \(0, 1\] \(first at data row 1\)",
        ),
        ("item_id,position,click,propensity_score\n1,0,0,0.5\n", "1 rows with `position` not an integer from 1"),
        ("item_id,position,click,propensity_score\n1,1,nan,0.5\n1,1,,0.5\n", "2 rows with `click` not a finite number"),
    ],
)
def test_bad_obd_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "all.csv"
    path.write_text(content)
    with pytest.raises(LogFormatError, match=message):
        read_action_log(path, "obd")


@needs_obd
def test_evaluate_cli_on_obd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert OBD_DIR is not None
    out = tmp_path / "obd.json"
    code = main(["evaluate", "--format", "obd", "--logs", str(OBD_DIR / "bts/all/all.csv"),
                 "--estimators", "ipw,dr", "--json", str(out)])  # fmt: skip
    assert code == 0
    assert "uniform-random" in capsys.readouterr().out
    import json

    report = json.loads(out.read_text())
    assert set(report["policies"]["uniform-random"]["estimates"]) == {"ipw", "dr"}
    assert (
        main(["evaluate", "--format", "obd", "--logs", str(OBD_DIR / "bts/all/all.csv"), "--estimators", "magic"]) == 2
    )
