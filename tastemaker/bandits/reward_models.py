"""Reward models as the ranker serves them, swappable by configuration (`TASTEMAKER_REWARD_MODEL`:
empty for the built-in engagement-linear model, or a directory written by
`tastemaker train reward-model`). This module is the math; reading and writing an artifact
directory lives in `tastemaker.models.artifacts`.

An artifact directory holds `manifest.json` (format, kind, version, the feature columns, the
SHA-256 of every other file) and the weights: `weights.npz` (numpy arrays, loaded without pickle)
for `logistic`, `dnn` and `fm` (a second-order factorization machine; all three trained in
TensorFlow, served here in numpy) and `banditnet` (a policy
learned directly from the logs, `training/modeling/policy_learning.py`), or `ydf/` for `gbt`
(gradient-boosted trees trained and served by YDF). Serving never imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from tastemaker.bandits.engagement_model import EngagementLinearModel
from tastemaker.bandits.reward_features import encode, feature_names

FORMAT = "tastemaker.reward-model/1"
KINDS = ("logistic", "dnn", "fm", "gbt", "banditnet")


class RewardModel(Protocol):
    @property
    def version(self) -> str: ...

    def score_level(
        self,
        level: str,
        counts: np.ndarray,
        ids: Sequence[str],
        engagement: np.ndarray,
        context: Mapping[str, str] | None = None,
        explanations: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Scores (higher is better) of one request's candidates at one level (shelf or card),
        each shown under `explanations[i]` when given."""
        ...


@dataclass(frozen=True)
class EngagementScorer:
    """The built-in model: weight · log(1 + engagement) + bias, whatever the level."""

    model: EngagementLinearModel = EngagementLinearModel()

    @property
    def version(self) -> str:
        return self.model.version

    def score_level(
        self,
        level: str,
        counts: np.ndarray,
        ids: Sequence[str],
        engagement: np.ndarray,
        context: Mapping[str, str] | None = None,
        explanations: Sequence[str] | None = None,
    ) -> np.ndarray:
        return self.model.score(engagement)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class _EncodedScorer:
    """Scores through `reward_features.encode` and the subclass's `predict`; `columns` (when set)
    picks, from what `encode` builds today, the columns the model was trained on (an artifact of an
    earlier, narrower encoding keeps serving; `models.artifacts` sets it from the manifest)."""

    columns: np.ndarray | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def select(self, x: np.ndarray) -> np.ndarray:
        return x if self.columns is None else x[:, self.columns]

    def score_level(
        self,
        level: str,
        counts: np.ndarray,
        ids: Sequence[str],
        engagement: np.ndarray,
        context: Mapping[str, str] | None = None,
        explanations: Sequence[str] | None = None,
    ) -> np.ndarray:
        return self.predict(self.select(encode(counts, engagement, ids, level, context, explanations=explanations)))


@dataclass(frozen=True)
class DenseModel(_EncodedScorer):
    """Logistic regression (one layer) or an MLP with ReLU hidden layers, in numpy: P(click)."""

    version: str
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    columns: np.ndarray | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        h = x
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return _sigmoid(h[:, 0])


@dataclass(frozen=True)
class FactorizationMachine(_EncodedScorer):
    """A second-order factorization machine (Rendle 2010), in numpy: P(click) =
    σ(w₀ + w·x + Σ_{i<j} ⟨v_i, v_j⟩ x_i x_j), the pairwise term computed as
    ½ Σ_f [(Σ_i v_if x_i)² − Σ_i v_if² x_i²]. Every pair of columns (item × context × position …)
    interacts through k factors, so one user's context can prefer other items than another's."""

    version: str
    w0: float
    w: np.ndarray  # (d,)
    v: np.ndarray  # (d, k)
    columns: np.ndarray | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        projected = x @ self.v
        pairwise = 0.5 * (projected**2 - (x**2) @ (self.v**2)).sum(axis=1)
        return _sigmoid(self.w0 + x @ self.w + pairwise)


@dataclass(frozen=True)
class TreesModel(_EncodedScorer):
    """Gradient-boosted trees served by YDF's own inference: P(click)."""

    version: str
    model: Any
    columns: np.ndarray | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """P(click) of rows `x` in the model's own columns (`select`ed)."""
        names = feature_names() if self.columns is None else [feature_names()[i] for i in self.columns]
        return trees_click_probability(self.model, {name: x[:, i].astype(np.float32) for i, name in enumerate(names)})


def trees_click_probability(model: Any, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """A YDF model's P(click): a classifier's probability of the "click" class, or a regression
    on doubly robust targets (`--targets dr`) clipped into [0, 1]."""
    p = np.asarray(model.predict(dict(columns)), dtype=np.float64).reshape(-1)
    if model.task().name == "REGRESSION":
        return np.clip(p, 0.0, 1.0)
    # YDF gives P(the second label class) for binary tasks; the labels are "click" and "none"
    return p if list(model.label_classes())[1] == "click" else 1.0 - p
