"""The walking skeleton's reward model: a linear score on the user's log-engagement.

score = weight · log(1 + engagement) + bias, vectorised over all candidates at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EngagementLinearModel:
    weight: float = 1.0
    bias: float = 0.0
    version: str = "engagement-linear-v1"

    def score(self, engagement: np.ndarray) -> np.ndarray:
        """engagement: shape (n_candidates,), non-negative counts → scores, same shape."""
        return self.weight * np.log1p(np.asarray(engagement, dtype=np.float64)) + self.bias
