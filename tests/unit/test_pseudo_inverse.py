"""The pseudo-inverse slate estimator: unbiased for additive slate rewards, with a known truth,
and tighter than the whole-slate IPS."""

import numpy as np
import pytest

from tastemaker.bandits.strategies import Candidates, EpsilonGreedy, Softmax
from tastemaker.training.evaluation.pseudo_inverse import PseudoInverse, indicator, pairwise_marginals, weights


def test_gamma_rows_are_the_marginals_and_it_is_symmetric() -> None:
    scores = Candidates(tuple("abcd"), np.array([0.2, 1.0, -0.5, 0.4]))
    ranker = EpsilonGreedy(0.3)
    gamma = pairwise_marginals(ranker, scores, 2)
    marginals = ranker.marginals(scores, 2).T.reshape(-1)  # position-major
    np.testing.assert_allclose(np.diag(gamma), marginals, atol=1e-12)
    np.testing.assert_allclose(gamma, gamma.T, atol=1e-12)
    # the weights reproduce the target's marginals in expectation: E_μ[θ 1_s] = q_π
    target = Softmax(0.5).marginals(scores, 2).T.reshape(-1)
    assert gamma @ np.linalg.pinv(gamma, hermitian=True) @ target == pytest.approx(target, abs=1e-9)


def test_estimates_an_additive_slate_reward_with_a_known_truth() -> None:
    rng = np.random.default_rng(11)
    m, k, n = 6, 3, 40_000
    scores = Candidates(tuple("abcdef"), rng.normal(size=m))
    logging, target = EpsilonGreedy(0.6), Softmax(0.7)
    phi = rng.uniform(0.0, 0.5, size=(k, m))  # click probability of item a at position j
    q_target = target.marginals(scores, k).T.reshape(-1)
    truth = float(q_target @ phi.reshape(-1))
    gamma = pairwise_marginals(logging, scores, k)
    orders = np.array([logging.sample_order(scores, k, rng) for _ in range(n)])
    indicators = np.stack([indicator(o, m) for o in orders])
    rewards = (rng.random((n, k)) < phi[np.arange(k), orders]).sum(axis=1).astype(float)
    theta = weights(gamma, q_target, indicators)
    estimate = PseudoInverse().estimate(rewards, theta)
    assert estimate.lower <= truth <= estimate.upper
    # whole-slate IPS on the same slates: unbiased too, but with a far wider interval
    ratio = np.array([target.ranking_probability(scores, o) / logging.ranking_probability(scores, o) for o in orders])
    slate = rewards * ratio
    slate_half = 1.96 * slate.std(ddof=1) / np.sqrt(n)
    assert (estimate.upper - estimate.lower) < 2 * slate_half


def test_refuses_to_enumerate_too_many_rankings() -> None:
    with pytest.raises(ValueError, match="too many"):
        pairwise_marginals(EpsilonGreedy(0.1), Candidates(tuple(map(str, range(30))), np.zeros(30)), 4)
