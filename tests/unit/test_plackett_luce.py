"""Plackett–Luce (softmax) rankings: closed-form ranking probabilities, exact and Monte-Carlo
position marginals, all checked against enumeration and against sampled frequencies."""

import itertools

import numpy as np
import pytest

from tastemaker.bandits.strategies import Candidates, Softmax


def _c(scores: np.ndarray) -> Candidates:
    return Candidates(tuple(str(i) for i in range(len(scores))), np.asarray(scores, dtype=np.float64))


def test_ranking_probabilities_sum_to_one_and_match_the_softmax_at_the_top() -> None:
    scores = np.array([0.3, -1.0, 2.0, 0.5])
    ranker = Softmax(temperature=0.7)
    total = sum(ranker.ranking_probability(_c(scores), np.array(p)) for p in itertools.permutations(range(4), 2))
    assert total == pytest.approx(1.0, abs=1e-12)
    softmax = np.exp(scores / 0.7) / np.exp(scores / 0.7).sum()
    # P(i first) is the softmax; summing P(i, j) over j gives it back
    first = [
        sum(ranker.ranking_probability(_c(scores), np.array([i, j])) for j in range(4) if j != i) for i in range(4)
    ]
    np.testing.assert_allclose(first, softmax, atol=1e-12)
    np.testing.assert_allclose(ranker.marginals(_c(scores), 2)[:, 0], softmax, atol=1e-12)


def test_exact_marginals_match_sampled_frequencies() -> None:
    scores = np.array([1.0, 0.0, 0.5, -0.5, 2.0])
    ranker = Softmax(temperature=1.0)
    marginals = ranker.marginals(_c(scores), 3)
    np.testing.assert_allclose(marginals.sum(axis=0), 1.0, atol=1e-12)
    rng = np.random.default_rng(3)
    n = 100_000
    counts = np.zeros((5, 3))
    for _ in range(n):
        order = ranker.sample_order(_c(scores), 3, rng)
        counts[order, np.arange(3)] += 1
    stderr = np.sqrt(marginals * (1 - marginals) / n)
    assert np.all(np.abs(counts / n - marginals) <= 4.5 * stderr + 1e-9)


def test_monte_carlo_marginals_stay_within_their_stated_error() -> None:
    scores = np.linspace(-1, 1, 9)
    exact = Softmax(temperature=0.5, exact_limit=10**6).marginals(_c(scores), 4)
    approx_ranker = Softmax(temperature=0.5, exact_limit=10, n_samples=40_000)
    approx = approx_ranker.marginals(_c(scores), 4)
    bound = approx_ranker.marginals_error(9, 4)
    assert bound == pytest.approx(0.5 / 200)
    assert np.max(np.abs(approx - exact)) <= 4 * bound


def test_temperature_must_be_positive() -> None:
    with pytest.raises(ValueError, match="temperature"):
        Softmax(temperature=0.0)


@pytest.mark.parametrize("scores", [np.linspace(-1, 1, 9), np.array([4.0, 3.5, 0, 0, 0, 0, 0, -1, -2])])
def test_monte_carlo_marginals_need_fewer_draws_when_no_candidate_dominates(scores: np.ndarray) -> None:
    """The Rao–Blackwellised estimate's per-draw value for (i, j) lies in [0, m], m = w_i / (W − the
    j−1 largest weights), so n_samples·m² draws keep the stated error: flat weights need few draws,
    peaked ones up to n_samples, and the estimate stays within the bound of the exact marginals."""
    exact = Softmax(temperature=0.5, exact_limit=10**6).marginals(_c(scores), 4)
    ranker = Softmax(temperature=0.5, exact_limit=10, n_samples=40_000)
    weights = ranker.weights(_c(scores))
    top = np.sort(weights)[::-1]
    m = min(1.0, top[0] / (weights.sum() - top[:3].sum()))
    assert ranker.draws_needed(_c(scores), 4) == max(ranker.min_draws, int(np.ceil(40_000 * m**2)))
    approx = ranker.marginals(_c(scores), 4)
    assert np.max(np.abs(approx - exact)) <= 4 * ranker.marginals_error(9, 4)
    np.testing.assert_allclose(approx.sum(axis=0), 1.0, atol=1e-9)  # each position is filled
