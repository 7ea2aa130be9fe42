"""The sticker re-rank: how the model's scores and what people send become the order shown.

static:   score = model score + 0.1 · log(1 + the user's sends of the sticker)
learned:  score = θ̂ · x + β̂_s,
          x = [1, 1/(1 + the sticker's rank by model score), log(1 + the user's sends of it), 1/(1 + position)]

The learned one is a ridge regression of "sent" (1 or 0) for every suggestion shown, on what the
ranker saw, plus a term per sticker: its send rate above the mean, shrunk towards 0 (`LinearState`).
The model score enters by its rank among the candidates (scale-free: a log-probability, a cosine);
the position a suggestion was shown at is a feature in training, so that the top slot's own pull is
not credited to what put stickers there, and the same for every candidate when ranking (the
position-as-a-feature correction of unbiased learning to rank).
θ̂ says how much the model score and the user's own habits count (a user who answers birthdays
with 🥳 has sent it before); β̂_s is each sticker's global pull, and with forgetting (γ < 1) its
recent one — what is trending. The learner updates it from rewarded sticker decisions within
seconds, exactly once (`features/learner.py`, `features/linear_store.py`, level "sticker"). Until
it has learned from `min_rows` suggestions the static re-rank serves. Exploration stays the
strategy's (ε-greedy over these scores), with exact propensities logged either way.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tastemaker.bandits.strategies import LinearState

#: static re-rank: score = model score + ENGAGEMENT_WEIGHT · log(1 + the user's sends of the sticker)
ENGAGEMENT_WEIGHT = 0.1
#: the learned re-rank's features: [1, 1/(1 + model-score rank), log(1 + sends), 1/(1 + position)]
RERANK_DIM = 4
LEVEL = "sticker"
RERANKS = ("static", "learned")


def rerank_features(model_score: np.ndarray, sends: np.ndarray, position: np.ndarray | None = None) -> np.ndarray:
    """(C, RERANK_DIM) x of each candidate; `position`: where each was shown (None: ranking, every
    candidate as if at the top)."""
    model_score = np.asarray(model_score, dtype=np.float64)
    rank = np.empty(len(model_score))
    rank[np.argsort(-model_score, kind="stable")] = np.arange(len(model_score))
    where = np.zeros(len(model_score)) if position is None else np.asarray(position, dtype=np.float64)
    sends = np.log1p(np.asarray(sends, dtype=np.float64))
    return np.column_stack([np.ones(len(model_score)), 1.0 / (1.0 + rank), sends, 1.0 / (1.0 + where)])


def static_scores(model_score: np.ndarray, sends: np.ndarray) -> np.ndarray:
    return np.asarray(model_score, dtype=np.float64) + ENGAGEMENT_WEIGHT * np.log1p(np.asarray(sends, np.float64))


@dataclass
class LearnedReRank:
    """Scores from a (shared, refreshed) posterior; static until it holds `min_rows` suggestions."""

    state: LinearState
    min_rows: int = 200

    def __post_init__(self) -> None:
        if self.state.dim != RERANK_DIM:
            raise ValueError(f"the sticker re-rank's posterior has {RERANK_DIM} features, got {self.state.dim}")
        if self.min_rows < 0:
            raise ValueError(f"`min_rows` must be non-negative, got {self.min_rows}")

    @property
    def rows(self) -> float:
        """Suggestions learned from (discounted with forgetting)."""
        return float(self.state.a[0, 0] - self.state.ridge)

    @property
    def learned(self) -> bool:
        return self.rows >= self.min_rows

    def scores(self, ids: Sequence[str], model_score: np.ndarray, sends: np.ndarray) -> np.ndarray:
        """(C,) each candidate's score: θ̂·x + β̂_s once learned, the static score before."""
        if not self.learned:
            return static_scores(model_score, sends)
        terms, _ = self.state.item_terms(ids)
        return rerank_features(model_score, sends) @ self.state.theta() + terms


def rerank_arm(user_id: str) -> str:
    """ "static" or "learned" for a user, stably (half the users each): the demo's side-by-side run."""

    return RERANKS[zlib.crc32(user_id.encode("utf-8")) % 2]
