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

import numpy as np


def weights(scores: np.ndarray, temperature: float) -> np.ndarray:
    """exp(s_i / T), scaled so the largest is 1."""
    z = np.asarray(scores, dtype=np.float64) / temperature
    return np.exp(z - z.max()) if z.size else z


def ranking_probability(weights: np.ndarray, order: np.ndarray) -> float:
    """P(ranking σ) = Π_j w_σj / Σ_{i not in σ_<j} w_i."""
    chosen = weights[np.asarray(order, dtype=int)]
    remaining = weights.sum() - np.concatenate(([0.0], np.cumsum(chosen)[:-1]))
    return float(np.prod(chosen / remaining))


def sample_order(weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """A Plackett–Luce ranking of k (Gumbel top-k)."""
    keys = np.log(np.maximum(weights, 1e-300)) + rng.gumbel(size=len(weights))
    return np.argsort(-keys)[: min(k, len(weights))]


def is_enumerated(n: int, k: int, exact_limit: int) -> bool:
    return math.perm(n, min(k, n)) <= exact_limit


def draws_needed(weights: np.ndarray, k: int, n_samples: int, min_draws: int) -> int:
    """Monte-Carlo draws that keep the standard error within 0.5/√n_samples (module docstring)."""
    ordered = np.sort(np.asarray(weights, dtype=np.float64))[::-1]
    rest = ordered.sum() - ordered[: max(k - 1, 0)].sum()
    bound = 1.0 if rest <= 0 else min(1.0, float(ordered[0] / rest))
    return max(min_draws, min(n_samples, int(math.ceil(n_samples * bound**2))))


def marginals(
    weights: np.ndarray, k: int, *, exact_limit: int, n_samples: int, seed: int, min_draws: int
) -> np.ndarray:
    """P(candidate i at position j), shape (n, min(k, n)): enumerated while there are at most
    `exact_limit` rankings, else the Rao–Blackwellised Monte-Carlo estimate. Repeated weight vectors
    are answered from a cache."""
    weights = np.asarray(weights, dtype=np.float64)
    k = min(k, len(weights))
    return _cached(weights.tobytes(), k, exact_limit, n_samples, seed, min_draws).copy()


@functools.lru_cache(maxsize=4096)
def _cached(weights: bytes, k: int, exact_limit: int, n_samples: int, seed: int, min_draws: int) -> np.ndarray:
    return compute_marginals(np.frombuffer(weights, dtype=np.float64), k, exact_limit, n_samples, seed, min_draws)


def compute_marginals(
    weights: np.ndarray, k: int, exact_limit: int, n_samples: int, seed: int, min_draws: int
) -> np.ndarray:
    """`marginals` without the cache."""
    n = len(weights)
    k = min(k, n)
    out = np.zeros((n, k))
    if k == 0:
        return out
    if is_enumerated(n, k, exact_limit):
        orders = np.array(list(itertools.permutations(range(n), k)), dtype=int)
        chosen = weights[orders]
        remaining = weights.sum() - np.concatenate(
            (np.zeros((len(orders), 1)), np.cumsum(chosen, axis=1)[:, :-1]), axis=1
        )
        probability = np.prod(chosen / remaining, axis=1)
        for j in range(k):
            np.add.at(out[:, j], orders[:, j], probability)
        return out
    rng = np.random.default_rng(seed)
    draws = draws_needed(weights, k, n_samples, min_draws)
    keys = np.log(np.maximum(weights, 1e-300)) + rng.gumbel(size=(draws, n))
    top = np.argsort(-keys, axis=1)[:, :k]
    if draws >= n_samples:  # no saving: the plain frequencies are cheaper to count
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
