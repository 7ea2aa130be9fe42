"""A simulated home page with known ground truth: users with hidden tastes, shelves and cards
with latent traits, and position bias on both levels. Drives `tastemaker up --demo` and tests.

P(click card c of shelf s | shelf at row j, card at column k)
    = sigmoid(sharpness · (u·v_s + u·v_c) − offset) · row_bias[j] · column_bias[k]

Tastes drift when `drift` > 0: a user's taste at time t (in rounds, or any clock the caller
keeps) turns from one hidden vector to another, u(t) = cos(drift·t)·u₀ + sin(drift·t)·u₁, so
what a user liked yesterday fades. With the ground truth known, the expected clicks of any page
(`expected_clicks`) and of the best page (`oracle_page`) give a policy's true value and regret.
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
    #: radians of taste rotation per unit of time; 0 keeps tastes fixed
    drift: float = 0.0
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

    def user_taste(self, user_id: str, t: float = 0.0) -> np.ndarray:
        rng = np.random.default_rng([self.seed, zlib.crc32(user_id.encode())])
        start = rng.normal(size=self.dim) * 1.5
        if not self.drift or not t:
            return start
        end = rng.normal(size=self.dim) * 1.5
        return np.cos(self.drift * t) * start + np.sin(self.drift * t) * end

    @staticmethod
    def row_bias(n: int) -> np.ndarray:
        return 1.0 / (1.0 + np.arange(n)) ** 0.7

    @staticmethod
    def column_bias(n: int) -> np.ndarray:
        return 1.0 / (1.0 + np.arange(n)) ** 0.5

    def click_probabilities(self, user_id: str, shown: list[tuple[str, list[str]]], t: float = 0.0) -> list[np.ndarray]:
        """For each shown shelf (in row order), the click probability of each of its cards."""
        rows = self.row_bias(len(shown))
        return [
            self.appeal(user_id, shelf_id, card_ids, t) * rows[row] * self.column_bias(len(card_ids))
            for row, (shelf_id, card_ids) in enumerate(shown)
        ]

    def appeal(self, user_id: str, shelf_id: str, card_ids: list[str], t: float = 0.0) -> np.ndarray:
        """Each card's click probability in the shelf before position bias: a shown card is clicked
        with appeal × row_bias(row) × column_bias(column), whatever else the page shows."""
        taste = self.user_taste(user_id, t)
        s = self._shelf_index[shelf_id]
        cards = np.array([self._card_index[c][1] for c in card_ids], dtype=int)
        affinity = taste @ self.shelf_vectors[s] + self.card_vectors[s, cards] @ taste
        return 1.0 / (1.0 + np.exp(-(self.sharpness * affinity - self.offset)))

    def respond(
        self, user_id: str, shown: list[tuple[str, list[str]]], rng: np.random.Generator, t: float = 0.0
    ) -> list[Click]:
        """Sample the user's clicks on a shown home page."""
        clicks = []
        for (shelf_id, card_ids), p in zip(shown, self.click_probabilities(user_id, shown, t), strict=True):
            for card_id in np.asarray(card_ids)[rng.random(len(card_ids)) < p]:
                clicks.append(Click(shelf_id, str(card_id)))
        return clicks

    def expected_clicks(self, user_id: str, shown: list[tuple[str, list[str]]], t: float = 0.0) -> float:
        """The true value of a page: its expected number of clicks."""
        return float(sum(p.sum() for p in self.click_probabilities(user_id, shown, t)))

    def oracle_page(self, user_id: str, rows: int, columns: int, t: float = 0.0) -> list[tuple[str, list[str]]]:
        """The page with the most expected clicks: in each shelf its most clickable cards first, and
        the shelves by their best cards' unbiased value (position bias is the same for every shelf)."""
        taste = self.user_taste(user_id, t)
        affinity = (taste @ self.shelf_vectors.T)[:, None] + self.card_vectors @ taste  # (shelves, cards)
        p = 1.0 / (1.0 + np.exp(-(self.sharpness * affinity - self.offset)))
        best_cards = np.argsort(-p, axis=1)[:, :columns]
        value = (np.take_along_axis(p, best_cards, axis=1) * self.column_bias(columns)[: best_cards.shape[1]]).sum(1)
        order = np.argsort(-value)[:rows]
        return [(self.shelf_id(s), [self.card_id(s, c) for c in best_cards[s]]) for s in order]
