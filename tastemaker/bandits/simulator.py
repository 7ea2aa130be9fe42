"""A simulated home page with known ground truth: users with hidden tastes, shelves and cards
with latent traits, and position bias on both levels. Drives `tastemaker up --demo` and tests.

P(click card c of shelf s | shelf at row j, card at column k)
    = sigmoid(sharpness · (u·v_s + u·v_c) − offset) · row_bias[j] · column_bias[k]

Tastes drift when `drift` > 0: a user's taste at time t (in rounds, or any clock the caller
keeps) turns from one hidden vector to another, u(t) = cos(drift·t)·u₀ + sin(drift·t)·u₁, so
what a user liked yesterday fades. With the ground truth known, the expected clicks of any page
(`expected_clicks`) and of the best page (`oracle_page`) give a policy's true value and regret.

Two optional parts make the other choices matter (both off by default, which keeps the world above):

- **context** (`context_strength` > 0): a request's hour and device (`sample_context`) shift every
  user's taste, u(ctx) = u + strength·(h[hour] + d[device]), so what a user wants in the morning on
  a phone is not what they want at night on a TV;
- **explanations** (`explanations`, e.g. "because-you-played", "popular-near-you"): the header a
  shelf is shown under decides whether the user looks at the row at all: every card's click
  probability is multiplied by the row's attention sigmoid(1 + m[e] + z_u[e]), a mean effect (one
  explanation is best on average, `explanation_effect`) plus the user's own response
  (`explanation_spread`: many users' best explanation is not the average best, as BaRT found).
  A row shown without one gets sigmoid(1).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
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
    #: how far a request's hour and device move a user's taste (0: context does not matter)
    context_strength: float = 0.0
    #: the explanations a shelf can be shown under (empty: none)
    explanations: tuple[str, ...] = ()
    #: the spread of the explanations' mean effects, and of each user's own response around them
    explanation_effect: float = 0.25
    explanation_spread: float = 1.0
    shelf_vectors: np.ndarray = field(init=False)
    card_vectors: np.ndarray = field(init=False)

    HOURS = ("morning", "afternoon", "evening", "night")
    DEVICES = ("phone", "tablet", "tv")

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.shelf_vectors = rng.normal(size=(self.n_shelves, self.dim)) / np.sqrt(self.dim)
        self.card_vectors = rng.normal(size=(self.n_shelves, self.cards_per_shelf, self.dim)) / np.sqrt(self.dim)
        extra = np.random.default_rng([self.seed, 1])  # drawn apart, so the base world stays as it was
        self._hour_shift = {h: extra.normal(size=self.dim) * 1.5 for h in self.HOURS}
        self._device_shift = {d: extra.normal(size=self.dim) * 1.5 for d in self.DEVICES}
        self._explanation_mean = {
            e: self.explanation_effect * m
            for e, m in zip(self.explanations, np.linspace(1.0, -1.0, len(self.explanations)), strict=True)
        }
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

    def sample_context(self, rng: np.random.Generator) -> dict[str, str]:
        """A request's context: an hour of the day and a device, uniformly."""
        return {"hour": self.HOURS[int(rng.integers(len(self.HOURS)))], "device": self.DEVICES[int(rng.integers(3))]}

    def user_taste(self, user_id: str, t: float = 0.0, context: Mapping[str, str] | None = None) -> np.ndarray:
        rng = np.random.default_rng([self.seed, zlib.crc32(user_id.encode())])
        start = rng.normal(size=self.dim) * 1.5
        if self.drift and t:
            end = rng.normal(size=self.dim) * 1.5
            start = np.cos(self.drift * t) * start + np.sin(self.drift * t) * end
        if self.context_strength and context:
            shift = self._hour_shift.get(context.get("hour", ""), 0.0) + self._device_shift.get(
                context.get("device", ""), 0.0
            )
            start = start + self.context_strength * shift
        return start

    def attention(self, user_id: str, explanation: str | None) -> float:
        """P(the user looks at a row shown under `explanation`): 1 in a world without explanations."""
        if not self.explanations:
            return 1.0
        return float(1.0 / (1.0 + np.exp(-(1.0 + self.explanation_shift(user_id, explanation)))))

    def explanation_shift(self, user_id: str, explanation: str | None) -> float:
        """How much `explanation` moves this user's attention to a row, in logits (0 for none)."""
        if not explanation:
            return 0.0
        if explanation not in self._explanation_mean:
            raise ValueError(f"unknown explanation {explanation!r}; this world has {self.explanations}")
        rng = np.random.default_rng([self.seed, zlib.crc32(user_id.encode()), 2])
        own = rng.normal(size=len(self.explanations)) * self.explanation_spread
        return float(self._explanation_mean[explanation] + own[self.explanations.index(explanation)])

    def best_explanation(self, user_id: str) -> str | None:
        """The explanation this user responds to most (None in a world without explanations)."""
        if not self.explanations:
            return None
        return max(self.explanations, key=lambda e: self.explanation_shift(user_id, e))

    @staticmethod
    def row_bias(n: int) -> np.ndarray:
        return 1.0 / (1.0 + np.arange(n)) ** 0.7

    @staticmethod
    def column_bias(n: int) -> np.ndarray:
        return 1.0 / (1.0 + np.arange(n)) ** 0.5

    def click_probabilities(
        self,
        user_id: str,
        shown: list[tuple[str, list[str]]],
        t: float = 0.0,
        context: Mapping[str, str] | None = None,
        explanations: Sequence[str | None] | None = None,
    ) -> list[np.ndarray]:
        """For each shown shelf (in row order, under `explanations[row]` when given), the click
        probability of each of its cards."""
        rows = self.row_bias(len(shown))
        said = list(explanations) if explanations is not None else [None] * len(shown)
        return [
            self.appeal(user_id, shelf_id, card_ids, t, context, said[row])
            * rows[row]
            * self.column_bias(len(card_ids))
            for row, (shelf_id, card_ids) in enumerate(shown)
        ]

    def appeal(
        self,
        user_id: str,
        shelf_id: str,
        card_ids: list[str],
        t: float = 0.0,
        context: Mapping[str, str] | None = None,
        explanation: str | None = None,
    ) -> np.ndarray:
        """Each card's click probability in the shelf before position bias: a shown card is clicked
        with appeal × row_bias(row) × column_bias(column), whatever else the page shows."""
        taste = self.user_taste(user_id, t, context)
        s = self._shelf_index[shelf_id]
        cards = np.array([self._card_index[c][1] for c in card_ids], dtype=int)
        affinity = taste @ self.shelf_vectors[s] + self.card_vectors[s, cards] @ taste
        appeal = 1.0 / (1.0 + np.exp(-(self.sharpness * affinity - self.offset)))
        return appeal * self.attention(user_id, explanation)

    def respond(
        self,
        user_id: str,
        shown: list[tuple[str, list[str]]],
        rng: np.random.Generator,
        t: float = 0.0,
        context: Mapping[str, str] | None = None,
        explanations: Sequence[str | None] | None = None,
    ) -> list[Click]:
        """Sample the user's clicks on a shown home page."""
        clicks = []
        probabilities = self.click_probabilities(user_id, shown, t, context, explanations)
        for (shelf_id, card_ids), p in zip(shown, probabilities, strict=True):
            for card_id in np.asarray(card_ids)[rng.random(len(card_ids)) < p]:
                clicks.append(Click(shelf_id, str(card_id)))
        return clicks

    def expected_clicks(
        self,
        user_id: str,
        shown: list[tuple[str, list[str]]],
        t: float = 0.0,
        context: Mapping[str, str] | None = None,
        explanations: Sequence[str | None] | None = None,
    ) -> float:
        """The true value of a page: its expected number of clicks."""
        return float(sum(p.sum() for p in self.click_probabilities(user_id, shown, t, context, explanations)))

    def oracle_page(
        self, user_id: str, rows: int, columns: int, t: float = 0.0, context: Mapping[str, str] | None = None
    ) -> list[tuple[str, list[str]]]:
        """The page with the most expected clicks: in each shelf its most clickable cards first, and
        the shelves by their best cards' unbiased value (position bias is the same for every shelf).
        In a world with explanations every row is shown under the user's best one (`best_explanation`),
        which scales every shelf alike and so leaves this order the best."""
        taste = self.user_taste(user_id, t, context)
        affinity = (taste @ self.shelf_vectors.T)[:, None] + self.card_vectors @ taste  # (shelves, cards)
        p = 1.0 / (1.0 + np.exp(-(self.sharpness * affinity - self.offset)))
        best_cards = np.argsort(-p, axis=1)[:, :columns]
        value = (np.take_along_axis(p, best_cards, axis=1) * self.column_bias(columns)[: best_cards.shape[1]]).sum(1)
        order = np.argsort(-value)[:rows]
        return [(self.shelf_id(s), [self.card_id(s, c) for c in best_cards[s]]) for s in order]
