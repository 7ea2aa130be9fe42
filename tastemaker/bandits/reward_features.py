"""The reward models' input: one row per (request, candidate), the same at training time (from the
decision log) and at serving time (from the feature store), numpy only.

Columns: log(1 + the user's count of each event type); log(1 + the user's engagement with the
candidate); the level (0 shelf, 1 card); crosses (engagement × level, engagement × the user's
log total activity); the candidate id and each context key=value hashed into one-hot buckets;
the explanation a row is shown under hashed into its own buckets (none: all zero; a model with
pairwise terms, the factorization machine, learns item × explanation × context from these);
the position one-hot (training sees where the item was shown, which absorbs position bias;
serving scores every candidate at position 0).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

#: the user event types, sorted: the first columns count each (the event schema's `EVENT_TYPES`)
COUNT_TYPES = (
    "card_click",
    "card_dwell",
    "home_impression",
    "message_typed",
    "play",
    "shelf_click",
    "shelf_dwell",
    "skip",
    "sticker_sent",
    "sticker_shown",
)
ID_BUCKETS = 64
CONTEXT_BUCKETS = 16
EXPLANATION_BUCKETS = 8
POSITIONS = 8
LEVELS = ("shelf", "card")
WIDTH = len(COUNT_TYPES) + 4 + ID_BUCKETS + CONTEXT_BUCKETS + EXPLANATION_BUCKETS + POSITIONS


def _bucket(text: str, buckets: int) -> int:
    return zlib.crc32(text.encode("utf-8")) % buckets


def feature_names() -> list[str]:
    names = [f"log_count_{t}" for t in COUNT_TYPES]
    names += ["log_engagement", "is_card", "log_engagement_x_card", "log_engagement_x_activity"]
    names += [f"id_{b}" for b in range(ID_BUCKETS)]
    names += [f"context_{b}" for b in range(CONTEXT_BUCKETS)]
    names += [f"explanation_{b}" for b in range(EXPLANATION_BUCKETS)]
    names += [f"position_{p}" for p in range(POSITIONS)]
    return names


def encode(
    counts: np.ndarray,
    engagement: np.ndarray,
    ids: Sequence[str],
    level: str,
    context: Mapping[str, str] | None = None,
    positions: np.ndarray | None = None,
    explanations: Sequence[str] | None = None,
) -> np.ndarray:
    """Rows (len(ids), WIDTH) for one request's candidates at one level, row i shown under
    `explanations[i]` when given ("": none)."""
    n = len(ids)
    out = np.zeros((n, WIDTH))
    log_counts = np.log1p(np.asarray(counts, dtype=np.float64))
    c = len(COUNT_TYPES)
    out[:, :c] = log_counts
    log_engagement = np.log1p(np.asarray(engagement, dtype=np.float64))
    is_card = 1.0 if level == "card" else 0.0
    out[:, c] = log_engagement
    out[:, c + 1] = is_card
    out[:, c + 2] = log_engagement * is_card
    out[:, c + 3] = log_engagement * np.log1p(np.expm1(log_counts).sum())
    base = c + 4
    out[np.arange(n), base + np.array([_bucket(f"{level}:{i}", ID_BUCKETS) for i in ids], dtype=int)] = 1.0
    base += ID_BUCKETS
    for key, value in (context or {}).items():
        out[:, base + _bucket(f"{key}={value}", CONTEXT_BUCKETS)] = 1.0
    base += CONTEXT_BUCKETS
    for i, explanation in enumerate(explanations or ()):
        if explanation:
            out[i, base + _bucket(f"explanation={explanation}", EXPLANATION_BUCKETS)] = 1.0
    base += EXPLANATION_BUCKETS
    position = (
        np.zeros(n, dtype=int) if positions is None else np.minimum(np.asarray(positions, dtype=int), POSITIONS - 1)
    )
    out[np.arange(n), base + position] = 1.0
    return out


def is_held_out(decision_id: str) -> bool:
    """A fifth of decisions, by a hash of the decision id, are held out of training."""
    return int(hashlib.blake2b(decision_id.encode(), digest_size=2).hexdigest(), 16) % 5 == 0
