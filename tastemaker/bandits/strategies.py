"""Exploration strategies for one ranking level, behind one interface, each with correct
propensities: P(candidate i at position j) for every candidate and position (`marginals`) and
P(the exact ranking shown) (`ranking_probability`).

- `epsilon-greedy` (closed form) and `softmax` (Plackett–Luce; enumerated, or Monte-Carlo for
  large candidate sets) rank the reward model's scores.
- `linucb` ranks by the upper confidence bound x·θ̂ + α·√(xᵀA⁻¹x) of a linear model (deterministic:
  with a propensity floor, closed form).
- `thompson` ranks by x·θ̃ with θ̃ drawn from the linear model's posterior N(θ̂, v²A⁻¹); its
  propensities are Monte-Carlo estimates from `n_samples` posterior draws seeded by the context,
  so the same context always logs the same propensities, with standard error ≤ 0.5/√n_samples.

`Floored` mixes any strategy with a uniformly random ranking so that every candidate's
probability of every position is at least `floor`: P = (1 − λ)·P_inner + λ·P_uniform, λ = n·floor.
`rank_with_constraints` adds pinned positions (probability 1) and excluded candidates.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from tastemaker.bandits import epsilon_greedy, inverse_gap, plackett_luce


@dataclass(frozen=True)
class Candidates:
    """One ranking level's candidates: the reward model's scores, and features for linear strategies."""

    ids: tuple[str, ...]
    scores: np.ndarray  # (n,)
    features: np.ndarray | None = None  # (n, d)

    def subset(self, keep: np.ndarray) -> Candidates:
        features = None if self.features is None else self.features[keep]
        return Candidates(tuple(self.ids[i] for i in keep), self.scores[keep], features)


@dataclass(frozen=True)
class PropensityInfo:
    """How the propensities were computed, for the decision log."""

    method: str  # closed-form | enumerated | monte-carlo
    samples: int = 0
    error_bound: float = 0.0


class Strategy(Protocol):
    """The one ranking interface: serving, simulation, evaluation and training all draw orders and
    read (item, position) marginals through it. `marginals` is (n, min(k, n)); `sample_order`
    returns candidate indices; `ranking_probability` is P(exactly `order` at positions 0..k−1)."""

    @property
    def name(self) -> str: ...

    def marginals(self, candidates: Candidates, k: int) -> np.ndarray: ...

    def ranking_probability(self, candidates: Candidates, order: np.ndarray) -> float: ...

    def sample_order(self, candidates: Candidates, k: int, rng: np.random.Generator) -> np.ndarray: ...

    def info(self, n: int, k: int) -> PropensityInfo: ...

    def parameters(self) -> dict[str, float]: ...


@dataclass(frozen=True)
class EpsilonGreedy:
    """With probability ε a uniformly random ranking, else the greedy one (`epsilon_greedy`)."""

    epsilon: float = 0.1
    name: str = "epsilon-greedy"

    def __post_init__(self) -> None:
        epsilon_greedy.check_epsilon(self.epsilon)

    def marginals(self, candidates: Candidates, k: int) -> np.ndarray:
        return epsilon_greedy.marginals(candidates.scores, k, self.epsilon)

    def ranking_probability(self, candidates: Candidates, order: np.ndarray) -> float:
        return epsilon_greedy.ranking_probability(candidates.scores, order, self.epsilon)

    def sample_order(self, candidates: Candidates, k: int, rng: np.random.Generator) -> np.ndarray:
        return epsilon_greedy.sample_order(candidates.scores, k, self.epsilon, rng)

    def info(self, n: int, k: int) -> PropensityInfo:
        return PropensityInfo("closed-form")

    def parameters(self) -> dict[str, float]:
        return {"epsilon": self.epsilon}


@dataclass(frozen=True)
class SquareCB:
    """SquareCB: inverse-gap weighting over the reward model's scores for the first position, the
    rest greedy (`inverse_gap`); propensities in closed form. γ trades exploitation for exploration
    (0: uniform first position; large: greedy)."""

    gamma: float = 100.0
    name: str = "squarecb"

    def __post_init__(self) -> None:
        inverse_gap.check_gamma(self.gamma)

    def marginals(self, candidates: Candidates, k: int) -> np.ndarray:
        return inverse_gap.marginals(candidates.scores, k, self.gamma)

    def ranking_probability(self, candidates: Candidates, order: np.ndarray) -> float:
        return inverse_gap.ranking_probability(candidates.scores, order, self.gamma)

    def sample_order(self, candidates: Candidates, k: int, rng: np.random.Generator) -> np.ndarray:
        return inverse_gap.sample_order(candidates.scores, k, self.gamma, rng)

    def info(self, n: int, k: int) -> PropensityInfo:
        return PropensityInfo("closed-form")

    def parameters(self) -> dict[str, float]:
        return {"gamma": self.gamma}


@dataclass(frozen=True)
class Softmax:
    """Plackett–Luce over exp(score / T) (`plackett_luce`): marginals enumerated while there are at
    most `exact_limit` rankings of k, else a Monte-Carlo estimate (fixed `seed`) with standard error
    at most 0.5/√n_samples."""

    temperature: float = 1.0
    name: str = "softmax"
    exact_limit: int = 20_000
    n_samples: int = 20_000
    seed: int = 0
    #: never fewer Monte-Carlo draws than this, however flat the weights
    min_draws: int = 256

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"`temperature` must be positive, got {self.temperature}")

    def weights(self, candidates: Candidates) -> np.ndarray:
        return plackett_luce.weights(candidates.scores, self.temperature)

    def marginals(self, candidates: Candidates, k: int) -> np.ndarray:
        return plackett_luce.marginals(
            self.weights(candidates),
            k,
            exact_limit=self.exact_limit,
            n_samples=self.n_samples,
            seed=self.seed,
            min_draws=self.min_draws,
        )

    def ranking_probability(self, candidates: Candidates, order: np.ndarray) -> float:
        return plackett_luce.ranking_probability(self.weights(candidates), order)

    def sample_order(self, candidates: Candidates, k: int, rng: np.random.Generator) -> np.ndarray:
        return plackett_luce.sample_order(self.weights(candidates), k, rng)

    def marginals_error(self, n: int, k: int) -> float:
        """Upper bound on the standard error of `marginals` (0 when enumerated exactly)."""
        return 0.0 if plackett_luce.is_enumerated(n, k, self.exact_limit) else 0.5 / math.sqrt(self.n_samples)

    def draws_needed(self, candidates: Candidates, k: int) -> int:
        return plackett_luce.draws_needed(self.weights(candidates), k, self.n_samples, self.min_draws)

    def info(self, n: int, k: int) -> PropensityInfo:
        error = self.marginals_error(n, k)
        if error == 0.0:
            return PropensityInfo("enumerated")
        return PropensityInfo("monte-carlo", self.n_samples, error)

    def parameters(self) -> dict[str, float]:
        return {"temperature": self.temperature}


@dataclass
class LinearState:
    """A ridge-regression posterior per level: A = λI + Σ xxᵀ, b = Σ r·x, θ̂ = A⁻¹b (x[0] = 1, the
    intercept), and a term per item that tells candidates with equal features apart: from the item's
    n_i = Σ 1 and s_i = Σ r over its own rows, β̂_i = (s_i − n_i·μ)/(λ_item + n_i), its reward
    above the level's mean μ = b[0]/(A[0,0] − λ), shrunk towards 0, with variance 1/(λ_item + n_i).
    Every serving process sees the same terms: they live with A and b in Redis (`linear_store`).

    With `forget` < 1 each update first discounts the past (A ← λI + γ(A − λI), b ← γb, and each
    item's n_i, s_i by γ), so the model follows drifting tastes; the effective memory is about
    1/(1 − γ) updates."""

    dim: int
    ridge: float = 1.0
    forget: float = 1.0
    item_ridge: float = 1.0
    a: np.ndarray = field(init=False)
    b: np.ndarray = field(init=False)
    #: item id → (n_i, s_i)
    items: dict[str, tuple[float, float]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 < self.forget <= 1.0:
            raise ValueError(f"`forget` must be in (0, 1], got {self.forget}")
        if not self.item_ridge > 0:
            raise ValueError(f"`item_ridge` must be positive, got {self.item_ridge}")
        self.a = self.ridge * np.eye(self.dim)
        self.b = np.zeros(self.dim)

    def theta(self) -> np.ndarray:
        return np.linalg.solve(self.a, self.b)

    def item_terms(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(β̂_i, its variance) for each id; an item never rewarded has (0, 1/λ_item)."""
        if not self.items:
            return np.zeros(len(ids)), np.full(len(ids), 1.0 / self.item_ridge)
        rows = self.a[0, 0] - self.ridge
        mean = self.b[0] / rows if rows > 1e-12 else 0.0
        sums = np.array([self.items.get(i, (0.0, 0.0)) for i in ids], dtype=np.float64).reshape(-1, 2)
        n, total = sums[:, 0], sums[:, 1]
        return (total - n * mean) / (self.item_ridge + n), 1.0 / (self.item_ridge + n)

    def update(self, x: np.ndarray, reward: np.ndarray, ids: Sequence[str] | None = None) -> None:
        """Rank-k update from rows x (k, d) with rewards (k,), and each row's item when given."""
        x = np.atleast_2d(x)
        reward = np.asarray(reward, dtype=np.float64).reshape(-1)
        if self.forget < 1.0:
            prior = self.ridge * np.eye(self.dim)
            self.a = prior + self.forget * (self.a - prior)
            self.b = self.forget * self.b
            self.items = {i: (n * self.forget, s * self.forget) for i, (n, s) in self.items.items()}
        self.a += x.T @ x
        self.b += x.T @ reward
        for item, r in zip(ids or (), reward.tolist(), strict=False):
            n, s = self.items.get(item, (0.0, 0.0))
            self.items[item] = (n + 1.0, s + r)


def _features(candidates: Candidates, dim: int) -> np.ndarray:
    if candidates.features is None or candidates.features.shape != (len(candidates.ids), dim):
        raise ValueError(f"linear strategies need candidate features of shape (n, {dim})")
    return candidates.features


@dataclass(frozen=True)
class LinUCB:
    state: LinearState
    alpha: float = 1.0
    name: str = "linucb"

    def ucb(self, candidates: Candidates) -> np.ndarray:
        """x·θ̂ + β̂_i + α·√(xᵀA⁻¹x + Var β_i)."""
        x = _features(candidates, self.state.dim)
        inverse = np.linalg.inv(self.state.a)
        item_mean, item_variance = self.state.item_terms(candidates.ids)
        width = np.sqrt(np.einsum("nd,de,ne->n", x, inverse, x) + item_variance)
        return x @ self.state.theta() + item_mean + self.alpha * width

    def marginals(self, candidates: Candidates, k: int) -> np.ndarray:
        return epsilon_greedy.greedy_marginals(self.ucb(candidates), k)

    def ranking_probability(self, candidates: Candidates, order: np.ndarray) -> float:
        return epsilon_greedy.greedy_ranking_probability(self.ucb(candidates), order)

    def sample_order(self, candidates: Candidates, k: int, rng: np.random.Generator) -> np.ndarray:
        return epsilon_greedy.sample_greedy(self.ucb(candidates), k, rng)

    def info(self, n: int, k: int) -> PropensityInfo:
        return PropensityInfo("closed-form")

    def parameters(self) -> dict[str, float]:
        return {"alpha": self.alpha}


@dataclass(frozen=True)
class Draws:
    """A context's posterior draws and what they imply: each draw's top-k order (read-only),
    P(candidate i at position j) (read-only), and P(ranking) by the ranking's bytes."""

    orders: np.ndarray
    marginals: np.ndarray
    rankings: dict[bytes, float]


@dataclass(frozen=True)
class Thompson:
    state: LinearState
    scale: float = 1.0  # v: posterior scale
    n_samples: int = 4000
    name: str = "thompson"
    _cache: dict[tuple[int, int], Draws] = field(default_factory=dict, compare=False, repr=False)

    def _draw_scores(self, candidates: Candidates, count: int, rng: np.random.Generator) -> np.ndarray:
        x = _features(candidates, self.state.dim)
        covariance = self.scale**2 * np.linalg.inv(self.state.a)
        thetas = rng.multivariate_normal(self.state.theta(), covariance, size=count, method="cholesky")
        item_mean, item_variance = self.state.item_terms(candidates.ids)
        items = item_mean + self.scale * np.sqrt(item_variance) * rng.standard_normal((count, len(candidates.ids)))
        return thetas @ x.T + items  # (count, n)

    def _seed(self, candidates: Candidates) -> int:
        x = _features(candidates, self.state.dim)
        item_mean, item_variance = self.state.item_terms(candidates.ids)
        context = (x, self.state.a, self.state.b, item_mean, item_variance)
        digest = hashlib.blake2b(b"".join(part.tobytes() for part in context), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def draws(self, candidates: Candidates, k: int) -> Draws:
        """The top-k of `n_samples` posterior draws, seeded by the context, and what they imply
        (cached per context: a context's propensities are computed once). A page shows one of these
        draws, picked uniformly, so every logged propensity is the exact probability of what was
        shown (at least 1/n_samples), never a Monte-Carlo estimate of 0 for a rare order."""
        seed = self._seed(candidates)
        key = (seed, k)
        if key not in self._cache:
            if len(self._cache) > 256:
                self._cache.clear()
            rng = np.random.default_rng(seed)
            scores = self._draw_scores(candidates, self.n_samples, rng)
            # each draw's ranking, ties (candidates with equal features) broken uniformly at random
            orders = np.lexsort((rng.random(scores.shape), -scores), axis=1)[:, :k]
            n = len(candidates.ids)
            marginals = np.zeros((n, orders.shape[1]))
            for j in range(orders.shape[1]):
                marginals[:, j] = np.bincount(orders[:, j], minlength=n) / self.n_samples
            marginals.flags.writeable = False
            rankings, counts = np.unique(orders, axis=0, return_counts=True)
            kept = orders.astype(np.int32)  # a compact copy, not a view holding every draw's full order
            kept.flags.writeable = False
            self._cache[key] = Draws(
                kept, marginals, {r.tobytes(): c / self.n_samples for r, c in zip(rankings, counts, strict=True)}
            )
        return self._cache[key]

    def marginals(self, candidates: Candidates, k: int) -> np.ndarray:
        return self.draws(candidates, min(k, len(candidates.ids))).marginals

    def ranking_probability(self, candidates: Candidates, order: np.ndarray) -> float:
        draws = self.draws(candidates, len(order))
        return draws.rankings.get(np.asarray(order, dtype=np.intp).tobytes(), 0.0)

    def sample_order(self, candidates: Candidates, k: int, rng: np.random.Generator) -> np.ndarray:
        orders = self.draws(candidates, min(k, len(candidates.ids))).orders
        return orders[rng.integers(len(orders))].astype(np.intp)

    def info(self, n: int, k: int) -> PropensityInfo:
        return PropensityInfo("monte-carlo", self.n_samples, 0.5 / math.sqrt(self.n_samples))

    def parameters(self) -> dict[str, float]:
        return {"scale": self.scale}


@dataclass(frozen=True)
class Floored:
    """With probability λ = min(1, n·floor) a uniformly random ranking, else the inner strategy's."""

    inner: Strategy
    floor: float

    @property
    def name(self) -> str:
        return self.inner.name

    def _mix(self, n: int) -> float:
        return min(1.0, n * self.floor)

    def marginals(self, candidates: Candidates, k: int) -> np.ndarray:
        n = len(candidates.ids)
        lam = self._mix(n)
        return (1 - lam) * self.inner.marginals(candidates, k) + lam / n

    def ranking_probability(self, candidates: Candidates, order: np.ndarray) -> float:
        n, k = len(candidates.ids), len(order)
        lam = self._mix(n)
        uniform = 1.0 / math.perm(n, k)
        return (1 - lam) * self.inner.ranking_probability(candidates, order) + lam * uniform

    def sample_order(self, candidates: Candidates, k: int, rng: np.random.Generator) -> np.ndarray:
        n = len(candidates.ids)
        if rng.random() < self._mix(n):
            return rng.permutation(n)[: min(k, n)]
        return self.inner.sample_order(candidates, k, rng)

    def info(self, n: int, k: int) -> PropensityInfo:
        inner = self.inner.info(n, k)
        return PropensityInfo(inner.method, inner.samples, (1 - self._mix(n)) * inner.error_bound)

    def parameters(self) -> dict[str, float]:
        return self.inner.parameters()


def with_floor(strategy: Strategy, floor: float) -> Strategy:
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"`floor` must be in [0, 1], got {floor}")
    return Floored(strategy, floor) if floor > 0 else strategy


#: every strategy by name, with the parameter each takes (as `parameters()` logs it) and its default
STRATEGY_PARAMETERS: dict[str, tuple[str, float]] = {
    "epsilon-greedy": ("epsilon", 0.1),
    "softmax": ("temperature", 1.0),
    "linucb": ("alpha", 1.0),
    "thompson": ("scale", 1.0),
    "squarecb": ("gamma", 100.0),
}
#: the strategies that rank with a learned linear posterior (their propensities depend on its state)
LINEAR = ("linucb", "thompson")


def strategy_from(name: str, parameters: Mapping[str, float], state: LinearState | None = None) -> Strategy:
    """The strategy `name` with its parameter from `parameters` (default when absent): the one
    place a name becomes a strategy (serving's configuration, the logging policy re-run from a log).
    Linear strategies need the posterior `state`."""
    if name not in STRATEGY_PARAMETERS:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGY_PARAMETERS)}")
    key, default = STRATEGY_PARAMETERS[name]
    value = float(parameters.get(key, default))
    if name == "epsilon-greedy":
        return EpsilonGreedy(value)
    if name == "softmax":
        return Softmax(value)
    if name == "squarecb":
        return SquareCB(value)
    if state is None:
        raise ValueError(f"strategy {name!r} ranks with a linear posterior: pass its state")
    return LinUCB(state, alpha=value) if name == "linucb" else Thompson(state, scale=value)


@dataclass(frozen=True)
class Placement:
    """A ranking under constraints: `ids[j]` shown at `positions[j]` with `propensities[j]`."""

    ids: list[str]
    positions: list[int]
    propensities: np.ndarray
    ranking_probability: float  # P(the free positions exactly as shown); pinned ones are certain
    scores: dict[str, float]
    #: (position shown, id) of the pinned ids that were placed
    pinned: tuple[tuple[int, str], ...] = ()


def rank_with_constraints(
    strategy: Strategy,
    candidates: Candidates,
    k: int,
    rng: np.random.Generator,
    pinned: Mapping[int, str] | None = None,
    excluded: frozenset[str] = frozenset(),
) -> Placement:
    """Up to k positions: pinned ids at their positions (probability 1), excluded ids never; the
    free positions, in order, filled by the strategy from the remaining candidates. A pinned id
    that is not a candidate, or pinned at k or beyond, is ignored.

    The positions returned are the rows actually shown, 0, 1, 2, ...: when the free candidates run
    out before a pinned position, the pinned ids below it move up (a shelf pinned at row 9 of a
    page that has 8 rows is shown, and logged, at row 7, still with probability 1: where it lands
    depends only on how many candidates there are). Work and memory follow the candidates, never k."""
    pinned = {p: i for p, i in (pinned or {}).items() if 0 <= p < k and i in candidates.ids and i not in excluded}
    pinned_ids = set(pinned.values())
    keep = np.array(
        [i for i, cid in enumerate(candidates.ids) if cid not in excluded and cid not in pinned_ids], dtype=int
    )
    free = candidates.subset(keep)
    n_free = min(k - len(pinned), len(free.ids))
    # the first n_free positions that are not pinned all lie below n_free + len(pinned)
    free_slots = [p for p in range(n_free + len(pinned)) if p not in pinned][:n_free]
    order = strategy.sample_order(free, n_free, rng) if n_free else np.zeros(0, dtype=int)
    marginals = strategy.marginals(free, n_free) if n_free else np.zeros((0, 0))
    placed = {p: (i, 1.0) for p, i in pinned.items()}
    for slot, (position, index) in enumerate(zip(free_slots, order, strict=True)):
        placed[position] = (free.ids[index], float(marginals[index, slot]))
    requested = sorted(placed)
    score_of = dict(zip(candidates.ids, candidates.scores.tolist(), strict=True))
    ids = [placed[p][0] for p in requested]
    return Placement(
        ids=ids,
        positions=list(range(len(requested))),
        propensities=np.array([placed[p][1] for p in requested]),
        ranking_probability=strategy.ranking_probability(free, order) if n_free else 1.0,
        scores={i: score_of[i] for i in ids},
        pinned=tuple((row, ids[row]) for row, p in enumerate(requested) if p in pinned),
    )
