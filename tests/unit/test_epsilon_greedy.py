import math

import numpy as np
import pytest

from tastemaker.bandits.epsilon_greedy import greedy_order
from tastemaker.bandits.strategies import Candidates, EpsilonGreedy


def _c(scores: np.ndarray) -> Candidates:
    return Candidates(tuple(str(i) for i in range(len(scores))), np.asarray(scores, dtype=np.float64))


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.5, 1.0])
def test_marginals_are_a_distribution_per_position(epsilon: float) -> None:
    scores = np.array([0.3, 2.0, -1.0, 0.7, 0.7])
    marginals = EpsilonGreedy(epsilon).marginals(_c(scores), k=3)
    assert marginals.shape == (5, 3)
    np.testing.assert_allclose(marginals.sum(axis=0), 1.0)
    assert (marginals.sum(axis=1) <= 1.0 + 1e-12).all()


def test_known_marginals() -> None:
    # greedy order: 1 (2.0), then 3 and 4 (0.7, tied: each first of the two with probability 1/2), 0, 2
    marginals = EpsilonGreedy(0.2).marginals(_c(np.array([0.3, 2.0, -1.0, 0.7, 0.7])), k=3)
    assert marginals[1, 0] == pytest.approx(0.8 + 0.2 / 5)
    for tied in (3, 4):
        assert marginals[tied, 1] == pytest.approx(0.8 / 2 + 0.2 / 5)
        assert marginals[tied, 2] == pytest.approx(0.8 / 2 + 0.2 / 5)
    assert marginals[0, 1] == pytest.approx(0.2 / 5)


def test_ties_are_broken_uniformly_with_matching_propensities() -> None:
    """Candidates with equal scores (e.g. a new user: no engagement anywhere) share the greedy
    positions: every tied candidate is shown, and each logged propensity matches its frequency."""
    rng = np.random.default_rng(11)
    scores = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0])
    for epsilon in (0.0, 0.2):
        ranker = EpsilonGreedy(epsilon)
        draws, k = 30_000, 3
        counts = np.zeros((7, k))
        whole: dict[tuple[int, ...], int] = {}
        for _ in range(draws):
            order = ranker.sample_order(_c(scores), k, rng)
            counts[order, np.arange(k)] += 1
            whole[tuple(order)] = whole.get(tuple(order), 0) + 1
        expected = ranker.marginals(_c(scores), k)
        assert expected[1:6, 1:].min() > 0  # all five tied candidates can be shown
        stderr = np.sqrt(expected * (1 - expected) / draws)
        assert (np.abs(counts / draws - expected) <= 4 * stderr + 1e-12).all()
        for order, seen in sorted(whole.items(), key=lambda item: -item[1])[:5]:
            p = ranker.ranking_probability(_c(scores), np.array(order))
            assert abs(seen / draws - p) <= 4 * math.sqrt(p * (1 - p) / draws) + 1e-12
        assert ranker.ranking_probability(_c(scores), np.array([1, 2, 3])) == pytest.approx(epsilon / (7 * 6 * 5))


def test_empirical_frequencies_match_logged_propensities() -> None:
    rng = np.random.default_rng(7)
    scores = rng.normal(size=6)
    ranker = EpsilonGreedy(0.3)
    draws, k = 40_000, 3
    counts = np.zeros((6, k))
    for _ in range(draws):
        order = ranker.sample_order(_c(scores), k, rng)
        counts[order, np.arange(k)] += 1
    empirical = counts / draws
    expected = ranker.marginals(_c(scores), k)
    # the frequencies match the marginals within 4 standard errors
    stderr = np.sqrt(expected * (1 - expected) / draws)
    assert (np.abs(empirical - expected) <= 4 * stderr + 1e-12).all()


def test_ranking_probability_matches_frequency_of_greedy_and_one_random_ranking() -> None:
    rng = np.random.default_rng(3)
    scores = np.array([1.0, 0.5, 0.1, -0.2])
    ranker = EpsilonGreedy(0.25)
    draws = 60_000
    greedy = tuple(greedy_order(scores)[:2])
    other = (3, 2)
    seen = {greedy: 0, other: 0}
    for _ in range(draws):
        order = tuple(ranker.sample_order(_c(scores), 2, rng))
        if order in seen:
            seen[order] += 1
    p_greedy = ranker.ranking_probability(_c(scores), np.array(greedy))
    p_other = ranker.ranking_probability(_c(scores), np.array(other))
    assert p_greedy == pytest.approx(0.75 + 0.25 / 12)
    assert p_other == pytest.approx(0.25 / 12)
    for order, p in ((greedy, p_greedy), (other, p_other)):
        assert abs(seen[order] / draws - p) <= 4 * math.sqrt(p * (1 - p) / draws)


@pytest.mark.parametrize("epsilon", [-0.1, 1.5, float("nan")])
def test_invalid_epsilon(epsilon: float) -> None:
    with pytest.raises(ValueError, match="`epsilon` must be in"):
        EpsilonGreedy(epsilon)
