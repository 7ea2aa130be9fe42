"""BanditNet learns a policy from uniformly explored logs whose true value (by the simulator) beats
the logging policy's and the built-in model's greedy page; it serves like any dense model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tastemaker.bandits.reward_models import EngagementScorer
from tastemaker.models.artifacts import load_reward_model
from tastemaker.training.modeling.policy_learning import cell_sets, fit, snips
from tastemaker.training.modeling.reward_training import train_reward_model
from tastemaker.v1 import records_pb2
from tests.support.retrain_world import retrain_logs, true_value_of


@pytest.fixture(scope="module")
def logs() -> list[records_pb2.RewardedDecision]:
    return retrain_logs()


def test_banditnet_beats_the_logging_and_builtin_policies(logs, tmp_path: Path) -> None:
    trained = train_reward_model("banditnet", logs, tmp_path / "bn", version="bn-test")
    assert trained.metrics["heldout_snips"] > trained.metrics["heldout_logging_value"]
    policy = load_reward_model(trained.directory)
    holdout = logs[-600:]
    learned, builtin = true_value_of(policy, holdout), true_value_of(EngagementScorer(), holdout)
    logging_value = float(np.mean([d.reward for d in holdout]))  # uniform-random logging, on-policy
    assert learned > 1.1 * builtin and learned > 1.2 * logging_value, (learned, builtin, logging_value)
    x = np.random.default_rng(0).normal(size=(5, policy.layers[0][0].shape[0]))  # type: ignore[attr-defined]
    np.testing.assert_allclose(policy.predict(x), trained.reference(x))  # type: ignore[attr-defined]


def test_the_lagrangian_objective_moves_toward_rewarded_items(logs) -> None:
    cells = cell_sets(logs[:2000])
    rows = np.arange(len(cells.reward))
    theta = fit(cells, lam=float(cells.reward.mean()), rows=rows, iterations=100)
    assert snips(theta, cells, rows) > snips(np.zeros_like(theta), cells, rows)
    with pytest.raises(ValueError, match="no shown home cells"):
        cell_sets([])
