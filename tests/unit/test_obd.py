"""Off-policy estimates on the Open Bandit Dataset (ZOZOTOWN, campaign "all", small sample):
the standard protocol estimates one logged policy's click rate from the other policy's log."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tastemaker.services.cli import main
from tastemaker.training.obd import OBDFormatError, click_rate_model, evaluate_obd, read_obd
from tastemaker.training.ope import ESTIMATORS, estimator_by_name

_CANDIDATES = [
    os.environ.get("TASTEMAKER_OBD_DIR", ""),
    str(Path(__file__).resolve().parents[3] / "shared" / "datasets" / "obd"),
    "/work/shared/datasets/obd",
]
OBD_DIR = next((Path(c) for c in _CANDIDATES if c and (Path(c) / "bts" / "all" / "all.csv").is_file()), None)
needs_obd = pytest.mark.skipif(
    OBD_DIR is None, reason="the Open Bandit Dataset sample (shared/datasets/obd) is not here"
)


@needs_obd
def test_uniform_random_click_rate_estimated_from_the_bts_log() -> None:
    assert OBD_DIR is not None
    bts = read_obd(OBD_DIR / "bts" / "all" / "all.csv")
    truth = read_obd(OBD_DIR / "random" / "all" / "all.csv").click.mean()  # the random policy's on-policy value
    assert (bts.n_rounds, bts.n_items, bts.len_list) == (10_000, 80, 3)
    report = evaluate_obd(bts, ["uniform-random"], [estimator_by_name(n) for n in ESTIMATORS])
    body = report["policies"]["uniform-random"]
    assert body["mean_weight"] == pytest.approx(1.0, abs=0.05)  # the logged BTS propensities are consistent
    for name in ("ipw", "snipw", "dr", "sndr", "switch-dr", "dr-os"):
        estimate = body["estimates"][name]
        assert estimate["lower"] <= truth <= estimate["upper"], (name, estimate, truth)
        assert abs(estimate["value"] - truth) / truth < 0.5, name
    assert any("largest importance weight" in w for w in body["warnings"])


def test_cross_fitted_click_rates_never_see_their_own_row() -> None:
    from tastemaker.training.obd import OBDLog

    # one item, one position: a row's prediction must not include its own click
    log = OBDLog(np.zeros(4, int), np.zeros(4, int), np.array([1.0, 0, 0, 0]), np.ones(4), 1, 1)
    q = click_rate_model(log, folds=4, prior_strength=0.0, seed=0)
    assert q.shape == (4, 1)
    assert np.all(q[log.click == 1] <= 1 / 3 + 1e-12)


@pytest.mark.parametrize(
    ("content", "message"),
    [
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
    with pytest.raises(OBDFormatError, match=message):
        read_obd(path)


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
