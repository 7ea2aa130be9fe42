"""A generic action log with a known answer: five actions with fixed click rates, logged by a
non-uniform policy with known propensities (the CSV/Parquet layout of docs/offline-evaluation.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

RATES = np.array([0.05, 0.10, 0.30, 0.15, 0.20])  # true click rate of each action; position doesn't matter
NAMES = ["red", "green", "blue", "cyan", "pink"]


def generic_columns(n: int = 20_000, seed: int = 0) -> dict[str, list]:
    """Logged by a non-uniform policy (propensities known), two positions, string action ids."""
    rng = np.random.default_rng(seed)
    logging = np.array([0.3, 0.3, 0.1, 0.2, 0.1])
    action = rng.choice(5, size=n, p=logging)
    return {
        "action": [NAMES[a] for a in action],
        "position": rng.integers(0, 2, size=n).tolist(),
        "reward": (rng.random(n) < RATES[action]).astype(float).tolist(),
        "propensity": logging[action].tolist(),
        "timestamp_ms": np.arange(n).tolist(),
        "country": rng.choice(["in", "jp"], size=n).tolist(),
    }


def write_csv(columns: dict[str, list], path: Path) -> Path:
    names = list(columns)
    lines = [",".join(names)] + [",".join(str(columns[c][i]) for c in names) for i in range(len(columns[names[0]]))]
    path.write_text("\n".join(lines) + "\n")
    return path
