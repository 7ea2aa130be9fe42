"""SquareCB's inverse-gap weighting (Foster & Rakhlin, ICML 2020) for a ranking, in closed form.

The first position is drawn by inverse-gap weighting over the reward model's scores ŷ: every
candidate a other than the best a* has p(a) = 1 / (n + γ·(ŷ* − ŷ_a)), and a* takes the rest; the
remaining positions are filled greedily (descending score, ties by candidate order). So with g the
greedy order and r(i) candidate i's place in it:

    P(i at 0) = p_i
    P(i at j ≥ 1) = [r(i) = j] · Σ_{t: r(t) < r(i)} p_t + [r(i) = j − 1] · Σ_{t: r(t) > r(i)} p_t

(i keeps its greedy place when the first position took someone above it, and moves one place
down when it took someone below), and
P(ranking o) = p_{o_0} when o_1.. is g without o_0, else 0. The greedy lower positions explore
nothing by themselves: pair SquareCB with a propensity floor (`TASTEMAKER_PROPENSITY_FLOOR`) for
support at every position.
"""

from __future__ import annotations

import numpy as np


def check_gamma(gamma: float) -> None:
    if not (np.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"`gamma` must be a finite number >= 0, got {gamma}")


def greedy(scores: np.ndarray) -> np.ndarray:
    """Candidate indices by descending score, ties by candidate order."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def first_position(scores: np.ndarray, gamma: float) -> np.ndarray:
    """p over the candidates for the first position (inverse-gap weighting)."""
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    if n == 0:
        return np.zeros(0)
    best = int(greedy(scores)[0])
    p = 1.0 / (n + gamma * (scores[best] - scores))
    p[best] = 0.0
    p[best] = 1.0 - p.sum()
    return p


def marginals(scores: np.ndarray, k: int, gamma: float) -> np.ndarray:
    """(n, min(k, n)): P(candidate i at position j)."""
    n = len(scores)
    k = min(k, n)
    out = np.zeros((n, k))
    if k == 0:
        return out
    p = first_position(scores, gamma)
    order = greedy(scores)
    place = np.empty(n, dtype=np.intp)
    place[order] = np.arange(n)
    in_order = p[order]
    above = np.concatenate([[0.0], np.cumsum(in_order)[:-1]])[place]  # Σ p over those ranked above i
    below = 1.0 - above - p  # Σ p over those ranked below i
    out[:, 0] = p
    rows = np.arange(n)
    # the first position took someone ranked above i: i keeps its greedy place (≥ 1 then)
    keep = (place >= 1) & (place < k)
    out[rows[keep], place[keep]] += above[keep]
    # … or someone ranked below i: every one above i stays ahead, so i moves one place down
    lower = place + 1
    keep = lower < k
    out[rows[keep], lower[keep]] += below[keep]
    return out


def ranking_probability(scores: np.ndarray, order: np.ndarray, gamma: float) -> float:
    order = np.asarray(order, dtype=np.intp)
    if len(order) == 0:
        return 1.0
    rest = [int(i) for i in greedy(scores) if i != order[0]][: len(order) - 1]
    if list(order[1:]) != rest:
        return 0.0
    return float(first_position(scores, gamma)[order[0]])


def sample_order(scores: np.ndarray, k: int, gamma: float, rng: np.random.Generator) -> np.ndarray:
    n = len(scores)
    k = min(k, n)
    if k == 0:
        return np.zeros(0, dtype=np.intp)
    p = first_position(scores, gamma)
    first = int(rng.choice(n, p=p / p.sum()))
    rest = [int(i) for i in greedy(scores) if i != first][: k - 1]
    return np.array([first, *rest], dtype=np.intp)
