r"""Off-policy estimators for ranked (slotted) logs under the position-based independence
assumption (Li et al., "Offline Evaluation of Ranking Policies with Click Models", KDD 2018),
with 95% normal-approximation intervals.

Notation, for decision i and slot (position) j shown in it: reward r_ij, logged propensity
π₀(a_ij | x_i, j), target propensity π(a_ij | x_i, j), weight w_ij = π/π₀.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


@dataclass(frozen=True)
class SlotData:
    """Arrays of shape (n_decisions, n_slots); `mask` marks the slots that were shown."""

    rewards: np.ndarray
    logged_propensity: np.ndarray
    mask: np.ndarray

    def __post_init__(self) -> None:
        if not (self.rewards.shape == self.logged_propensity.shape == self.mask.shape) or self.rewards.ndim != 2:
            raise ValueError(
                "`rewards`, `logged_propensity` and `mask` must share one (n_decisions, n_slots) shape, got "
                f"{self.rewards.shape}, {self.logged_propensity.shape}, {self.mask.shape}"
            )
        shown = self.logged_propensity[self.mask]
        if shown.size and (not np.all(shown > 0) or not np.all(shown <= 1)):
            raise ValueError("`logged_propensity` of every shown slot must be in (0, 1]")

    @property
    def n_decisions(self) -> int:
        return int(self.rewards.shape[0])


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
class OffPolicyEstimator(ABC):
    #: 1 - confidence level of the interval.
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"`alpha` must be in (0, 1), got {self.alpha}")

    @property
    @abstractmethod
    def name(self) -> str: ...

    def estimate(self, data: SlotData, target_propensity: np.ndarray) -> Estimate:
        """target_propensity: shape (n_decisions, n_slots), π(a_ij | x_i, j) of each logged slot."""
        if target_propensity.shape != data.rewards.shape:
            raise ValueError(f"`target_propensity` must have shape {data.rewards.shape}, got {target_propensity.shape}")
        shown = target_propensity[data.mask]
        if shown.size and (np.any(shown < 0) or np.any(shown > 1)):
            raise ValueError("`target_propensity` must be within [0, 1]")
        if data.n_decisions == 0:
            raise ValueError("no decisions to estimate from")
        weights = np.where(data.mask, target_propensity / np.where(data.mask, data.logged_propensity, 1.0), 0.0)
        value, influence = self._estimate(weights, np.where(data.mask, data.rewards, 0.0), data.mask)
        z = NormalDist().inv_cdf(1 - self.alpha / 2)
        half = z * float(np.std(influence, ddof=1)) / np.sqrt(len(influence)) if len(influence) > 1 else np.inf
        return Estimate(self.name, float(value), float(value - half), float(value + half), data.n_decisions)

    @abstractmethod
    def _estimate(self, weights: np.ndarray, rewards: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
        """Returns the estimate and each decision's influence (whose sd gives the interval)."""


@dataclass(frozen=True)
class IPS(OffPolicyEstimator):
    r"""V̂ = (1/n) Σ_i Σ_j w_ij r_ij  (Horvitz & Thompson 1952; independent IPS, Li et al. 2018)."""

    @property
    def name(self) -> str:
        return "ips"

    def _estimate(self, weights: np.ndarray, rewards: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
        per_decision = (weights * rewards).sum(axis=1)
        return float(per_decision.mean()), per_decision


@dataclass(frozen=True)
class SNIPS(OffPolicyEstimator):
    r"""Self-normalised IPS per slot (Swaminathan & Joachims 2015):

    V̂ = Σ_j (n_j/n) · Σ_i w_ij r_ij / Σ_i w_ij, with n_j the decisions that showed slot j.
    The interval is the delta method's: influence_i = Σ_j (n_j/n)(w_ij r_ij − V̂_j w_ij)/ w̄_j.
    """

    @property
    def name(self) -> str:
        return "snips"

    def _estimate(self, weights: np.ndarray, rewards: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
        slot_share = mask.mean(axis=0)  # n_j / n
        mean_weight = weights.mean(axis=0)  # w̄_j, over all n decisions
        safe = np.where(mean_weight > 0, mean_weight, 1.0)
        slot_value = (weights * rewards).mean(axis=0) / safe  # 0 where no decision supports slot j
        value = float((slot_share * slot_value).sum())
        influence = (slot_share * (weights * rewards - slot_value * weights) / safe).sum(axis=1) + value
        return value, influence
