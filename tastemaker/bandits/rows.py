"""One page's rows ranked at once: every shown shelf's cards drawn, and their propensities read,
in one vectorised pass over a (rows × widest row) table, for every strategy.

Row r is ranked exactly as `rank_with_constraints` would rank it alone (no pinned or excluded
candidates: the caller has removed them), so its logged propensities are the strategy's own
`marginals` and `ranking_probability` for that row. How each strategy is drawn:

- greedy/uniform mixtures (ε-greedy, LinUCB, floored or not): row r shows a greedy order (ties
  broken uniformly at random) with probability 1 − u_r, else a uniformly random one, so
  P(i at j) = (1 − u_r)·G(i, j) + u_r/n_r and P(ranking) = (1 − u_r)·G(ranking) + u_r·(n_r − k_r)!/n_r!
  (G as in `epsilon_greedy`).
- SquareCB: the first position by inverse-gap weighting (one inverse-CDF draw per row), the rest
  the greedy order without it; propensities in closed form (`inverse_gap`).
- softmax: Gumbel top-k over the padded table; P(ranking) in closed form; P(i at j) from the
  strategy's per-context marginals (computed once per context, then a cache lookup per row).
- Thompson: one of the context's cached posterior draws per row, picked uniformly (`Thompson`).
- any of these under a floor: the rows that explore take a uniformly random order, and every row's
  propensities mix the inner strategy's with the uniform ones.

A strategy this module does not know is ranked one row at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tastemaker.bandits.strategies import (
    Candidates,
    EpsilonGreedy,
    Floored,
    LinUCB,
    Placement,
    Softmax,
    SquareCB,
    Strategy,
    Thompson,
    rank_with_constraints,
)


@dataclass(frozen=True)
class Table:
    """Rows padded to the widest: `scores` (R, W) with −inf padding, `valid` (R, W), `n` (R,)."""

    rows: Sequence[Candidates]
    scores: np.ndarray
    valid: np.ndarray
    n: np.ndarray

    @classmethod
    def of(cls, rows: Sequence[Candidates]) -> Table:
        n = np.array([len(row.ids) for row in rows])
        valid = np.arange(int(n.max())) < n[:, None]
        scores = np.full(valid.shape, -np.inf)
        scores[valid] = np.concatenate([row.scores for row in rows])
        return cls(rows, scores, valid, n)


@dataclass(frozen=True)
class RowRankings:
    """Row r shows candidates `orders[r, :kept[r]]` (indices into its row) at positions 0, 1, …
    with `propensities[r, :kept[r]]`; `ranking[r]` is P(exactly that order). Entries at and beyond
    `kept[r]` are padding."""

    orders: np.ndarray
    propensities: np.ndarray
    ranking: np.ndarray
    kept: np.ndarray

    def placements(self, rows: Sequence[Candidates]) -> list[Placement]:
        out = []
        for r, row in enumerate(rows):
            kept = int(self.kept[r])
            order = self.orders[r, :kept].tolist()
            ids = [row.ids[i] for i in order]
            out.append(
                Placement(
                    ids=ids,
                    positions=list(range(kept)),
                    propensities=self.propensities[r, :kept],
                    ranking_probability=float(self.ranking[r]),
                    scores=dict(zip(ids, row.scores[order].tolist(), strict=True)),
                )
            )
        return out


def rank_rows(strategy: Strategy, rows: Sequence[Candidates], k: int, rng: np.random.Generator) -> list[Placement]:
    """Independent rankings of up to k of each row's candidates, all rows at once (module docstring)."""
    if not rows:
        return []
    ranked = rank_table(strategy, rows, k, rng)
    if ranked is None:
        return [rank_with_constraints(strategy, row, k, rng) for row in rows]
    return ranked.placements(rows)


def rank_table(strategy: Strategy, rows: Sequence[Candidates], k: int, rng: np.random.Generator) -> RowRankings | None:
    """`rank_rows` as arrays; None for a strategy this module cannot draw in one pass."""
    if not rows:
        return RowRankings(np.zeros((0, 0), dtype=np.intp), np.zeros((0, 0)), np.ones(0), np.zeros(0, dtype=int))
    table = Table.of(rows)
    kept = np.minimum(k, table.n)
    shown = min(k, table.scores.shape[1])
    if shown == 0:  # every row empty, or k = 0
        empty = np.zeros((len(rows), 0))
        return RowRankings(empty.astype(np.intp), empty, np.ones(len(rows)), kept)
    mixture = _greedy_mixture(strategy)
    if mixture is not None:
        return _rank_mixture(table, mixture, kept, shown, rng)
    inner, floor = (strategy.inner, strategy.floor) if isinstance(strategy, Floored) else (strategy, 0.0)
    if not isinstance(inner, (SquareCB, Softmax, Thompson)):
        return None
    orders = _draw(inner, table, kept, shown, rng)
    if floor <= 0:
        return RowRankings(orders, *_evaluate(inner, table, orders, kept), kept)
    lam = np.minimum(1.0, table.n * floor)
    explore = rng.random(len(rows)) < lam
    if explore.any():
        orders[explore] = _uniform_orders(table.valid[explore], shown, rng)
    propensities, ranking = _evaluate(inner, table, orders, kept)
    positions = np.arange(shown)
    uniform = np.where(positions < kept[:, None], 1.0 / np.maximum(table.n[:, None] - positions, 1), 1.0)
    propensities = (1 - lam)[:, None] * propensities + (lam / np.maximum(table.n, 1))[:, None]
    ranking = (1 - lam) * ranking + lam * uniform.prod(axis=1)
    return RowRankings(orders, propensities, ranking, kept)


def _uniform_orders(valid: np.ndarray, shown: int, rng: np.random.Generator) -> np.ndarray:
    keys = rng.random(valid.shape)
    keys[~valid] = 2.0  # padding sorts last
    return np.argsort(keys, axis=1)[:, :shown]


def _draw(strategy: Strategy, table: Table, kept: np.ndarray, shown: int, rng: np.random.Generator) -> np.ndarray:
    """(R, shown) candidate indices drawn by `strategy` for each row."""
    if isinstance(strategy, Softmax):
        keys = np.log(np.maximum(_softmax_weights(strategy, table), 1e-300)) + rng.gumbel(size=table.scores.shape)
        keys[~table.valid] = -np.inf
        return np.argsort(-keys, axis=1)[:, :shown]
    if isinstance(strategy, SquareCB):
        p, greedy = _first_position(strategy, table)
        cdf = np.cumsum(p, axis=1)
        first = (cdf < rng.random(len(p))[:, None] * cdf[:, -1:]).sum(axis=1)
        first = np.minimum(first, table.n - 1)
        place = _places(greedy)
        at = np.take_along_axis(place, first[:, None], axis=1)  # where `first` sits in the greedy order
        j = np.arange(shown - 1)[None, :]
        rest = np.take_along_axis(greedy, np.where(j < at, j, j + 1), axis=1)
        return np.concatenate([first[:, None], rest], axis=1)
    assert isinstance(strategy, Thompson)
    orders = np.zeros((len(table.rows), shown), dtype=np.intp)
    picks = rng.random(len(table.rows))
    for r, row in enumerate(table.rows):
        if not kept[r]:
            continue
        draws = strategy.draws(row, int(kept[r])).orders
        orders[r, : kept[r]] = draws[int(picks[r] * len(draws))]
    return orders


def _evaluate(strategy: Strategy, table: Table, orders: np.ndarray, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(orders[r, j] at j) (R, shown) and P(orders[r] exactly) (R,) under `strategy` (an empty
    row's empty order: probability 1)."""
    propensities, ranking = _evaluate_shown(strategy, table, orders, kept)
    return propensities, np.where(kept == 0, 1.0, ranking)


def _evaluate_shown(
    strategy: Strategy, table: Table, orders: np.ndarray, kept: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    positions = np.arange(orders.shape[1])
    showing = positions[None, :] < kept[:, None]
    if isinstance(strategy, Softmax):
        weights = _softmax_weights(strategy, table)
        chosen = np.where(showing, np.take_along_axis(weights, orders, axis=1), 1.0)
        before = np.concatenate([np.zeros((len(orders), 1)), np.cumsum(chosen * showing, axis=1)[:, :-1]], axis=1)
        remaining = np.where(showing, weights.sum(axis=1)[:, None] - before, 1.0)
        ranking = np.where(showing, chosen / remaining, 1.0).prod(axis=1)
        propensities = np.zeros(orders.shape)
        for r, row in enumerate(table.rows):
            marginals = strategy.marginals(row, int(kept[r]))
            propensities[r, : kept[r]] = marginals[orders[r, : kept[r]], positions[: kept[r]]]
        return propensities, ranking
    if isinstance(strategy, SquareCB):
        p, greedy = _first_position(strategy, table)
        place = _places(greedy)
        in_order = np.take_along_axis(p, greedy, axis=1)
        above = np.take_along_axis(np.cumsum(in_order, axis=1) - in_order, place, axis=1)  # Σ p ranked above i
        below = 1.0 - above - p
        at = np.take_along_axis(place, orders, axis=1)
        propensities = np.where(
            positions == 0,
            np.take_along_axis(p, orders, axis=1),
            (at == positions) * np.take_along_axis(above, orders, axis=1)
            + (at == positions - 1) * np.take_along_axis(below, orders, axis=1),
        )
        # P(ranking) = p(first) when the rest is the greedy order without the first, else 0
        first_at = at[:, :1]
        j = positions[None, :-1]
        rest = np.take_along_axis(greedy, np.where(j < first_at, j, j + 1), axis=1)
        agrees = np.where(showing[:, 1:], orders[:, 1:] == rest, True).all(axis=1)
        ranking = np.where(agrees, np.take_along_axis(p, orders[:, :1], axis=1)[:, 0], 0.0)
        return np.where(showing, propensities, 0.0), ranking
    assert isinstance(strategy, Thompson)
    propensities = np.zeros(orders.shape)
    ranking = np.zeros(len(orders))
    for r, row in enumerate(table.rows):
        k = int(kept[r])
        if not k:
            continue
        draws = strategy.draws(row, k)
        order = orders[r, :k].astype(np.intp)
        propensities[r, :k] = draws.marginals[order, positions[:k]]
        ranking[r] = draws.rankings.get(order.tobytes(), 0.0)
    return propensities, ranking


def _softmax_weights(strategy: Softmax, table: Table) -> np.ndarray:
    """exp(s / T) per row, scaled so each row's largest is 1 (`plackett_luce.weights`); 0 padding."""
    z = table.scores / strategy.temperature
    top = z.max(axis=1, keepdims=True)
    return np.exp(z - np.where(np.isfinite(top), top, 0.0))


def _first_position(strategy: SquareCB, table: Table) -> tuple[np.ndarray, np.ndarray]:
    """(p over each row's candidates for the first position, each row's greedy order): as
    `inverse_gap.first_position` and `inverse_gap.greedy` (ties by candidate order, padding last)."""
    greedy = np.argsort(-table.scores, axis=1, kind="stable")
    best = greedy[:, :1]
    gap = np.take_along_axis(table.scores, best, axis=1) - np.where(table.valid, table.scores, 0.0)
    p = np.where(table.valid, 1.0 / (table.n[:, None] + strategy.gamma * gap), 0.0)
    np.put_along_axis(p, best, 0.0, axis=1)
    np.put_along_axis(p, best, 1.0 - p.sum(axis=1, keepdims=True), axis=1)
    return p, greedy


def _places(order: np.ndarray) -> np.ndarray:
    """place[r, order[r, t]] = t."""
    place = np.empty_like(order)
    np.put_along_axis(place, order, np.broadcast_to(np.arange(order.shape[1]), order.shape), axis=1)
    return place


_Mixture = tuple[Callable[[Sequence[Candidates]], np.ndarray], Callable[[np.ndarray], np.ndarray]]


def _joined_scores(rows: Sequence[Candidates]) -> np.ndarray:
    return np.concatenate([row.scores for row in rows])


def _greedy_mixture(strategy: Strategy) -> _Mixture | None:
    """For a strategy that shows the greedy ranking of some scores, or else a uniformly random one
    (ε-greedy; LinUCB; either under a floor): (the rows' scores it ranks by, concatenated; P(uniform)
    for n candidates). None for the others."""
    if isinstance(strategy, EpsilonGreedy):
        epsilon = strategy.epsilon
        return _joined_scores, (lambda n: np.full(n.shape, epsilon))
    if isinstance(strategy, LinUCB):
        return (lambda rows: strategy.ucb(_joined(rows))), (lambda n: np.zeros(n.shape))
    if isinstance(strategy, Floored):
        inner = _greedy_mixture(strategy.inner)
        if inner is None:
            return None
        key, share = inner
        floor = strategy.floor
        # (1 − λ)·[(1 − ε)·greedy + ε·uniform] + λ·uniform, λ = min(1, n·floor)
        return key, (lambda n: 1.0 - (1.0 - np.minimum(1.0, n * floor)) * (1.0 - share(n)))
    return None


def _joined(rows: Sequence[Candidates]) -> Candidates:
    """All rows as one candidate set (LinUCB's per-item terms read the ids)."""
    return Candidates(
        tuple(i for row in rows for i in row.ids),
        _joined_scores(rows),
        None if rows[0].features is None else np.concatenate([row.features for row in rows]),  # type: ignore[misc]
    )


def _rank_mixture(
    table: Table, mixture: _Mixture, kept: np.ndarray, shown: int, rng: np.random.Generator
) -> RowRankings:
    key, share = mixture
    rows, valid, n = table.rows, table.valid, table.n
    width = valid.shape[1]
    ranked_by = np.full((len(rows), width), -np.inf)
    ranked_by[valid] = key(rows)
    # greedy rankings with ties broken uniformly at random (padding sorts last)
    greedy = np.lexsort((rng.random((len(rows), width)) + ~valid, -ranked_by), axis=1)
    ranked = np.take_along_axis(ranked_by, greedy, axis=1)
    # tie groups of the sorted scores: each sorted position's group, its first position and size
    positions = np.arange(width)
    starts = np.ones_like(valid)
    starts[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    group = np.cumsum(starts, axis=1)
    first = np.maximum.accumulate(np.where(starts, positions, 0), axis=1)
    ends = np.ones_like(valid)
    ends[:, :-1] = starts[:, 1:]
    last = np.minimum.accumulate(np.where(ends, positions, width)[:, ::-1], axis=1)[:, ::-1]
    size = last - first + 1
    u = share(n)
    explore = rng.random(len(rows)) < u
    orders = greedy[:, :shown].copy()
    if explore.any():
        orders[explore] = _uniform_orders(valid[explore], shown, rng)
    sorted_at = _places(greedy)  # each candidate's position in its row's greedy order
    # G(i, j): the shown candidate belongs to the tie group sorted to position j
    in_group = np.take_along_axis(group, np.take_along_axis(sorted_at, orders, axis=1), axis=1) == group[:, :shown]
    propensities = (1.0 - u)[:, None] * in_group / size[:, :shown] + (u / np.maximum(n, 1))[:, None]
    showing = positions[:shown] < kept[:, None]
    uniform = np.where(showing, 1.0 / np.maximum(n[:, None] - positions[:shown], 1), 1.0).prod(axis=1)
    greedy_probability = np.where(
        np.where(showing, in_group, True).all(axis=1),
        np.where(showing, 1.0 / (size[:, :shown] - (positions[:shown] - first[:, :shown])), 1.0).prod(axis=1),
        0.0,
    )
    ranking = (1.0 - u) * greedy_probability + u * uniform
    return RowRankings(orders, propensities, ranking, kept)
