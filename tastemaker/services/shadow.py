"""Shadow and apprentice modes: a candidate reward model runs beside the live one on every request.

- shadow: the candidate's page (with its own propensities) is logged next to the live decision
  (`DecisionLog.shadow`) and never shown, so its choices can be compared and evaluated offline.
- apprentice: the same, and once the candidate agreed with the live model's top choice on at least
  `agreement` of the last `window` requests, it takes over serving (and the log says so).

Agreement is on the greedy choice: the top free shelf by each model's score.
"""

from __future__ import annotations

import logging
from collections import deque

import numpy as np

from tastemaker.bandits.page import HomePage
from tastemaker.bandits.reward_models import RewardModel
from tastemaker.v1 import records_pb2

log = logging.getLogger(__name__)

MODES = ("shadow", "apprentice")


class ShadowRunner:
    def __init__(
        self,
        model: RewardModel,
        mode: str = "shadow",
        agreement: float = 0.9,
        window: int = 500,
        seed: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"shadow mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not 0.0 < agreement <= 1.0 or window < 1:
            raise ValueError("apprentice agreement must be in (0, 1] and its window at least 1")
        self.model = model
        self.mode = mode
        self.agreement = agreement
        self._recent: deque[bool] = deque(maxlen=window)
        #: the candidate's own draws, apart from serving's
        self.rng = np.random.default_rng(seed)
        self._graduated = False

    @property
    def agreement_rate(self) -> float:
        return float(np.mean(self._recent)) if self._recent else 0.0

    def serves_candidate(self) -> bool:
        return self.mode == "apprentice" and self._graduated

    def judge(
        self,
        candidate: HomePage,
        shown: list[records_pb2.LoggedShelf],
        live_scores: np.ndarray,
        free: list[int],
    ) -> records_pb2.ShadowDecision:
        """The shadow decision of the candidate's page (`shown`: its rows as logged) for the request
        the live model scored `live_scores`; `free` are the indices of the shelves open to ranking
        (neither pinned nor excluded). Updates the apprentice's agreement."""
        scores = candidate.shelf_scores
        agrees = bool(free) and int(np.argmax(live_scores[free])) == int(np.argmax(scores[free]))
        self._recent.append(agrees)
        if (
            self.mode == "apprentice"
            and not self._graduated
            and len(self._recent) == self._recent.maxlen
            and self.agreement_rate >= self.agreement
        ):
            self._graduated = True
            log.info(
                "apprentice %s agrees on %.1f%% of the last %d requests: it serves from now on",
                self.model.version, 100 * self.agreement_rate, len(self._recent),
            )  # fmt: skip
        return records_pb2.ShadowDecision(
            model_version=self.model.version,
            mode=self.mode,
            shown=shown,
            ranking_propensity=candidate.ranking_probability,
            agrees=agrees,
        )
