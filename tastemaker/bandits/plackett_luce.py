"""Softmax (Boltzmann) exploration for rankings: Plackett–Luce sampling without replacement.

Each position takes a remaining candidate with probability ∝ exp(score / T). Hence, exactly,

    P(ranking σ) = Π_j exp(s_σj / T) / Σ_{i not in σ_<j} exp(s_i / T),

and P(candidate i at position j) is the sum of that over the rankings with i at j. That sum is
enumerated exactly while there are at most `exact_limit` rankings of k from n; beyond, it is a
Monte-Carlo estimate with a fixed seed whose standard error is at most 0.5/√n_samples (0.0035 at
the default 20,000) — stated in `marginals_error`.

The estimate is Rao–Blackwellised: from each Gumbel-top-k draw it takes, for every position j,
the exact probability that i comes next given the draw's first j−1 candidates,
1[i not among them]·w_i / (W − their weight). That value lies in [0, m] with
m = max_i w_i / (W − the j−1 largest weights) ≤ 1, so its variance is at most m²/4 and
n_samples·m² draws (`draws_needed`) already keep the standard error within 0.5/√n_samples: a
20-card shelf with no dominant card needs a few hundred draws instead of 20,000. (When m is near
1 all n_samples draws are needed, and their plain frequencies are counted instead.)
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

from tastemaker.bandits.epsilon_greedy import Ranking


@dataclass(frozen=True)
class SoftmaxRanker:
    temperature: float = 1.0
    exact_limit: int = 20_000
    n_samples: int = 20_000
    seed: int = 0
    #: never fewer Monte-Carlo draws than this, however flat the weights
    min_draws: int = 256

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"`temperature` must be positive, got {self.temperature}")

    @property
    def strategy(self) -> str:
        return "softmax"

    def _weights(self, scores: np.ndarray) -> np.ndarray:
        z = np.asarray(scores, dtype=np.float64) / self.temperature
        return np.exp(z - z.max()) if z.size else z

    def ranking_probability(self, scores: np.ndarray, order: np.ndarray) -> float:
        weights = self._weights(scores)
        chosen = weights[np.asarray(order, dtype=int)]
        remaining = weights.sum() - np.concatenate(([0.0], np.cumsum(chosen)[:-1]))
        return float(np.prod(chosen / remaining))

    def n_rankings(self, n: int, k: int) -> int:
        return math.perm(n, min(k, n))

    def marginals_error(self, n: int, k: int) -> float:
        """Upper bound on the standard error of `marginals` (0 when enumerated exactly)."""
        return 0.0 if self.n_rankings(n, k) <= self.exact_limit else 0.5 / math.sqrt(self.n_samples)

    def marginals(self, scores: np.ndarray, k: int) -> np.ndarray:
        """P(candidate i at position j), shape (n, k). Repeated score vectors are answered from a cache."""
        weights = self._weights(scores)
        return _cached_marginals(self, weights.tobytes(), min(k, len(weights))).copy()

    def _marginals(self, weights: np.ndarray, k: int) -> np.ndarray:
        n = len(weights)
        k = min(k, n)
        out = np.zeros((n, k))
        if k == 0:
            return out
        if self.n_rankings(n, k) <= self.exact_limit:
            orders = np.array(list(itertools.permutations(range(n), k)), dtype=int)
            chosen = weights[orders]
            remaining = weights.sum() - np.concatenate(
                (np.zeros((len(orders), 1)), np.cumsum(chosen, axis=1)[:, :-1]), axis=1
            )
            probability = np.prod(chosen / remaining, axis=1)
            for j in range(k):
                np.add.at(out[:, j], orders[:, j], probability)
            return out
        rng = np.random.default_rng(self.seed)
        draws = self.draws_needed(weights, k)
        keys = np.log(np.maximum(weights, 1e-300)) + rng.gumbel(size=(draws, n))
        top = np.argsort(-keys, axis=1)[:, :k]
        if draws >= self.n_samples:  # no saving: the plain frequencies are cheaper to count
            for j in range(k):
                out[:, j] = np.bincount(top[:, j], minlength=n) / draws
            return out
        # the weight of each draw's first j candidates, j = 0 … k−1
        before = np.concatenate((np.zeros((draws, 1)), np.cumsum(weights[top], axis=1)[:, :-1]), axis=1)
        position = np.full((draws, n), k)
        np.put_along_axis(position, top, np.arange(k)[None, :].repeat(draws, axis=0), axis=1)
        # P(i at j | the draw's first j candidates) = w_i / (W − their weight), 0 for those among them
        inverse = 1.0 / np.maximum(weights.sum() - before, 1e-300)  # (draws, k)
        after = (position[:, :, None] >= np.arange(k)[None, None, :]).astype(np.float64)  # (draws, n, k)
        return weights[:, None] * np.einsum("sij,sj->ij", after, inverse) / draws

    def draws_needed(self, weights: np.ndarray, k: int) -> int:
        """Monte-Carlo draws that keep the standard error within 0.5/√n_samples (module docstring)."""
        ordered = np.sort(np.asarray(weights, dtype=np.float64))[::-1]
        rest = ordered.sum() - ordered[: max(k - 1, 0)].sum()
        bound = 1.0 if rest <= 0 else min(1.0, float(ordered[0] / rest))
        return max(self.min_draws, min(self.n_samples, int(math.ceil(self.n_samples * bound**2))))

    def sample(self, scores: np.ndarray, k: int, rng: np.random.Generator) -> Ranking:
        weights = self._weights(scores)
        n = len(weights)
        k = min(k, n)
        keys = np.log(np.maximum(weights, 1e-300)) + rng.gumbel(size=n)
        order = np.argsort(-keys)[:k]
        marginals = self.marginals(scores, k)
        return Ranking(
            order=order,
            propensities=marginals[order, np.arange(k)],
            ranking_propensity=self.ranking_probability(scores, order),
            explored=True,
        )


@functools.lru_cache(maxsize=4096)
def _cached_marginals(ranker: SoftmaxRanker, weights: bytes, k: int) -> np.ndarray:
    return ranker._marginals(np.frombuffer(weights, dtype=np.float64), k)
