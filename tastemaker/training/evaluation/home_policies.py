"""Policies to evaluate on home-page logs, each re-run on what the decision logged.

A policy is a ranker (`marginals(scores, k)` and `ranking_probability(scores, order)`, the
interface of `EpsilonGreedyRanker` and `SoftmaxRanker`) applied to scores: by default the logged
scores; for a saved model, its scores recomputed from the logged feature vector.

- `logging`: the decision's own strategy re-run (ε-greedy or softmax, with its floor); for
  strategies that depend on state the log does not carry (LinUCB, Thompson), the logged
  propensities themselves. `greedy` (ε = 0); `uniform-random` (ε = 1); `epsilon:E`.
- `softmax[:T]`: Plackett–Luce over the scores at temperature T (default 1).
- `model:PATH`: greedy over a saved model version's scores: a reward-model artifact directory
  (`tastemaker train reward-model`) or an engagement-linear JSON (`engagement_model.save_model`);
  `model:builtin` is the built-in engagement-linear model.
- `MODULE:ATTR` or `FILE.py:ATTR`: your own ranker object, or a no-argument factory of one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from tastemaker.bandits.engagement_model import EngagementLinearModel, load_model
from tastemaker.bandits.epsilon_greedy import EpsilonGreedyRanker
from tastemaker.bandits.feature_vector import LoggedVector
from tastemaker.bandits.plackett_luce import SoftmaxRanker
from tastemaker.bandits.reward_models import EngagementScorer, RewardModel, load_reward_model
from tastemaker.training.evaluation.action_policies import PolicyError, load_entry_point
from tastemaker.v1 import records_pb2

BUILT_IN = ("logging", "greedy", "uniform-random", "epsilon:E", "softmax[:T]", "model:PATH", "MODULE:ATTR")
DEFAULT = ("logging", "greedy", "uniform-random")


class Ranker(Protocol):
    def marginals(self, scores: np.ndarray, k: int) -> np.ndarray: ...

    def ranking_probability(self, scores: np.ndarray, order: np.ndarray) -> float: ...


@dataclass(frozen=True)
class FlooredRanker:
    """A ranker mixed with a uniformly random ranking: λ = min(1, n·floor) (`strategies.Floored`)."""

    inner: Ranker
    floor: float

    def marginals(self, scores: np.ndarray, k: int) -> np.ndarray:
        n = len(scores)
        lam = min(1.0, n * self.floor)
        return (1 - lam) * self.inner.marginals(scores, k) + lam / n

    def ranking_probability(self, scores: np.ndarray, order: np.ndarray) -> float:
        n, k = len(scores), len(order)
        lam = min(1.0, n * self.floor)
        return (1 - lam) * self.inner.ranking_probability(scores, order) + lam / math.perm(n, k)


def logging_ranker(decision: records_pb2.DecisionLog) -> Ranker | None:
    """The logging policy re-run from what the decision logged; None when it cannot be (its
    propensities depend on model state the log does not carry)."""
    exploration = decision.exploration
    ranker: Ranker
    if exploration.strategy in ("", "epsilon-greedy"):
        ranker = EpsilonGreedyRanker(exploration.epsilon)
    elif exploration.strategy == "softmax":
        ranker = SoftmaxRanker(exploration.parameters.get("temperature", 1.0))
    else:
        return None
    return FlooredRanker(ranker, exploration.propensity_floor) if exploration.propensity_floor > 0 else ranker


@dataclass(frozen=True)
class HomePolicy:
    name: str
    #: the ranker to re-run on a decision; None: use the logged propensities (logging policy only)
    ranker_for: Callable[[records_pb2.DecisionLog], Ranker | None]
    #: None: the logged scores; else a model whose scores are recomputed from the logged features
    model: RewardModel | None = None

    def shelf_scores(self, decision: records_pb2.DecisionLog) -> np.ndarray:
        if self.model is None:
            return np.asarray(decision.shelf_candidates.scores)
        return _rescore(self.model, decision, "shelf", decision.shelf_candidates.item_ids)

    def card_scores(self, decision: records_pb2.DecisionLog, shelf: records_pb2.LoggedShelf) -> np.ndarray:
        if self.model is None:
            return np.asarray(shelf.card_candidates.scores)
        return _rescore(self.model, decision, "card", shelf.card_candidates.item_ids)

    def candidate_card_scores(self, decision: records_pb2.DecisionLog, shelf_id: str) -> tuple[list[str], np.ndarray]:
        """Every candidate card of a candidate shelf, shown or not, with its score under this policy:
        logged scores where the shelf was shown; else the logged model's (or this policy's model's)
        scores of the logged feature vector."""
        for shown in decision.shown:
            if shown.shelf_id == shelf_id:
                return list(shown.card_candidates.item_ids), self.card_scores(decision, shown)
        for candidate in decision.candidates:
            if candidate.shelf_id == shelf_id:
                model = self.model or EngagementScorer(EngagementLinearModel())
                return list(candidate.card_ids), _rescore(model, decision, "card", candidate.card_ids)
        raise PolicyError(f"decision {decision.decision_id} did not log the candidate shelf {shelf_id}")


def _rescore(model: RewardModel, decision: records_pb2.DecisionLog, level: str, ids: Sequence[str]) -> np.ndarray:
    counts = LoggedVector.of(decision).counts()
    return model.score_level(level, counts, list(ids), _engagement(decision, level, ids), dict(decision.context))


def _engagement(decision: records_pb2.DecisionLog, kind: str, ids: Sequence[str]) -> np.ndarray:
    vector = LoggedVector.of(decision)
    missing = vector.missing(kind, ids)
    if missing:
        raise PolicyError(f"decision {decision.decision_id} did not log the feature '{kind}:{missing[0]}'")
    return vector.engagement(kind, ids)


def _fixed(ranker: Ranker) -> Callable[[records_pb2.DecisionLog], Ranker | None]:
    return lambda decision: ranker


def resolve(name: str) -> HomePolicy:
    if name == "logging":
        return HomePolicy(name, logging_ranker)
    if name == "greedy":
        return HomePolicy(name, _fixed(EpsilonGreedyRanker(0.0)))
    if name == "uniform-random":
        return HomePolicy(name, _fixed(EpsilonGreedyRanker(1.0)))
    kind, _, value = name.partition(":")
    try:
        if kind == "epsilon" and value:
            return HomePolicy(name, _fixed(EpsilonGreedyRanker(float(value))))
        if kind == "softmax":
            return HomePolicy(name, _fixed(SoftmaxRanker(float(value) if value else 1.0)))
    except ValueError as exc:
        raise PolicyError(f"policy {name!r}: {exc}") from None
    if kind == "model" and value:
        try:
            path = Path(value)
            model: RewardModel
            if value == "builtin":
                model = EngagementScorer(EngagementLinearModel())
            elif path.is_dir():
                model = load_reward_model(path)
            else:
                model = EngagementScorer(load_model(path))
        except ValueError as exc:
            raise PolicyError(str(exc)) from None
        return HomePolicy(name, _fixed(EpsilonGreedyRanker(0.0)), model)
    if ":" in name:
        found = load_entry_point(name)
        ranker = found() if isinstance(found, type) or not hasattr(found, "marginals") else found
        if not (hasattr(ranker, "marginals") and hasattr(ranker, "ranking_probability")):
            raise PolicyError(
                f"{name}: neither a ranker nor a factory of one (needs marginals and ranking_probability)"
            )
        return HomePolicy(name, _fixed(ranker))
    raise PolicyError(f"unknown policy {name!r}; known: {', '.join(BUILT_IN)}")


def free_slots(decision: records_pb2.DecisionLog) -> tuple[dict[int, int], set[int]]:
    """Rows not pinned, each mapped to its index among the free rows (the strategy ranks only those),
    and the pinned rows."""
    pinned = {p.position for p in decision.pinned_shelves}
    rows = sorted(s.position for s in decision.shown if s.position not in pinned)
    return {row: i for i, row in enumerate(rows)}, pinned
