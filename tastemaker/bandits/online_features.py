"""What the online strategies (LinUCB, Thompson, SquareCB's linear scores) learn on: a candidate's
row x = [1, log(1 + the user's engagement with it), a hashed block of bounded width].

The hashed block (signed feature hashing, `width` columns) holds, for each candidate:

- its own numeric features from the caller (`Shelf.features`, a card's features: a freshness, a
  content embedding, an editorial score), each value at h(name);
- the user's numeric features crossed with them: u·v at h(user-name × name);
- each request-context key=value crossed with the candidate (1 at h(k=v × level:id)), with its
  numeric features (v at h(k=v × name)) and with its engagement;
- the explanation it is shown under (1 at h(explanation=e)), crossed with the context.

So one linear model, of a fixed width whatever the number of users, items, context values or
features, learns how context and the user's features change what a candidate is worth; its
posterior (A is (2 + width)², b is 2 + width) stays small enough to live in Redis and be shared
by every replica (`features.linear_store`).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: the hashed block's default width: x has 2 + WIDTH columns
WIDTH = 62


@lru_cache(maxsize=65536)
def _slot(text: str, width: int) -> tuple[int, float]:
    """(column, sign) of a hashed name: the column from the CRC's low bits, the sign from its top bit."""
    h = zlib.crc32(text.encode("utf-8"))
    return h % width, (1.0 if h >> 31 else -1.0)


@dataclass(frozen=True)
class OnlineFeatures:
    """The encoder (module docstring); `dim` = 2 + width."""

    width: int = WIDTH

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"`width` must be at least 1, got {self.width}")

    @property
    def dim(self) -> int:
        return 2 + self.width

    def encode(
        self,
        level: str,
        ids: Sequence[str],
        engagement: np.ndarray,
        context: Mapping[str, str] | None = None,
        features: Sequence[Mapping[str, float]] | None = None,
        user: Mapping[str, float] | None = None,
        explanations: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Rows (len(ids), dim): one per candidate, with `features[i]` its own numeric features and
        `explanations[i]` what it is shown under ("" or None: nothing)."""
        n = len(ids)
        x = np.zeros((n, self.dim))
        x[:, 0] = 1.0
        x[:, 1] = np.log1p(np.asarray(engagement, dtype=np.float64))
        contexts = [f"{k}={v}" for k, v in sorted((context or {}).items())]
        users = sorted((user or {}).items())
        width = self.width
        for i in range(n):
            row = x[i, 2:]
            own = sorted(features[i].items()) if features is not None else []
            for kv in contexts:
                column, sign = _slot(f"{kv}*{level}:{ids[i]}", width)
                row[column] += sign
                column, sign = _slot(f"{kv}*engagement", width)
                row[column] += sign * x[i, 1]
            for name, value in own:
                column, sign = _slot(f"f:{name}", width)
                row[column] += sign * value
                for kv in contexts:
                    column, sign = _slot(f"{kv}*f:{name}", width)
                    row[column] += sign * value
                for user_name, user_value in users:
                    column, sign = _slot(f"u:{user_name}*f:{name}", width)
                    row[column] += sign * user_value * value
            explanation = explanations[i] if explanations is not None else ""
            if explanation:
                column, sign = _slot(f"explanation={explanation}", width)
                row[column] += sign
                for kv in contexts:
                    column, sign = _slot(f"{kv}*explanation={explanation}", width)
                    row[column] += sign
        return x
