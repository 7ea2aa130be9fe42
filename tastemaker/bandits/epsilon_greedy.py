"""ε-greedy ranking with exact, closed-form propensities.

With probability 1-ε the policy shows the greedy ranking (candidates sorted by score,
ties broken by candidate order); with probability ε it shows a uniformly random
ranking of `k` of the `n` candidates. Hence, exactly:

    P(item i at position j) = (1-ε)·1[greedy[j] = i] + ε/n
    P(ranking σ)            = (1-ε)·1[σ = greedy[:k]] + ε·(n-k)!/n!
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ranking:
    """A sampled ranking: `order[j]` is the candidate index shown at position j."""

    order: np.ndarray  # shape (k,), int
    propensities: np.ndarray  # shape (k,): P(order[j] at position j)
    ranking_propensity: float  # P(the whole ranking)
    explored: bool


@dataclass(frozen=True)
class EpsilonGreedyRanker:
    epsilon: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"`epsilon` must be in [0, 1], got {self.epsilon}")

    @property
    def strategy(self) -> str:
        return "epsilon-greedy"

    @staticmethod
    def greedy_order(scores: np.ndarray) -> np.ndarray:
        """Candidate indices by descending score; a stable sort keeps ties in candidate order."""
        return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")

    def marginals(self, scores: np.ndarray, k: int) -> np.ndarray:
        """P(candidate i at position j), shape (n, k)."""
        n = len(scores)
        k = min(k, n)
        probs = np.full((n, k), self.epsilon / n if n else 0.0)
        greedy = self.greedy_order(scores)[:k]
        probs[greedy, np.arange(k)] += 1.0 - self.epsilon
        return probs

    def ranking_probability(self, scores: np.ndarray, order: np.ndarray) -> float:
        """P(the policy shows exactly `order`), for an `order` of k distinct candidates."""
        n, k = len(scores), len(order)
        uniform = float(np.prod(1.0 / np.arange(n, n - k, -1, dtype=np.float64))) if k else 1.0
        is_greedy = bool(np.array_equal(self.greedy_order(scores)[:k], order))
        return (1.0 - self.epsilon) * is_greedy + self.epsilon * uniform

    def sample(self, scores: np.ndarray, k: int, rng: np.random.Generator) -> Ranking:
        n = len(scores)
        k = min(k, n)
        explored = bool(rng.random() < self.epsilon)
        order = rng.permutation(n)[:k] if explored else self.greedy_order(scores)[:k]
        marginals = self.marginals(scores, k)
        return Ranking(
            order=order,
            propensities=marginals[order, np.arange(k)],
            ranking_propensity=self.ranking_probability(scores, order),
            explored=explored,
        )
