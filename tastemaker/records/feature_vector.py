"""The feature vector a decision logs (`DecisionLog.feature_names` / `feature_values`), defined once:
what the ranker scored, so that evaluation, retraining and the learner re-read exactly that.

Home: `count:<event type>` for each of COUNT_TYPES (the user's activity), then
`shelf:<shelf id>` for every candidate shelf and `card:<card id>` for every candidate card (the
user's engagement with it). Stickers: `similarity:<sticker id>` and `sends:<sticker id>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tastemaker.bandits.reward_features import COUNT_TYPES

COUNT, SHELF, CARD = "count", "shelf", "card"
SIMILARITY, SENDS = "similarity", "sends"


def name(kind: str, key: str) -> str:
    return f"{kind}:{key}"


def home_names(shelf_ids: Iterable[str], card_ids: Iterable[str]) -> list[str]:
    """The names of a home decision's vector, in its order: counts, shelves, cards."""
    names = [name(COUNT, t) for t in COUNT_TYPES]
    names += [name(SHELF, s) for s in shelf_ids]
    names += [name(CARD, c) for c in card_ids]
    return names


def sticker_names(sticker_ids: Sequence[str]) -> list[str]:
    return [name(SIMILARITY, i) for i in sticker_ids] + [name(SENDS, i) for i in sticker_ids]


def is_count(feature: str) -> bool:
    return feature.startswith(COUNT + ":")


@dataclass(frozen=True)
class LoggedVector:
    """A logged vector read back: values by name, and the slices the models and learners use."""

    values: dict[str, float]

    @classmethod
    def of(cls, decision: Any) -> LoggedVector:
        """From a `DecisionLog` (or anything with `feature_names` and `feature_values`)."""
        return cls(dict(zip(decision.feature_names, decision.feature_values, strict=False)))

    def counts(self) -> np.ndarray:
        """The user's activity per event type, in COUNT_TYPES order (0 where not logged)."""
        return np.array([self.values.get(name(COUNT, t), 0.0) for t in COUNT_TYPES])

    def value(self, kind: str, key: str, default: float = 0.0) -> float:
        return self.values.get(name(kind, key), default)

    def engagement(self, level: str, ids: Iterable[str]) -> np.ndarray:
        """The user's engagement with each of `ids` at `level` (SHELF or CARD), 0 where not logged."""
        return np.array([self.values.get(name(level, i), 0.0) for i in ids], dtype=np.float64)

    def missing(self, level: str, ids: Iterable[str]) -> list[str]:
        """The ids whose engagement the decision did not log."""
        return [i for i in ids if name(level, i) not in self.values]
