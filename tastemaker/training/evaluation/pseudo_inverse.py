r"""The pseudo-inverse slate estimator (Swaminathan et al., "Off-policy evaluation for slate
recommendation", NeurIPS 2017), for one ranking level: a slate puts one of m candidates in each
of k positions, and the reward is assumed additive over (position, item) pairs (no interaction).

With 1_s ∈ {0,1}^{k·m} the indicator of slate s's (position, item) pairs, Γ = E_μ[1_s 1_sᵀ]
the logging policy's pairwise marginals and q_π = E_π[1_s] the target's marginals,

    V̂_PI = (1/n) Σ_i r_i · θ_i,   θ_i = q_πᵀ Γ^† 1_{s_i},

unbiased under additivity when the target's marginals lie in Γ's range (e.g. ε > 0), with far
smaller weights than the whole-slate ratio π(s)/μ(s). Γ is enumerated from the logging strategy's
`ranking_probability` over all m!/(m−k)! rankings, so this suits small candidate sets (it
refuses more than `max_rankings`). Home pages are two-level (shelves, then cards), where Γ spans
shelves × cards; `tastemaker evaluate` does not run this estimator on them.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from tastemaker.bandits.strategies import Candidates, Strategy
from tastemaker.training.evaluation.ope import Estimate


def indicator(order: np.ndarray, m: int) -> np.ndarray:
    """1_s for a ranking: entry j·m + a is 1 when candidate a is at position j."""
    out = np.zeros(len(order) * m)
    out[np.arange(len(order)) * m + np.asarray(order, dtype=int)] = 1.0
    return out


def pairwise_marginals(strategy: Strategy, candidates: Candidates, k: int, max_rankings: int = 50_000) -> np.ndarray:
    """Γ = E_μ[1_s 1_sᵀ], shape (k·m, k·m), by enumerating every ranking of k of the m candidates."""
    m = len(candidates.ids)
    count = math.perm(m, k)
    if count > max_rankings:
        raise ValueError(f"{count} rankings of {k} from {m} candidates: too many to enumerate (max {max_rankings})")
    orders = np.array(list(itertools.permutations(range(m), k)), dtype=int)
    probability = np.array([strategy.ranking_probability(candidates, order) for order in orders])
    cells = np.arange(k) * m + orders  # (count, k) flat indices
    gamma = np.zeros((k * m, k * m))
    for j in range(k):
        for jj in range(k):
            np.add.at(gamma, (cells[:, j], cells[:, jj]), probability)
    return gamma


def weights(gamma: np.ndarray, target_marginals: np.ndarray, indicators: np.ndarray) -> np.ndarray:
    """θ_i = q_πᵀ Γ^† 1_{s_i} for slates logged in one context: indicators (n, k·m), q_π (k·m,)."""
    return indicators @ (np.linalg.pinv(gamma, hermitian=True) @ target_marginals)


@dataclass(frozen=True)
class PseudoInverse:
    alpha: float = 0.05
    name: str = "pi"

    def estimate(self, rewards: np.ndarray, theta: np.ndarray) -> Estimate:
        """rewards: each slate's total reward (n,); theta: its pseudo-inverse weight (n,)."""
        if rewards.shape != theta.shape or rewards.ndim != 1 or not rewards.size:
            raise ValueError(
                f"`rewards` and `theta` must be non-empty and of one shape, got {rewards.shape}, {theta.shape}"
            )
        per_slate = rewards * theta
        value = float(per_slate.mean())
        z = NormalDist().inv_cdf(1 - self.alpha / 2)
        half = z * float(per_slate.std(ddof=1)) / np.sqrt(len(per_slate)) if len(per_slate) > 1 else np.inf
        return Estimate(self.name, value, value - half, value + half, len(per_slate))
