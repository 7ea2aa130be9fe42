"""Reward-model artifacts with a known behaviour, for registry and retraining tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tastemaker.bandits.reward_features import WIDTH, feature_names
from tastemaker.models.artifacts import write_manifest


def engagement_logistic(directory: Path, version: str, engagement_weight: float) -> Path:
    """A logistic reward model that only looks at the user's engagement with each candidate."""
    directory.mkdir(parents=True)
    w = np.zeros((WIDTH, 1))
    w[feature_names().index("log_engagement"), 0] = engagement_weight
    np.savez(directory / "weights.npz", w0=w, b0=np.zeros(1))
    write_manifest(directory, "logistic", version, {"registered_at": "2026-01-01T00:00:00Z"})
    return directory
