r"""Off-policy estimators for slotted logs (each decision shows items in slots / positions),
under the position-based independence assumption (Li et al., KDD 2018), with 95% intervals.

Notation, for decision i and slot j shown in it: reward r_ij, logged propensity π₀(a_ij|x_i, j),
target propensity π(a_ij|x_i, j), importance weight w_ij = π/π₀, reward model q̂(x, a, j), and
q̄_ij = Σ_a π(a|x_i, j)·q̂(x_i, a, j), the model's expected reward of the target in slot j.
Each estimator returns the value and every decision's influence, whose standard error gives
the normal-approximation interval; `bootstrap_interval` resamples decisions instead.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SlotData:
    """Arrays of shape (n_decisions, n_slots); `mask` marks the slots that were shown.

    `q_logged` (optional, same shape) is q̂(x_i, a_ij, j) for the logged items: needed by DM/DR."""

    rewards: np.ndarray
    logged_propensity: np.ndarray
    mask: np.ndarray
    q_logged: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not (self.rewards.shape == self.logged_propensity.shape == self.mask.shape) or self.rewards.ndim != 2:
            raise ValueError(
                "`rewards`, `logged_propensity` and `mask` must share one (n_decisions, n_slots) shape, got "
                f"{self.rewards.shape}, {self.logged_propensity.shape}, {self.mask.shape}"
            )
        if self.q_logged is not None and self.q_logged.shape != self.rewards.shape:
            raise ValueError(f"`q_logged` must have shape {self.rewards.shape}, got {self.q_logged.shape}")
        shown = self.logged_propensity[self.mask]
        if shown.size and (not np.all(shown > 0) or not np.all(shown <= 1)):
            raise ValueError("`logged_propensity` of every shown slot must be in (0, 1]")

    @property
    def n_decisions(self) -> int:
        return int(self.rewards.shape[0])

    def subset(self, rows: np.ndarray) -> SlotData:
        q = None if self.q_logged is None else self.q_logged[rows]
        return SlotData(self.rewards[rows], self.logged_propensity[rows], self.mask[rows], q)


@dataclass(frozen=True)
class Estimate:
    estimator: str
    value: float
    lower: float
    upper: float
    n_decisions: int

    def as_dict(self) -> dict[str, float | int | str]:
        return {"value": self.value, "lower": self.lower, "upper": self.upper, "n_decisions": self.n_decisions}


@dataclass(frozen=True)
class _Inputs:
    weights: np.ndarray  # 0 where not shown
    rewards: np.ndarray  # 0 where not shown
    mask: np.ndarray
    q_logged: np.ndarray  # 0 where not shown or not given
    q_target: np.ndarray  # 0 where not shown or not given


def _self_normalised(weights: np.ndarray, values: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
    """Σ_j (n_j/n) · Σ_i w_ij y_ij / Σ_i w_ij, and its delta-method influence per decision."""
    slot_share = mask.mean(axis=0)  # n_j / n
    mean_weight = weights.mean(axis=0)  # w̄_j over all n decisions
    safe = np.where(mean_weight > 0, mean_weight, 1.0)
    slot_value = (weights * values).mean(axis=0) / safe  # 0 where no decision supports slot j
    value = float((slot_share * slot_value).sum())
    influence = (slot_share * (weights * values - slot_value * weights) / safe).sum(axis=1) + value
    return value, influence


@dataclass(frozen=True)
class OffPolicyEstimator(ABC):
    #: 1 - confidence level of the interval.
    alpha: float = 0.05
    #: whether the estimator needs a reward model (q_logged and q_target)
    needs_reward_model = False

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"`alpha` must be in (0, 1), got {self.alpha}")

    @property
    @abstractmethod
    def name(self) -> str: ...

    def estimate(self, data: SlotData, target_propensity: np.ndarray, q_target: np.ndarray | None = None) -> Estimate:
        """target_propensity: (n_decisions, n_slots), π(a_ij|x_i, j) of each logged item;
        q_target: (n_decisions, n_slots), q̄_ij, required by the reward-model estimators."""
        inputs = self._inputs(data, target_propensity, q_target)
        value, influence = self._estimate(inputs)
        z = NormalDist().inv_cdf(1 - self.alpha / 2)
        half = z * float(np.std(influence, ddof=1)) / np.sqrt(len(influence)) if len(influence) > 1 else np.inf
        return Estimate(self.name, float(value), float(value - half), float(value + half), data.n_decisions)

    def point(self, data: SlotData, target_propensity: np.ndarray, q_target: np.ndarray | None = None) -> float:
        return self._estimate(self._inputs(data, target_propensity, q_target))[0]

    def _inputs(self, data: SlotData, target_propensity: np.ndarray, q_target: np.ndarray | None) -> _Inputs:
        shape = data.rewards.shape
        if target_propensity.shape != shape:
            raise ValueError(f"`target_propensity` must have shape {shape}, got {target_propensity.shape}")
        shown = target_propensity[data.mask]
        if shown.size and (np.any(shown < 0) or np.any(shown > 1)):
            raise ValueError("`target_propensity` must be within [0, 1]")
        if data.n_decisions == 0:
            raise ValueError("no decisions to estimate from")
        if self.needs_reward_model:
            if data.q_logged is None or q_target is None:
                raise ValueError(f"{self.name} needs a reward model: give `q_logged` in the data and `q_target`")
            if q_target.shape != shape:
                raise ValueError(f"`q_target` must have shape {shape}, got {q_target.shape}")
        mask = data.mask
        zeros = np.zeros(shape)
        return _Inputs(
            weights=np.where(mask, target_propensity / np.where(mask, data.logged_propensity, 1.0), 0.0),
            rewards=np.where(mask, data.rewards, 0.0),
            mask=mask,
            q_logged=zeros if data.q_logged is None else np.where(mask, data.q_logged, 0.0),
            q_target=zeros if q_target is None else np.where(mask, q_target, 0.0),
        )

    @abstractmethod
    def _estimate(self, x: _Inputs) -> tuple[float, np.ndarray]:
        """The math only: the estimate and each decision's influence."""


@dataclass(frozen=True)
class IPW(OffPolicyEstimator):
    r"""Inverse propensity weighting (Horvitz & Thompson 1952), optionally clipped
    (Strehl et al. 2010): V̂ = (1/n) Σ_i Σ_j min(w_ij, λ) r_ij."""

    clip: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"`clip` must be positive, got {self.clip}")

    @property
    def name(self) -> str:
        return "ipw" if self.clip is None else f"ipw-clip{self.clip:g}"

    def _estimate(self, x: _Inputs) -> tuple[float, np.ndarray]:
        weights = x.weights if self.clip is None else np.minimum(x.weights, self.clip)
        per_decision = (weights * x.rewards).sum(axis=1)
        return float(per_decision.mean()), per_decision


@dataclass(frozen=True)
class SNIPW(OffPolicyEstimator):
    r"""Self-normalised IPW per slot (Swaminathan & Joachims 2015):
    V̂ = Σ_j (n_j/n) · Σ_i w_ij r_ij / Σ_i w_ij."""

    @property
    def name(self) -> str:
        return "snipw"

    def _estimate(self, x: _Inputs) -> tuple[float, np.ndarray]:
        return _self_normalised(x.weights, x.rewards, x.mask)


@dataclass(frozen=True)
class DM(OffPolicyEstimator):
    r"""Direct method (Beygelzimer & Langford 2009): V̂ = (1/n) Σ_i Σ_j q̄_ij."""

    needs_reward_model = True

    @property
    def name(self) -> str:
        return "dm"

    def _estimate(self, x: _Inputs) -> tuple[float, np.ndarray]:
        per_decision = x.q_target.sum(axis=1)
        return float(per_decision.mean()), per_decision


@dataclass(frozen=True)
class DR(OffPolicyEstimator):
    r"""Doubly robust (Dudík et al. 2011): V̂ = (1/n) Σ_i Σ_j [q̄_ij + w̃_ij (r_ij − q̂_ij)], with
    w̃ = w here; variants change only `_shrink`."""

    needs_reward_model = True

    @property
    def name(self) -> str:
        return "dr"

    def _shrink(self, weights: np.ndarray) -> np.ndarray:
        return weights

    def _estimate(self, x: _Inputs) -> tuple[float, np.ndarray]:
        per_decision = (x.q_target + self._shrink(x.weights) * (x.rewards - x.q_logged)).sum(axis=1)
        return float(per_decision.mean()), per_decision


@dataclass(frozen=True)
class SwitchDR(DR):
    r"""Switch-DR (Wang et al. 2017), as in Open Bandit Pipeline: the correction is kept only where
    w ≤ τ, so large weights fall back on the model. w̃ = w · 1[w ≤ τ]."""

    tau: float = 100.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.tau > 0:
            raise ValueError(f"`tau` must be positive, got {self.tau}")

    @property
    def name(self) -> str:
        return "switch-dr"

    def _shrink(self, weights: np.ndarray) -> np.ndarray:
        return np.where(weights <= self.tau, weights, 0.0)


@dataclass(frozen=True)
class DROS(DR):
    r"""DR with optimistic shrinkage (Su et al. 2020): w̃ = λ w / (w² + λ)."""

    lambda_: float = 100.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.lambda_ > 0:
            raise ValueError(f"`lambda_` must be positive, got {self.lambda_}")

    @property
    def name(self) -> str:
        return "dr-os"

    def _shrink(self, weights: np.ndarray) -> np.ndarray:
        return self.lambda_ * weights / (weights**2 + self.lambda_)


@dataclass(frozen=True)
class SNDR(OffPolicyEstimator):
    r"""Self-normalised DR: V̂ = (1/n) Σ_i Σ_j q̄_ij + Σ_j (n_j/n) Σ_i w_ij (r_ij − q̂_ij) / Σ_i w_ij."""

    needs_reward_model = True

    @property
    def name(self) -> str:
        return "sndr"

    def _estimate(self, x: _Inputs) -> tuple[float, np.ndarray]:
        direct = x.q_target.sum(axis=1)
        correction, influence = _self_normalised(x.weights, x.rewards - x.q_logged, x.mask)
        return float(direct.mean()) + correction, direct + influence


@dataclass(frozen=True)
class CascadeDR(OffPolicyEstimator):
    r"""Cascade doubly robust (Kiyohara et al., WSDM 2022; Open Bandit Pipeline's
    `SlateCascadeDoublyRobust`) on slot data whose slots are a ranking's positions in order, each
    weighted by its page prefix (w_il = π(a_i1..a_il)/π₀(a_i1..a_il), as `slate_data(cascade=True)`
    builds): V̂ = (1/n) Σ_i Σ_l [w_il (r_il − q̂_il) + w_i,l−1 q̄_il], w_i,0 = 1, where q̂_il is the
    model's reward for the logged item and q̄_il the target's expected q̂ at position l given the
    logged prefix. Unbiased when a row's reward depends only on the rows above it and itself, with
    less variance than the cascade (reward-interaction) IPS when q̂ is good."""

    needs_reward_model = True

    @property
    def name(self) -> str:
        return "cascade-dr"

    def _estimate(self, x: _Inputs) -> tuple[float, np.ndarray]:
        previous = np.ones_like(x.weights)
        previous[:, 1:] = x.weights[:, :-1]
        per_slot = x.weights * (x.rewards - x.q_logged) + previous * x.q_target
        per_decision = np.where(x.mask, per_slot, 0.0).sum(axis=1)
        return float(per_decision.mean()), per_decision


ESTIMATORS: dict[str, type[OffPolicyEstimator]] = {
    "ipw": IPW,
    "snipw": SNIPW,
    "dm": DM,
    "dr": DR,
    "sndr": SNDR,
    "switch-dr": SwitchDR,
    "dr-os": DROS,
}


def estimator_by_name(name: str) -> OffPolicyEstimator:
    try:
        return ESTIMATORS[name]()
    except KeyError:
        raise ValueError(f"unknown estimator {name!r}; known: {', '.join(ESTIMATORS)}") from None


def bootstrap_interval(
    estimator: OffPolicyEstimator,
    data: SlotData,
    target_propensity: np.ndarray,
    q_target: np.ndarray | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap over decisions, at the estimator's confidence level."""
    rng = np.random.default_rng(seed)
    n = data.n_decisions
    values = np.empty(n_resamples)
    for b in range(n_resamples):
        rows = rng.integers(0, n, size=n)
        q = None if q_target is None else q_target[rows]
        values[b] = estimator.point(data.subset(rows), target_propensity[rows], q)
    low, high = np.quantile(values, [estimator.alpha / 2, 1 - estimator.alpha / 2])
    return float(low), float(high)


#: what an estimate without logged support says instead of an interval
NO_SUPPORT = (
    "no support: the target puts no probability on anything the logs show (every importance weight "
    "is 0), so the logs say nothing about its value; log with exploration over its choices, or use "
    "a reward-model estimator (dm, dr)"
)


def estimate_dict(
    estimator: OffPolicyEstimator,
    data: SlotData,
    target_propensity: np.ndarray,
    q_target: np.ndarray | None = None,
    bootstrap: int = 0,
) -> dict[str, Any]:
    """The estimate as a report entry: the analytic interval, or with `bootstrap` > 0 the
    percentile bootstrap over that many resamples (`interval` says which), and the estimator's
    own weights' diagnostics: effective sample size, mean weight and the estimated unsupported
    mass (1 − the mean weight: E₀[w] is the target's mass where the logging policy goes).

    Without support (every weight 0) a weighting estimator has no estimate: value and interval
    are None and `warning` says why (its arithmetic would give 0 ± 0, an interval claiming
    certainty about what the logs never saw). A reward-model estimator keeps its value, warned
    that it is the model's alone."""
    own = own_diagnostics(weight_diagnostics(data, target_propensity))
    supported = bool(np.any(target_propensity[data.mask] > 0))
    if not supported and not estimator.needs_reward_model:
        return {**no_estimate(data.n_decisions), **own}
    estimate: dict[str, Any] = dict(estimator.estimate(data, target_propensity, q_target).as_dict())
    if bootstrap > 0:
        estimate["lower"], estimate["upper"] = bootstrap_interval(
            estimator, data, target_propensity, q_target, n_resamples=bootstrap
        )
    entry = {**estimate, "interval": f"bootstrap-{bootstrap}" if bootstrap > 0 else "normal", **own}
    if not supported:
        entry["warning"] = MODEL_ONLY
    return entry


#: the warning on a reward-model estimate whose weights are all 0
MODEL_ONLY = "no logged support: this is the reward model's estimate alone, no weighting corrects it"


def own_diagnostics(diagnostics: WeightDiagnostics) -> dict[str, Any]:
    """An estimate's own weights in its report entry: effective sample size, mean weight, the
    estimated unsupported mass (1 − the mean weight: E₀[w] is the target's mass where the logging
    policy goes) and warnings."""
    mean = diagnostics.mean_weight
    return {
        "effective_sample_size": diagnostics.effective_sample_size,
        "mean_weight": mean,
        "unsupported_mass": float(min(1.0, max(0.0, 1.0 - mean))) if np.isfinite(mean) else None,
        "warnings": list(diagnostics.warnings),
    }


def with_weights(name: str, entry: dict[str, Any], diagnostics: WeightDiagnostics, n_decisions: int) -> dict[str, Any]:
    """A distributed engine's estimate entry, finished as `estimate_dict` finishes the memory
    engine's: its own weights' diagnostics; a weighting estimator (ipw, snipw and their slate- and
    cascade- forms) whose weights are all 0 has no estimate; a reward-model one keeps its value, warned."""
    supported = diagnostics.max_weight > 0
    if not supported and name.rsplit("-", 1)[-1] in ("ipw", "snipw"):
        return {**no_estimate(n_decisions), **own_diagnostics(diagnostics)}
    finished = {**entry, "interval": "normal", **own_diagnostics(diagnostics)}
    if not supported:
        finished["warning"] = MODEL_ONLY
    return finished


def no_estimate(n_decisions: int) -> dict[str, Any]:
    """The report entry of a weighting estimate without support (every weight 0)."""
    return {
        "value": None, "lower": None, "upper": None, "n_decisions": n_decisions,
        "interval": "none", "warning": NO_SUPPORT,
    }  # fmt: skip


@dataclass(frozen=True)
class WeightDiagnostics:
    effective_sample_size: float
    mean_weight: float
    max_weight: float
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "effective_sample_size": self.effective_sample_size,
            "mean_weight": self.mean_weight,
            "max_weight": self.max_weight,
            "warnings": list(self.warnings),
        }


def weight_diagnostics(data: SlotData, target_propensity: np.ndarray) -> WeightDiagnostics:
    """Kish's effective sample size (Σw)²/Σw² over shown slots, mean and max weight, and
    plain-word warnings when an estimate should not be trusted."""
    weights = (target_propensity / np.where(data.mask, data.logged_propensity, 1.0))[data.mask]
    if not weights.size:
        return diagnostics_from_sums(0, 0.0, 0.0, float("nan"))
    return diagnostics_from_sums(weights.size, float(weights.sum()), float((weights**2).sum()), float(weights.max()))


def diagnostics_from_sums(slots: int, total: float, squares: float, peak: float) -> WeightDiagnostics:
    """`weight_diagnostics` from the shown slots' count, Σw, Σw² and largest weight (what a
    distributed engine can combine)."""
    if not slots:
        return WeightDiagnostics(0.0, float("nan"), float("nan"), ("no shown slots",))
    ess = float(total**2 / squares) if squares > 0 else 0.0
    mean = total / slots
    warnings = []
    variance = max(0.0, (squares - total * total / slots) / (slots - 1)) if slots > 1 else 0.0
    stderr = float(np.sqrt(variance / slots))
    if abs(mean - 1.0) > max(0.1, 3 * stderr):
        warnings.append(
            f"importance weights average {mean:.3f}, not 1: the logged propensities may be wrong, "
            "or the target policy puts mass where the logging policy rarely went"
        )
    if ess < 0.01 * slots or ess < 100:
        warnings.append(
            f"effective sample size is {ess:.0f} of {slots} slots: a few large weights dominate; "
            "prefer self-normalised or doubly robust estimates and read intervals with care"
        )
    if peak > 100:
        warnings.append(f"the largest importance weight is {peak:.0f}: consider clipping or switch-dr")
    return WeightDiagnostics(ess, mean, peak, tuple(warnings))


def weight_histogram(data: SlotData, target_propensity: np.ndarray, bins: int = 20) -> dict[str, Any]:
    """Counts of shown slots by importance weight, in log-spaced bins (zero weights counted apart)."""
    weights = (target_propensity / np.where(data.mask, data.logged_propensity, 1.0))[data.mask]
    positive = weights[weights > 0]
    if not positive.size:
        return {"edges": [], "counts": [], "zero": int(weights.size)}
    low, high = float(positive.min()), float(positive.max())
    edges = np.geomspace(low, high * (1 + 1e-9), bins + 1) if high > low else np.array([low, low * (1 + 1e-9) + 1e-12])
    counts, _ = np.histogram(positive, bins=edges)
    return {"edges": edges.tolist(), "counts": counts.tolist(), "zero": int((weights == 0).sum())}
