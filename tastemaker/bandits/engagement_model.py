"""The walking skeleton's reward model: a linear score on the user's log-engagement.

score = weight · log(1 + engagement) + bias, vectorised over all candidates at once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class EngagementLinearModel:
    weight: float = 1.0
    bias: float = 0.0
    version: str = "engagement-linear-v1"

    def score(self, engagement: np.ndarray) -> np.ndarray:
        """engagement: shape (n_candidates,), non-negative counts → scores, same shape."""
        return self.weight * np.log1p(np.asarray(engagement, dtype=np.float64)) + self.bias


MODEL_FORMAT = "tastemaker.engagement-linear/1"


def save_model(model: EngagementLinearModel, path: Path) -> None:
    """A saved model version: plain JSON (no pickle) with a SHA-256 of its own content."""
    body = {"format": MODEL_FORMAT, "weight": model.weight, "bias": model.bias, "version": model.version}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    path.write_text(json.dumps({**body, "sha256": digest}, indent=2), encoding="utf-8")


def load_model(path: Path) -> EngagementLinearModel:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a saved model ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: not a saved model of format {MODEL_FORMAT}")
    digest = data.pop("sha256", None)
    if hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest() != digest:
        raise ValueError(f"{path}: checksum mismatch, the file was changed or truncated")
    return EngagementLinearModel(weight=float(data["weight"]), bias=float(data["bias"]), version=str(data["version"]))
