"""A simulated home page with known ground truth: users with hidden tastes, shelves and cards
with latent traits, and position bias on both levels. Drives `tastemaker up --demo` and tests.

P(click card c of shelf s | shelf at row j, card at column k)
    = sigmoid(sharpness · (u·v_s + u·v_c) − offset) · row_bias[j] · column_bias[k]
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from tastemaker.bandits.catalog import Catalog, ShelfCandidates


@dataclass(frozen=True)
class Click:
    shelf_id: str
    card_id: str


@dataclass
class SimulatedWorld:
    n_shelves: int = 8
    cards_per_shelf: int = 12
    dim: int = 6
    seed: int = 0
    sharpness: float = 3.0
    offset: float = 3.0
    shelf_vectors: np.ndarray = field(init=False)
    card_vectors: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.shelf_vectors = rng.normal(size=(self.n_shelves, self.dim)) / np.sqrt(self.dim)
        self.card_vectors = rng.normal(size=(self.n_shelves, self.cards_per_shelf, self.dim)) / np.sqrt(self.dim)
        self._shelf_index = {self.shelf_id(s): s for s in range(self.n_shelves)}
        self._card_index = {
            self.card_id(s, c): (s, c) for s in range(self.n_shelves) for c in range(self.cards_per_shelf)
        }

    @staticmethod
    def shelf_id(s: int) -> str:
        return f"shelf-{s:02d}"

    @staticmethod
    def card_id(s: int, c: int) -> str:
        return f"s{s:02d}-card-{c:02d}"

    def catalog(self) -> Catalog:
        return Catalog(
            tuple(
                ShelfCandidates(self.shelf_id(s), tuple(self.card_id(s, c) for c in range(self.cards_per_shelf)))
                for s in range(self.n_shelves)
            )
        )

    def user_taste(self, user_id: str) -> np.ndarray:
        rng = np.random.default_rng([self.seed, zlib.crc32(user_id.encode())])
        return rng.normal(size=self.dim) * 1.5

    @staticmethod
    def row_bias(n: int) -> np.ndarray:
        return 1.0 / (1.0 + np.arange(n)) ** 0.7

    @staticmethod
    def column_bias(n: int) -> np.ndarray:
        return 1.0 / (1.0 + np.arange(n)) ** 0.5

    def click_probabilities(self, user_id: str, shown: list[tuple[str, list[str]]]) -> list[np.ndarray]:
        """For each shown shelf (in row order), the click probability of each of its cards."""
        taste = self.user_taste(user_id)
        rows = self.row_bias(len(shown))
        out = []
        for row, (shelf_id, card_ids) in enumerate(shown):
            s = self._shelf_index[shelf_id]
            cards = np.array([self._card_index[c][1] for c in card_ids], dtype=int)
            affinity = taste @ self.shelf_vectors[s] + self.card_vectors[s, cards] @ taste
            p = 1.0 / (1.0 + np.exp(-(self.sharpness * affinity - self.offset)))
            out.append(p * rows[row] * self.column_bias(len(card_ids)))
        return out

    def respond(self, user_id: str, shown: list[tuple[str, list[str]]], rng: np.random.Generator) -> list[Click]:
        """Sample the user's clicks on a shown home page."""
        clicks = []
        for (shelf_id, card_ids), p in zip(shown, self.click_probabilities(user_id, shown), strict=True):
            for card_id in np.asarray(card_ids)[rng.random(len(card_ids)) < p]:
                clicks.append(Click(shelf_id, str(card_id)))
        return clicks
