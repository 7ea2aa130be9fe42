"""Every exploration strategy logs correct propensities: 100,000 slates drawn for one fixed context,
with a pinned and an excluded candidate, and every logged (item, position) propensity compared with
the empirical frequency (tolerance from the binomial standard error, plus the Monte-Carlo bound)."""

from __future__ import annotations

from collections import Counter
from typing import Any, TypeVar

import numpy as np
import pytest

from tastemaker.bandits.rows import rank_rows
from tastemaker.bandits.strategies import (
    Candidates,
    EpsilonGreedy,
    LinearState,
    LinUCB,
    Softmax,
    SquareCB,
    Strategy,
    Thompson,
    rank_with_constraints,
    with_floor,
)

N_SLATES = 100_000
#: pages for the all-rows-at-once test (three rows each, nine strategies): a propensity 30% off at
#: p = 0.1 is still 20 standard errors out at 40,000 pages, at 40% of the 100,000-page test's time
N_PAGES = 40_000
Key = TypeVar("Key", bound=tuple[Any, ...])
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
    "squarecb": lambda: SquareCB(gamma=3.0),
    "squarecb+floor": lambda: with_floor(SquareCB(gamma=10.0), 0.02),
}


def _most_likely(logged: dict[Key, float], n: int = 5) -> list[Key]:
    """The n rankings with the highest logged probability: chosen by what was logged, not by how often
    each was drawn (the most frequent of many rare rankings are the luckiest, not a fair sample)."""
    return sorted(logged, key=lambda key: -logged[key])[:n]


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
    # and whole rankings: the most likely ones against their logged probability
    for key in _most_likely(ranking_logged):
        count, p = rankings[key], ranking_logged[key]
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


def test_thompson_never_logs_a_zero_propensity_for_what_it_shows() -> None:
    """Thompson's propensities come from its posterior draws for the context; a page it shows must be
    one of those draws, or a rarely drawn order is shown with propensity 0 (which no off-policy
    estimator accepts). Few draws over many candidates make rare orders common."""
    rng = np.random.default_rng(1)
    ids = tuple(f"item{i}" for i in range(30))
    features = np.column_stack([np.ones(30), rng.normal(size=30), rng.normal(size=30)])
    candidates = Candidates(ids, np.zeros(30), features)
    strategy = Thompson(LinearState(dim=3), scale=1.0, n_samples=50)
    marginals = strategy.marginals(candidates, 5)
    for _ in range(500):
        order = strategy.sample_order(candidates, 5, rng)
        assert marginals[order, np.arange(5)].min() > 0
        assert strategy.ranking_probability(candidates, order) > 0


ROW_STRATEGIES = {
    "epsilon-greedy": lambda: EpsilonGreedy(0.3),
    "epsilon-greedy+floor": lambda: with_floor(EpsilonGreedy(0.1), 0.03),
    "linucb+floor": lambda: with_floor(LinUCB(_trained_state(), alpha=0.5), 0.02),
    "softmax": lambda: Softmax(0.7),
    "squarecb": lambda: SquareCB(gamma=3.0),
    # the floor over SquareCB, softmax and Thompson is one code path: tested once
    "squarecb+floor": lambda: with_floor(SquareCB(gamma=10.0), 0.02),
    "thompson": lambda: Thompson(_trained_state(), scale=1.0),
    "linucb with item terms": lambda: LinUCB(_state_with_items(), alpha=0.5),
}


def _state_with_items() -> LinearState:
    """A linear posterior whose items carry their own terms (β̂_i), as serving's shared one does."""
    state = _trained_state()
    rng = np.random.default_rng(6)
    ids = [f"item{i}" for i in rng.integers(0, 8, size=40)]
    x = np.column_stack([np.ones(40), rng.normal(size=40), rng.normal(size=40)])
    state.update(x, (np.array([int(i[4:]) for i in ids]) % 3 == 0).astype(float), ids)
    return state


def _rows() -> list[Candidates]:
    """Three rows of different sizes (8, 5 and 3 candidates: the last one shorter than K), with ties."""
    full = _context()
    rows = [full, full.subset(np.array([0, 2, 4, 5, 7])), full.subset(np.array([1, 3, 6]))]
    tied = rows[1].scores.copy()
    tied[1] = tied[3]
    return [rows[0], Candidates(rows[1].ids, tied, rows[1].features), rows[2]]


@pytest.mark.parametrize("name", list(ROW_STRATEGIES))
def test_rows_drawn_at_once_log_the_propensities_of_one_row_at_a_time(name: str) -> None:
    """rank_rows draws every row in one pass: each row's logged propensities are the strategy's own
    marginals for that row (the known answer), and match the empirical frequencies over 40,000 pages."""
    strategy: Strategy = ROW_STRATEGIES[name]()
    rows = _rows()
    expected = [strategy.marginals(row, K) for row in rows]
    rng = np.random.default_rng(0)
    index = [{item: i for i, item in enumerate(row.ids)} for row in rows]
    counts = [np.zeros_like(e) for e in expected]
    logged = [np.full_like(e, np.nan) for e in expected]
    rankings: list[Counter[tuple[str, ...]]] = [Counter() for _ in rows]
    ranking_logged: list[dict[tuple[str, ...], float]] = [{} for _ in rows]
    for _ in range(N_PAGES):
        for r, placement in enumerate(rank_rows(strategy, rows, K, rng)):
            at = [index[r][item] for item in placement.ids]
            assert placement.positions == list(range(min(K, len(rows[r].ids)))) and len(set(at)) == len(at)
            counts[r][at, placement.positions] += 1
            logged[r][at, placement.positions] = placement.propensities
            key = tuple(placement.ids)
            rankings[r][key] += 1
            ranking_logged[r].setdefault(key, placement.ranking_probability)
    for r, row in enumerate(rows):
        seen = ~np.isnan(logged[r])
        np.testing.assert_allclose(logged[r][seen], expected[r][seen], atol=1e-12, err_msg=f"{name} row {r}")
        for key, p in ranking_logged[r].items():
            assert p == pytest.approx(
                strategy.ranking_probability(row, np.array([index[r][i] for i in key])), abs=1e-12
            )
        placement = rank_rows(strategy, rows, K, rng)[r]
        assert placement.scores == {item: row.scores[index[r][item]] for item in placement.ids}
    for r in range(len(rows)):
        for (i, position), p in np.ndenumerate(expected[r]):
            frequency = counts[r][i, position] / N_PAGES
            assert abs(frequency - p) <= 4.5 * np.sqrt(p * (1 - p) / N_PAGES) + 1e-9, (name, r, i, position)
        for key in _most_likely(ranking_logged[r]):
            count, p = rankings[r][key], ranking_logged[r][key]
            assert abs(count / N_PAGES - p) <= 4.5 * np.sqrt(p * (1 - p) / N_PAGES) + 1e-9, (name, r, key)


@pytest.mark.parametrize("name", ["linucb", "thompson"])
def test_linear_strategies_with_tied_features_log_what_they_show(name: str) -> None:
    """Six candidates with the same features (a new user: no engagement anywhere) and two better
    ones: the tied ones share their positions, and every logged (item, position) propensity and
    ranking probability matches its frequency — one row at a time and, for LinUCB, all rows at once."""
    state = _trained_state()
    ids = tuple(f"item{i}" for i in range(8))
    features = np.tile([1.0, 0.0, 0.0], (8, 1))
    features[:2, 1] = 2.0  # two candidates clearly ahead, six tied behind them
    candidates = Candidates(ids, np.zeros(8), features)
    strategy: Strategy = LinUCB(state, alpha=0.5) if name == "linucb" else Thompson(state, scale=0.05)
    expected = strategy.marginals(candidates, K)
    assert expected[2:, 2:].min() > 0.1  # every tied candidate reaches the positions they share
    rng = np.random.default_rng(1)
    draws = 20_000
    counts = np.zeros_like(expected)
    rankings: Counter[tuple[int, ...]] = Counter()
    logged: dict[tuple[int, ...], float] = {}
    for i in range(draws):
        rows = [candidates, candidates]
        placements = (
            rank_rows(strategy, rows, K, rng) if i % 2 else [rank_with_constraints(strategy, candidates, K, rng)]
        )
        for placement in placements:
            order = tuple(int(p[4:]) for p in placement.ids)
            np.testing.assert_allclose(placement.propensities, expected[list(order), placement.positions])
            logged.setdefault(order, placement.ranking_probability)
            counts[list(order), placement.positions] += 1
            rankings[order] += 1
    total = counts.sum(axis=0)[0]
    stderr = np.sqrt(expected * (1 - expected) / total)
    assert (np.abs(counts / total - expected) <= 4.5 * stderr + 1e-9).all()
    for order in _most_likely(logged):
        count, p = rankings[order], logged[order]
        assert abs(count / total - p) <= 4.5 * np.sqrt(p * (1 - p) / total) + 1e-9, (order, p)


def test_squarecb_weights_the_first_position_by_the_inverse_gap_and_fills_the_rest_greedily() -> None:
    """p(a) = 1/(n + γ·gap) for all but the best, which takes the rest; then the greedy order."""
    from tastemaker.bandits.inverse_gap import first_position

    scores = np.array([0.5, 0.9, 0.1, 0.9 - 1e-3])
    p = first_position(scores, gamma=10.0)
    gaps = scores.max() - scores
    np.testing.assert_allclose(p[[0, 2, 3]], 1.0 / (4 + 10.0 * gaps[[0, 2, 3]]))
    assert p[1] == pytest.approx(1 - p[[0, 2, 3]].sum()) and p.argmax() == 1
    np.testing.assert_allclose(first_position(scores, gamma=0.0), 0.25)  # γ = 0: uniform
    candidates = Candidates(tuple("abcd"), scores)
    strategy = SquareCB(gamma=10.0)
    assert strategy.ranking_probability(candidates, np.array([2, 1, 3, 0])) == pytest.approx(p[2])
    assert strategy.ranking_probability(candidates, np.array([2, 3, 1, 0])) == 0.0  # not greedy below the top
    with pytest.raises(ValueError, match="gamma"):
        SquareCB(gamma=-1.0)


@pytest.mark.parametrize("name", list(ROW_STRATEGIES))
def test_rows_drawn_at_once_take_empty_and_one_candidate_rows(name: str) -> None:
    """A shelf whose cards were all excluded (no candidates) and one with a single card, among full
    rows: the empty row shows nothing (probability 1), the single card shows with its propensity,
    and no warning is raised on the way."""
    import warnings

    strategy: Strategy = ROW_STRATEGIES[name]()
    full = _context()
    empty = full.subset(np.array([], dtype=int))
    single = full.subset(np.array([3]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        placements = rank_rows(strategy, [full, empty, single], K, np.random.default_rng(0))
        assert rank_rows(strategy, [], K, np.random.default_rng(0)) == []
    assert placements[1].ids == [] and placements[1].ranking_probability == 1.0
    assert placements[2].ids == ["item3"] and placements[2].propensities.tolist() == pytest.approx([1.0])
    assert len(placements[0].ids) == K


def test_strategy_from_names_every_strategy_with_its_logged_parameter() -> None:
    from tastemaker.bandits.strategies import STRATEGY_PARAMETERS, LinearState, strategy_from

    state = LinearState(dim=2)
    for name, (key, default) in STRATEGY_PARAMETERS.items():
        made = strategy_from(name, {key: default / 2}, state)
        assert made.name == name and made.parameters() == {key: default / 2}
        assert strategy_from(name, {}, state).parameters() == {key: default}


def test_strategy_from_refuses_unknown_names_and_linear_without_state() -> None:
    import pytest

    from tastemaker.bandits.strategies import strategy_from

    with pytest.raises(ValueError, match="unknown strategy 'greedy'"):
        strategy_from("greedy", {})
    with pytest.raises(ValueError, match="linear posterior"):
        strategy_from("linucb", {})
