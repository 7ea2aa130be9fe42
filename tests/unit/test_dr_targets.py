"""Doubly robust training targets: the formula on a hand-worked cell, unbiasedness with a wrong
first-stage model, the cross-fitted logistic first stage at its optimum, and a reward model
trained on them that is served as trained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tastemaker.models.artifacts import load_reward_model
from tastemaker.training.modeling.dr_targets import dr_rows, fit_logistic
from tastemaker.training.modeling.reward_rows import training_rows
from tastemaker.training.modeling.reward_training import train_reward_model
from tastemaker.v1 import records_pb2

CANDIDATES = ("a", "b", "c")


def _decision(i: int, shown: str, propensity: float, clicked: bool) -> records_pb2.RewardedDecision:
    decision = records_pb2.DecisionLog(decision_id=f"d-{i}", surface="home", user_id=f"u-{i % 7}")
    decision.shelf_candidates.item_ids.extend(CANDIDATES)
    decision.shown.add(shelf_id=shown, position=0, propensity=propensity)
    outcomes = [records_pb2.Outcome(decision_id=decision.decision_id, item_id=shown, reward=1.0)] if clicked else []
    return records_pb2.RewardedDecision(decision=decision, outcomes=outcomes, reward=float(clicked))


def test_a_hand_worked_cell() -> None:
    logs = [_decision(0, "b", 0.25, clicked=True)]
    rows = dr_rows(logs, clip=10.0, unshown_per_cell=2, first_stage=lambda x: np.full(len(x), 0.2))
    # shown: 0.2 + (1 / 0.25) · (1 − 0.2) = 3.4; the unshown a and c keep r̂ = 0.2, weight (3 − 1) / 2
    np.testing.assert_allclose(rows.target, [3.4, 0.2, 0.2])
    np.testing.assert_allclose(rows.weight, [1.0, 1.0, 1.0])
    assert rows.shown.tolist() == [True, False, False]

    clipped = dr_rows(logs, clip=2.0, unshown_per_cell=1, first_stage=lambda x: np.full(len(x), 0.2))
    np.testing.assert_allclose(clipped.target, [0.2 + 2.0 * 0.8, 0.2])
    np.testing.assert_allclose(clipped.weight, [1.0, 2.0])  # one of two unshown sampled stands for both


@pytest.mark.parametrize(("clip", "unshown"), [(0.5, 3), (10.0, -1)])
def test_bad_settings_are_refused(clip: float, unshown: int) -> None:
    with pytest.raises(ValueError, match="clip|unshown_per_cell"):
        dr_rows([_decision(0, "a", 0.5, True)], clip=clip, unshown_per_cell=unshown)


def test_unbiased_with_a_wrong_first_stage() -> None:
    """Logging picks a, b, c with probabilities 0.6, 0.3, 0.1; their true click rates are 0.1, 0.5,
    0.9. With r̂ ≡ 0.3 (wrong for all three) each candidate's mean target over every decision,
    shown there or not, is still its true rate."""
    rng = np.random.default_rng(7)
    mu, truth = np.array([0.6, 0.3, 0.1]), np.array([0.1, 0.5, 0.9])
    n = 40_000
    picks = rng.choice(3, size=n, p=mu)
    clicks = rng.random(n) < truth[picks]
    logs = [_decision(i, CANDIDATES[a], mu[a], bool(c)) for i, (a, c) in enumerate(zip(picks, clicks, strict=True))]
    rows = dr_rows(logs, clip=None, unshown_per_cell=2, first_stage=lambda x: np.full(len(x), 0.3))
    per_row = rows.target.reshape(n, 3)  # each cell: [shown, then the others in candidate order]
    sums = np.zeros(3)
    for a, targets in zip(picks, per_row, strict=True):
        order = [a, *[b for b in range(3) if b != a]]
        sums[order] += targets
    means = sums / n
    standard_error = np.sqrt(truth * (1 / mu) / n) + 0.01
    np.testing.assert_array_less(np.abs(means - truth), 4 * standard_error)
    r_hat_only = np.full(3, 0.3)  # what a first-stage model alone would say
    assert np.abs(means - truth).max() < np.abs(r_hat_only - truth).max() / 4


def test_the_first_stage_is_at_its_optimum() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 6))
    y = (rng.random(500) < 1 / (1 + np.exp(-(x @ np.arange(6) * 0.3 - 0.5)))).astype(float)
    w = fit_logistic(x, y, l2=2.0)
    design = np.hstack([x, np.ones((500, 1))])
    p = 1 / (1 + np.exp(-(design @ w)))
    gradient = design.T @ (p - y) + np.r_[2.0 * w[:-1], 0.0]
    assert np.abs(gradient).max() < 1e-6
    assert np.corrcoef(w[:-1], np.arange(6))[0, 1] > 0.9


@pytest.mark.parametrize("kind", ["logistic", "gbt"])
def test_a_model_trained_on_dr_targets_is_served_as_trained(kind: str, tmp_path: Path) -> None:
    from tastemaker.bandits.simulator import SimulatedWorld
    from tests.support.simulated import home_service, rewarded_logs

    world = SimulatedWorld(seed=1)
    logs = rewarded_logs(home_service(world), world, 600)
    trained = train_reward_model(kind, logs, tmp_path / kind, epochs=3, ips_clip=10.0, targets="dr")
    served = load_reward_model(trained.directory)
    x, _, _, _ = training_rows(logs[:100])
    np.testing.assert_allclose(served.predict(x), trained.reference(x), atol=2e-5)  # type: ignore[attr-defined]
    assert trained.metrics["heldout_auc"] > 0.55, trained.metrics
    manifest = (trained.directory / "manifest.json").read_text()
    assert '"targets": "dr"' in manifest
    with pytest.raises(ValueError, match="targets"):
        train_reward_model(kind, logs, tmp_path / "x", targets="direct")
