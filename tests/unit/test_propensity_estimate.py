"""`evaluate --estimate-propensities`: the logging policy fitted from the logged actions, on the
Open Bandit Dataset sample with its propensities hidden, beside the estimates with the true ones."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tastemaker.cli import main
from tastemaker.training.evaluation.action_eval import evaluate_action_log
from tastemaker.training.evaluation.action_log import ActionLog
from tastemaker.training.evaluation.log_readers import read_action_log
from tastemaker.training.evaluation.ope import ESTIMATORS, estimator_by_name
from tastemaker.training.evaluation.propensity_estimate import estimate_propensities, with_estimated_propensities
from tests.support.datasets import OBD_DIR, needs_obd

ALL = [estimator_by_name(n) for n in ESTIMATORS]


@needs_obd
def test_hidden_propensities_are_estimated_and_the_estimates_agree_with_the_true_ones() -> None:
    assert OBD_DIR is not None
    log = read_action_log(OBD_DIR / "bts" / "all" / "all.csv", "obd")
    hidden = replace(log, propensity=np.full(log.n_rounds, np.nan))  # nothing of them is used
    estimated, fit = with_estimated_propensities(hidden)
    assert np.isfinite(estimated.propensity).all() and (estimated.propensity > 0).all()
    assert fit.windows > 1  # BTS drifts: time windows fit its actions better than one share
    assert np.corrcoef(np.log(estimated.propensity), np.log(log.propensity))[0, 1] > 0.75
    ours = evaluate_action_log(estimated, ["uniform-random"], ALL, "obd")["policies"]["uniform-random"]["estimates"]
    true = evaluate_action_log(log, ["uniform-random"], ALL, "obd")["policies"]["uniform-random"]["estimates"]
    for name in ("ipw", "snipw", "dr-os"):  # each interval overlaps the one from the true propensities
        assert ours[name]["lower"] <= true[name]["upper"] and true[name]["lower"] <= ours[name]["upper"], name
        assert ours[name]["value"] == pytest.approx(true[name]["value"], abs=0.0015), name


def test_each_rows_propensity_comes_from_the_other_folds_only() -> None:
    """An action logged once is estimated from the other rows (the prior), never from itself."""
    n = 400
    rng = np.random.default_rng(7)  # not the folds' seed (0): the same stream would correlate them
    action = rng.integers(0, 3, n)
    action[17] = 3  # the only row of action 3
    log = ActionLog(action, np.zeros(n, dtype=int), np.zeros(n), np.full(n, np.nan), n_actions=4, len_list=1)
    fit = estimate_propensities(log)
    in_sample = 1 / n
    assert fit.propensity[17] < in_sample and fit.windows == 1  # no timestamps: one window
    common = fit.propensity[action == 0]
    assert common.mean() == pytest.approx(np.mean(action == 0), rel=0.1)


@needs_obd
def test_the_cli_says_loudly_that_propensities_are_estimated_and_prints_the_logged_ones_beside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert OBD_DIR is not None
    out = tmp_path / "r.json"
    code = main(["evaluate", "--format", "obd", "--logs", str(OBD_DIR / "bts/all/all.csv"),
                 "--estimate-propensities", "--json", str(out)])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0 and text.count("*** PROPENSITIES ESTIMATED, not logged") == 2
    assert "with the log's own propensities" in text
    report = json.loads(out.read_text())
    assert report["propensities"].startswith("ESTIMATED") and "with_logged_propensities" in report
    assert main(["evaluate", "--logs", str(out), "--estimate-propensities"]) == 2  # rewarded logs: refused
    assert "--estimate-propensities is for action logs" in capsys.readouterr().err
