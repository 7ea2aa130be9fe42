import numpy as np
import pytest

from tastemaker.training.ope import IPS, SNIPS, SlotData


def _synthetic(seed: int, n: int = 2000) -> tuple[SlotData, np.ndarray, float]:
    """One slot, 3 actions, uniform logging; the target always plays action 0 (true value 0.6)."""
    rng = np.random.default_rng(seed)
    means = np.array([0.6, 0.3, 0.1])
    actions = rng.integers(0, 3, size=n)
    rewards = (rng.random(n) < means[actions]).astype(float)[:, None]
    data = SlotData(rewards=rewards, logged_propensity=np.full((n, 1), 1 / 3), mask=np.ones((n, 1), bool))
    target = (actions == 0).astype(float)[:, None]
    return data, target, float(means[0])


@pytest.mark.parametrize("estimator", [IPS(), SNIPS()])
def test_on_policy_estimate_equals_the_mean_reward(estimator: IPS) -> None:
    rng = np.random.default_rng(0)
    rewards = rng.random((500, 3))
    mask = np.ones((500, 3), bool)
    mask[::4, 2] = False  # some decisions showed only two slots
    rewards[~mask] = 0.0
    propensity = rng.uniform(0.1, 1.0, size=(500, 3))
    data = SlotData(rewards=rewards, logged_propensity=propensity, mask=mask)
    estimate = estimator.estimate(data, target_propensity=propensity)
    assert estimate.value == pytest.approx(rewards.sum(axis=1).mean())
    assert estimate.lower < estimate.value < estimate.upper


@pytest.mark.parametrize("estimator", [IPS(), SNIPS()])
def test_interval_covers_a_known_value_at_about_the_nominal_rate(estimator: IPS) -> None:
    covered = 0
    runs = 200
    for seed in range(runs):
        data, target, truth = _synthetic(seed)
        est = estimator.estimate(data, target_propensity=target)
        covered += est.lower <= truth <= est.upper
    assert 0.90 <= covered / runs <= 0.99


def test_ips_is_unbiased_on_a_known_case() -> None:
    values = [IPS().estimate(d, target_propensity=t).value for d, t, _ in (_synthetic(s) for s in range(100))]
    assert np.mean(values) == pytest.approx(0.6, abs=0.01)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_propensity": np.ones((3, 2))}, "shape"),
        ({"target_propensity": -np.ones((4, 1))}, "within"),
    ],
)
def test_invalid_inputs(kwargs: dict, message: str) -> None:
    data = SlotData(rewards=np.ones((4, 1)), logged_propensity=np.full((4, 1), 0.5), mask=np.ones((4, 1), bool))
    with pytest.raises(ValueError, match=message):
        IPS().estimate(data, **kwargs)


def test_slot_data_rejects_zero_logged_propensity() -> None:
    with pytest.raises(ValueError, match="logged_propensity"):
        SlotData(rewards=np.ones((2, 1)), logged_propensity=np.zeros((2, 1)), mask=np.ones((2, 1), bool))


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.5])
def test_invalid_alpha(alpha: float) -> None:
    with pytest.raises(ValueError, match="`alpha` must be in"):
        IPS(alpha=alpha)
