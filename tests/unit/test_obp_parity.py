"""The same inputs through Open Bandit Pipeline 0.5.7 (its own venv, `make obp-venv`) give the
same IPW, SNIPW, DM, DR, SNDR, Switch-DR and DR-OS estimates to 1e-6 relative."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tastemaker.training.evaluation.action_log import reward_model
from tastemaker.training.evaluation.log_readers import read_action_log
from tastemaker.training.evaluation.ope import ESTIMATORS, estimator_by_name
from tests.support.datasets import OBD_DIR, needs_obd
from tests.support.obp import BanditArrays, obp_available, ours, run_obp

pytestmark = pytest.mark.skipif(
    not obp_available() and bool(os.environ.get("TASTEMAKER_NO_OBP")),
    reason="TASTEMAKER_NO_OBP is set and the OBP venv is missing",
)


def _assert_same(arrays: BanditArrays) -> None:
    theirs = run_obp(arrays, list(ESTIMATORS))
    for name in ESTIMATORS:
        mine, _ = ours(estimator_by_name(name), arrays)
        assert mine == pytest.approx(theirs[name]["value"], rel=1e-6, abs=1e-12), name


@needs_obd
def test_obd_bts_log_uniform_random_target_matches_obp() -> None:
    assert OBD_DIR is not None
    log = read_action_log(OBD_DIR / "bts" / "all" / "all.csv", "obd")
    q = reward_model(log)  # (n, n_actions) at each row's position
    q_hat = np.repeat(q[:, :, None], log.len_list, axis=2)
    uniform = np.full((log.n_rounds, log.n_actions, log.len_list), 1.0 / log.n_actions)
    _assert_same(BanditArrays(log.action, log.position, log.reward, log.propensity, uniform, q_hat))


def test_synthetic_context_dependent_target_matches_obp() -> None:
    rng = np.random.default_rng(5)
    n, n_actions, len_list = 5000, 6, 3
    action = rng.integers(0, n_actions, n)
    position = rng.integers(0, len_list, n)
    pscore = rng.uniform(0.05, 1.0, n)
    target = rng.dirichlet(np.full(n_actions, 0.3), size=(n, len_list)).transpose(0, 2, 1)
    q_hat = rng.uniform(0, 1, (n, n_actions, len_list))
    reward = (rng.random(n) < 0.3).astype(float)
    _assert_same(BanditArrays(action, position, reward, pscore, target, q_hat))
