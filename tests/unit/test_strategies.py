"""Every exploration strategy logs correct propensities: 100,000 slates drawn for one fixed context,
with a pinned and an excluded candidate, and every logged (item, position) propensity compared with
the empirical frequency (tolerance from the binomial standard error, plus the Monte-Carlo bound)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tastemaker.bandits.strategies import (
    Candidates,
    EpsilonGreedy,
    LinearState,
    LinUCB,
    Softmax,
    Strategy,
    Thompson,
    rank_with_constraints,
    with_floor,
)

N_SLATES = 100_000
K = 4


def _context() -> Candidates:
    rng = np.random.default_rng(4)
    ids = tuple(f"item{i}" for i in range(8))
    features = np.column_stack([np.ones(8), rng.normal(size=8), rng.normal(size=8)])
    return Candidates(ids, rng.normal(size=8), features)


def _trained_state() -> LinearState:
    rng = np.random.default_rng(5)
    state = LinearState(dim=3)
    x = np.column_stack([np.ones(30), rng.normal(size=30), rng.normal(size=30)])
    state.update(x, x @ np.array([0.1, 0.5, -0.3]) + rng.normal(scale=0.5, size=30))
    return state


STRATEGIES = {
    "epsilon-greedy": lambda: EpsilonGreedy(0.2),
    "softmax": lambda: Softmax(0.7),
    "linucb+floor": lambda: with_floor(LinUCB(_trained_state(), alpha=0.5), 0.02),
    "thompson": lambda: Thompson(_trained_state(), scale=1.0),
    "thompson+floor": lambda: with_floor(Thompson(_trained_state(), scale=0.5), 0.01),
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_logged_propensities_match_empirical_frequencies(name: str) -> None:
    strategy: Strategy = STRATEGIES[name]()
    candidates = _context()
    rng = np.random.default_rng(0)
    pinned, excluded = {1: "item3"}, frozenset({"item6"})
    counts: Counter[tuple[str, int]] = Counter()
    logged: dict[tuple[str, int], float] = {}
    rankings: Counter[tuple[str, ...]] = Counter()
    ranking_logged: dict[tuple[str, ...], float] = {}
    for _ in range(N_SLATES):
        placement = rank_with_constraints(strategy, candidates, K, rng, pinned, excluded)
        assert placement.positions == list(range(K)) and placement.ids[1] == "item3" and "item6" not in placement.ids
        for item, position, p in zip(placement.ids, placement.positions, placement.propensities, strict=True):
            counts[(item, position)] += 1
            assert logged.setdefault((item, position), p) == p  # one context, one propensity
        key = tuple(placement.ids)
        rankings[key] += 1
        ranking_logged.setdefault(key, placement.ranking_probability)
    error_bound = strategy.info(6, 3).error_bound
    for (item, position), p in logged.items():
        frequency = counts[(item, position)] / N_SLATES
        tolerance = 4.5 * np.sqrt(p * (1 - p) / N_SLATES + error_bound**2) + 1e-9
        assert abs(frequency - p) <= tolerance, (name, item, position, frequency, p)
    assert logged[("item3", 1)] == 1.0
    # every position's propensities over the candidates that can fill it sum to 1
    for position in (0, 2, 3):
        assert sum(p for (_, pos), p in logged.items() if pos == position) <= 1 + 1e-9
    # and whole rankings: the most frequent ones against their logged probability
    for key, count in rankings.most_common(5):
        p = ranking_logged[key]
        tolerance = 4.5 * np.sqrt(p * (1 - p) / N_SLATES + error_bound**2) + 1e-9
        assert abs(count / N_SLATES - p) <= tolerance, (name, key, count / N_SLATES, p)


def test_the_floor_bounds_every_propensity() -> None:
    strategy = with_floor(LinUCB(_trained_state(), alpha=0.5), 0.05)
    marginals = strategy.marginals(_context(), K)
    assert marginals.min() >= 0.05 - 1e-12
    np.testing.assert_allclose(marginals.sum(axis=0), 1.0)
    with pytest.raises(ValueError, match="floor"):
        with_floor(EpsilonGreedy(), 1.5)


def test_monte_carlo_propensities_say_so() -> None:
    info = Thompson(_trained_state(), n_samples=2500).info(8, 4)
    assert (info.method, info.samples, info.error_bound) == ("monte-carlo", 2500, 0.01)
    assert EpsilonGreedy().info(8, 4).method == "closed-form"
    assert Softmax().info(8, 4).method == "enumerated"
