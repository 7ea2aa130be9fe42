"""Policies to evaluate on home-page logs, each re-run on what the decision logged.

A policy is a serving strategy (`bandits.strategies.Strategy`: `marginals(candidates, k)` and
`ranking_probability(candidates, order)`, the same objects that rank live traffic) applied to the
logged candidates with their scores: by default the logged scores; for a saved model, its scores
recomputed from the logged feature vector.

- `logging`: the decision's own strategy re-run (ε-greedy or softmax, with its floor); for
  strategies that depend on state the log does not carry (LinUCB, Thompson), the logged
  propensities themselves. `greedy` (ε = 0); `uniform-random` (ε = 1); `epsilon:E`.
- `softmax[:T]`: Plackett–Luce over the scores at temperature T (default 1).
- `model:PATH`: greedy over a saved model version's scores: a reward-model artifact directory
  (`tastemaker train reward-model`) or an engagement-linear JSON (`engagement_model.save_model`);
  `model:builtin` is the built-in engagement-linear model.
- `MODULE:ATTR` or `FILE.py:ATTR`: your own `Strategy` object, or a no-argument factory of one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tastemaker.bandits.engagement_model import EngagementLinearModel, load_model
from tastemaker.bandits.reward_models import EngagementScorer, RewardModel
from tastemaker.bandits.strategies import (
    LINEAR,
    STRATEGY_PARAMETERS,
    Candidates,
    EpsilonGreedy,
    Strategy,
    strategy_from,
    with_floor,
)
from tastemaker.models.artifacts import load_reward_model
from tastemaker.records.logged_page import LoggedPage
from tastemaker.training.evaluation.action_policies import PolicyError, load_entry_point
from tastemaker.v1 import records_pb2

BUILT_IN = (
    "logging", "greedy", "uniform-random", "epsilon:E", "softmax[:T]", "squarecb[:GAMMA]", "model:PATH", "MODULE:ATTR"
)  # fmt: skip
DEFAULT_POLICIES = ("logging", "greedy", "uniform-random")


def logging_strategy(decision: records_pb2.DecisionLog) -> Strategy | None:
    """The logging policy re-run from what the decision logged (the serving strategy with its floor);
    None when it cannot be (its propensities depend on model state the log does not carry)."""
    exploration = decision.exploration
    name = exploration.strategy or "epsilon-greedy"
    if name in LINEAR or name not in STRATEGY_PARAMETERS:
        return None
    parameters = {"epsilon": exploration.epsilon, **exploration.parameters}
    return with_floor(strategy_from(name, parameters), exploration.propensity_floor)


@dataclass(frozen=True)
class HomePolicy:
    name: str
    #: the strategy to re-run on a decision; None: use the logged propensities (logging policy only)
    strategy_for: Callable[[records_pb2.DecisionLog], Strategy | None]
    #: None: the logged scores; else a model whose scores are recomputed from the logged features
    model: RewardModel | None = None

    def shelf_candidates(self, page: LoggedPage) -> Candidates:
        """The decision's candidate shelves with their scores under this policy."""
        if self.model is None:
            return page.shelves
        return Candidates(page.shelves.ids, _rescore(self.model, page, "shelf", page.shelves.ids))

    def card_candidates(self, page: LoggedPage, row: int) -> Candidates:
        """The candidate cards of the page's `row`-th shown shelf with their scores under this policy."""
        logged = page.cards[row]
        if self.model is None:
            return logged
        return Candidates(logged.ids, _rescore(self.model, page, "card", logged.ids))

    def explanation_candidates(self, page: LoggedPage, row: int) -> tuple[Candidates, int] | None:
        """The explanation variants of the page's `row`-th shown shelf with their scores under this
        policy, and the index of the one shown; None when the row had no explanation."""
        logged = page.explanations[row] if row < len(page.explanations) else None
        if logged is None or self.model is None:
            return logged
        variants, shown = logged
        shelf_id = page.decision.shown[row].shelf_id
        engagement = np.full(len(variants.ids), _engagement(page, "shelf", [shelf_id])[0])
        scores = self.model.score_level(
            "shelf", page.vector.counts(), [shelf_id] * len(variants.ids), engagement, dict(page.decision.context),
            explanations=variants.ids,
        )  # fmt: skip
        return Candidates(variants.ids, scores), shown

    def candidate_cards(self, page: LoggedPage, shelf_id: str) -> Candidates:
        """Every candidate card of a candidate shelf, shown or not, with its score under this policy:
        logged scores where the shelf was shown; else the logged model's (or this policy's model's)
        scores of the logged feature vector."""
        for r, shown in enumerate(page.decision.shown):
            if shown.shelf_id == shelf_id:
                return self.card_candidates(page, r)
        for candidate in page.decision.candidates:
            if candidate.shelf_id == shelf_id:
                model = self.model or EngagementScorer(EngagementLinearModel())
                ids = tuple(candidate.card_ids)
                return Candidates(ids, _rescore(model, page, "card", ids))
        raise PolicyError(f"decision {page.decision.decision_id} did not log the candidate shelf {shelf_id}")


def _rescore(model: RewardModel, page: LoggedPage, level: str, ids: Sequence[str]) -> np.ndarray:
    counts = page.vector.counts()
    return model.score_level(level, counts, list(ids), _engagement(page, level, ids), dict(page.decision.context))


def _engagement(page: LoggedPage, kind: str, ids: Sequence[str]) -> np.ndarray:
    missing = page.vector.missing(kind, ids)
    if missing:
        raise PolicyError(f"decision {page.decision.decision_id} did not log the feature '{kind}:{missing[0]}'")
    return page.vector.engagement(kind, ids)


def _fixed(strategy: Strategy) -> Callable[[records_pb2.DecisionLog], Strategy | None]:
    return lambda decision: strategy


def resolve(name: str) -> HomePolicy:
    if name == "logging":
        return HomePolicy(name, logging_strategy)
    if name == "greedy":
        return HomePolicy(name, _fixed(EpsilonGreedy(0.0)))
    if name == "uniform-random":
        return HomePolicy(name, _fixed(EpsilonGreedy(1.0)))
    kind, _, value = name.partition(":")
    strategy_name = {"epsilon": "epsilon-greedy", "softmax": "softmax", "squarecb": "squarecb"}.get(kind)
    if strategy_name is not None and (value or kind != "epsilon"):
        try:
            parameters = {STRATEGY_PARAMETERS[strategy_name][0]: float(value)} if value else {}
            return HomePolicy(name, _fixed(strategy_from(strategy_name, parameters)))
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
        return HomePolicy(name, _fixed(EpsilonGreedy(0.0)), model)
    if ":" in name:
        found = load_entry_point(name)
        strategy = found() if isinstance(found, type) or not hasattr(found, "marginals") else found
        if not (hasattr(strategy, "marginals") and hasattr(strategy, "ranking_probability")):
            raise PolicyError(
                f"{name}: neither a strategy nor a factory of one"
                " (needs marginals(candidates, k) and ranking_probability(candidates, order))"
            )
        return HomePolicy(name, _fixed(strategy))
    raise PolicyError(f"unknown policy {name!r}; known: {', '.join(BUILT_IN)}")
