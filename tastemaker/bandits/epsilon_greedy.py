"""ε-greedy ranking with exact, closed-form propensities.

With probability 1-ε the policy shows a greedy ranking (candidates sorted by score, ties
broken uniformly at random); with probability ε it shows a uniformly random ranking of `k` of
the `n` candidates. Hence, exactly:

    P(item i at position j) = (1-ε)·G(i, j) + ε/n
    P(ranking σ)            = (1-ε)·G(σ) + ε·(n-k)!/n!

where G(i, j) = 1/g when i belongs to the g candidates tied at the score sorted to position j
(else 0), and G(σ) = Π_j 1/(candidates of position j's tie group not yet shown above j) when σ is
a greedy ranking (else 0). Without ties G is the indicator of the one greedy ranking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TieGroups:
    """Candidates sorted by descending score, grouped by equal score: `order[p]` is the candidate
    sorted to position p (ties in candidate order), `group[p]` its group's number, and `first[p]`,
    `size[p]` where that group starts and how many it holds."""

    order: np.ndarray
    group: np.ndarray
    first: np.ndarray
    size: np.ndarray

    @classmethod
    def of(cls, scores: np.ndarray) -> TieGroups:
        scores = np.asarray(scores, dtype=np.float64)
        order = np.argsort(-scores, kind="stable")
        ranked = scores[order]
        starts = np.ones(len(ranked), dtype=bool)
        starts[1:] = ranked[1:] != ranked[:-1]
        group = np.cumsum(starts) - 1
        first_of_group = np.flatnonzero(starts)
        size_of_group = np.diff(np.append(first_of_group, len(ranked)))
        return cls(order, group, first_of_group[group], size_of_group[group])


def greedy_marginals(scores: np.ndarray, k: int) -> np.ndarray:
    """G(i, j): P(candidate i at position j) of the greedy ranking with uniform tie-breaking, (n, k)."""
    n = len(scores)
    k = min(k, n)
    ties = TieGroups.of(scores)
    probs = np.zeros((n, k))
    probs[ties.order] = (ties.group[:, None] == ties.group[None, :k]) / ties.size[:, None]
    return probs


def greedy_ranking_probability(scores: np.ndarray, order: np.ndarray) -> float:
    """G(σ): P(the greedy ranking with uniform tie-breaking shows exactly `order`)."""
    k = len(order)
    if k == 0:
        return 1.0
    scores = np.asarray(scores, dtype=np.float64)
    ties = TieGroups.of(scores)
    if not np.array_equal(scores[np.asarray(order)], scores[ties.order[:k]]):
        return 0.0  # some position holds a candidate of another score than the greedy one there
    positions = np.arange(k)
    return float(np.prod(1.0 / (ties.size[:k] - (positions - ties.first[:k]))))


def sample_greedy(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """A greedy ranking of k candidates, ties broken uniformly at random."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.lexsort((rng.random(len(scores)), -scores))[: min(k, len(scores))]


def greedy_order(scores: np.ndarray) -> np.ndarray:
    """Candidate indices by descending score, ties in candidate order (one of the greedy rankings)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def check_epsilon(epsilon: float) -> None:
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"`epsilon` must be in [0, 1], got {epsilon}")


def marginals(scores: np.ndarray, k: int, epsilon: float) -> np.ndarray:
    """P(candidate i at position j) = (1-ε)·G(i, j) + ε/n, shape (n, min(k, n))."""
    n = len(scores)
    k = min(k, n)
    return (1.0 - epsilon) * greedy_marginals(scores, k) + (epsilon / n if n else 0.0)


def ranking_probability(scores: np.ndarray, order: np.ndarray, epsilon: float) -> float:
    """P(the policy shows exactly `order`) = (1-ε)·G(σ) + ε·(n-k)!/n!, for k distinct candidates."""
    n, k = len(scores), len(order)
    uniform = float(np.prod(1.0 / np.arange(n, n - k, -1, dtype=np.float64))) if k else 1.0
    greedy = greedy_ranking_probability(scores, order) if epsilon < 1.0 else 0.0
    return (1.0 - epsilon) * greedy + epsilon * uniform


def sample_order(scores: np.ndarray, k: int, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """With probability ε a uniformly random ranking of k, else a greedy one (ties at random)."""
    n = len(scores)
    if rng.random() < epsilon:
        return rng.permutation(n)[: min(k, n)]
    return sample_greedy(scores, k, rng)
