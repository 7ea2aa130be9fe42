import numpy as np
import pytest

from tastemaker.training.evaluation.ope import (
    DM,
    DR,
    DROS,
    ESTIMATORS,
    IPW,
    SNDR,
    SNIPW,
    SlotData,
    SwitchDR,
    bootstrap_interval,
    estimator_by_name,
    weight_diagnostics,
)


def _synthetic(seed: int, n: int = 2000) -> tuple[SlotData, np.ndarray, float]:
    """One slot, 3 actions, uniform logging; the target always plays action 0 (true value 0.6)."""
    rng = np.random.default_rng(seed)
    means = np.array([0.6, 0.3, 0.1])
    actions = rng.integers(0, 3, size=n)
    rewards = (rng.random(n) < means[actions]).astype(float)[:, None]
    data = SlotData(rewards=rewards, logged_propensity=np.full((n, 1), 1 / 3), mask=np.ones((n, 1), bool))
    target = (actions == 0).astype(float)[:, None]
    return data, target, float(means[0])


@pytest.mark.parametrize("estimator", [IPW(), SNIPW()])
def test_on_policy_estimate_equals_the_mean_reward(estimator: IPW) -> None:
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


@pytest.mark.parametrize("estimator", [IPW(), SNIPW()])
def test_interval_covers_a_known_value_at_about_the_nominal_rate(estimator: IPW) -> None:
    covered = 0
    runs = 200
    for seed in range(runs):
        data, target, truth = _synthetic(seed)
        est = estimator.estimate(data, target_propensity=target)
        covered += est.lower <= truth <= est.upper
    assert 0.90 <= covered / runs <= 0.99


def test_ips_is_unbiased_on_a_known_case() -> None:
    values = [IPW().estimate(d, target_propensity=t).value for d, t, _ in (_synthetic(s) for s in range(100))]
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
        IPW().estimate(data, **kwargs)


def test_slot_data_rejects_zero_logged_propensity() -> None:
    with pytest.raises(ValueError, match="logged_propensity"):
        SlotData(rewards=np.ones((2, 1)), logged_propensity=np.zeros((2, 1)), mask=np.ones((2, 1), bool))


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.5])
def test_invalid_alpha(alpha: float) -> None:
    with pytest.raises(ValueError, match="`alpha` must be in"):
        IPW(alpha=alpha)


MEANS = np.array([0.6, 0.3, 0.1])


def _with_model(seed: int, model_error: float = 0.0, n: int = 2000) -> tuple[SlotData, np.ndarray, np.ndarray]:
    """Uniform logging over 3 actions, target always plays action 0 (true value 0.6); the reward
    model q̂ is the true mean plus `model_error`."""
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, 3, size=n)
    rewards = (rng.random(n) < MEANS[actions]).astype(float)[:, None]
    q_hat = MEANS + model_error
    data = SlotData(
        rewards=rewards,
        logged_propensity=np.full((n, 1), 1 / 3),
        mask=np.ones((n, 1), bool),
        q_logged=q_hat[actions][:, None],
    )
    target = (actions == 0).astype(float)[:, None]
    q_target = np.full((n, 1), q_hat[0])
    return data, target, q_target


def test_dm_with_a_perfect_model_is_the_truth() -> None:
    data, target, q_target = _with_model(0)
    assert DM().estimate(data, target, q_target).value == pytest.approx(0.6)


@pytest.mark.parametrize("estimator", [DR(), SNDR(), SwitchDR(tau=1e9), DROS(lambda_=1e9)])
def test_doubly_robust_estimators_stay_unbiased_with_a_biased_model(estimator: DR) -> None:
    values = [estimator.estimate(*_with_model(s, model_error=0.2)).value for s in range(100)]
    assert np.mean(values) == pytest.approx(0.6, abs=0.01)
    assert DM().estimate(*_with_model(0, model_error=0.2)).value == pytest.approx(0.8)  # while DM is off


def test_switch_dr_moves_from_dr_to_dm_with_tau() -> None:
    data, target, q_target = _with_model(1, model_error=0.1)
    assert SwitchDR(tau=1e9).estimate(data, target, q_target).value == pytest.approx(
        DR().estimate(data, target, q_target).value
    )
    assert SwitchDR(tau=0.5).estimate(data, target, q_target).value == pytest.approx(
        DM().estimate(data, target, q_target).value
    )


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_every_estimator_covers_a_known_value_at_about_the_nominal_rate(name: str) -> None:
    estimator = estimator_by_name(name)
    covered = sum(
        est.lower <= 0.6 <= est.upper
        for est in (estimator.estimate(*_with_model(seed, model_error=0.05)) for seed in range(150))
    )
    if name == "dm":  # a biased model: DM's interval is about variance, not bias, and misses
        assert covered / 150 < 0.5
    else:
        assert 0.88 <= covered / 150 <= 0.99, name


def test_bootstrap_interval_agrees_with_the_analytic_one() -> None:
    data, target, q_target = _with_model(2)
    analytic = IPW().estimate(data, target)
    low, high = bootstrap_interval(IPW(), data, target, n_resamples=400)
    assert low == pytest.approx(analytic.lower, abs=0.02) and high == pytest.approx(analytic.upper, abs=0.02)


def test_diagnostics_flag_wrong_propensities() -> None:
    data, target, _ = _with_model(3)
    healthy = weight_diagnostics(data, target)
    assert healthy.mean_weight == pytest.approx(1.0, abs=0.1) and not healthy.warnings
    broken = SlotData(data.rewards, data.logged_propensity / 2, data.mask)  # a logging bug: halved propensities
    flagged = weight_diagnostics(broken, target)
    assert flagged.mean_weight == pytest.approx(2.0, abs=0.2)
    assert any("average" in w for w in flagged.warnings)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: DR().estimate(*_with_model(0)[:2]), "needs a reward model"),
        (lambda: IPW(clip=0), "`clip` must be positive"),
        (lambda: SwitchDR(tau=-1), "`tau` must be positive"),
        (lambda: DROS(lambda_=0), "`lambda_` must be positive"),
        (lambda: estimator_by_name("magic"), "unknown estimator 'magic'"),
    ],
)
def test_bad_estimator_inputs(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]
