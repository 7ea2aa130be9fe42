"""What the home reward models learn from, read off rewarded decisions: one group per decision and
level (the shelves of the page; the cards of each shown shelf), holding every candidate of that
level with its features and the cells (positions) the page filled, each with the item shown
there, its propensity and its label.

- A shelf group's cells are the page's rows: propensity = P(shelf at that row), label = a click
  anywhere in the shelf's row.
- A card group's cells are one shown shelf's columns: propensity = P(card at that column | the
  shelf shown at its row), `outer_propensity` = the shelf's, label = a click on the card.

A shelf shown under an explanation is the (shelf, explanation) pair: its rows and its cards' rows
carry the explanation (`reward_features.encode`), and every propensity includes P(explanation | shelf).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from tastemaker.bandits.reward_features import encode, is_held_out
from tastemaker.records.feature_vector import CARD, SHELF, LoggedVector
from tastemaker.records.logged_page import LoggedPage
from tastemaker.v1 import records_pb2


@dataclass(frozen=True)
class Cell:
    item_id: str
    position: int
    #: P(item at this position | the group's outer choice); for shelves, the marginal
    propensity: float
    label: float


@dataclass(frozen=True)
class LevelGroup:
    decision_id: str
    #: a fifth of decisions, by a hash of the decision id: the training metrics' held-out rows
    held: bool
    level: str
    #: every candidate of this level, shown or not, and its logged engagement
    candidates: tuple[str, ...]
    engagement: dict[str, float]
    counts: np.ndarray
    context: dict[str, str]
    cells: tuple[Cell, ...]
    #: the propensity of the choice this group sits in (a card group's shelf); 1 for shelves
    outer_propensity: float = 1.0
    #: item → the explanation it was shown under (a card group: its shelf's, for every candidate)
    explanations: dict[str, str] | None = None

    def encode(self, ids: Sequence[str], positions: Sequence[int]) -> np.ndarray:
        """Feature rows, shape (len(ids), WIDTH), for `ids` at `positions`."""
        engagement = np.array([self.engagement.get(i, 0.0) for i in ids])
        said = [self.explanations.get(i, "") for i in ids] if self.explanations else None
        return encode(
            self.counts, engagement, list(ids), self.level, self.context, np.asarray(positions), explanations=said
        )

    def shown_rows(self) -> np.ndarray:
        return self.encode([c.item_id for c in self.cells], [c.position for c in self.cells])


def logged_home(
    decisions: Sequence[records_pb2.RewardedDecision],
) -> Iterator[tuple[records_pb2.RewardedDecision, LoggedVector, np.ndarray, dict[str, str], bool]]:
    """Each home decision that showed something, read once (`records.logged_page`), with its
    logged vector, the user's counts, its context and whether it is held out."""
    for rewarded in decisions:
        decision = rewarded.decision
        if decision.surface != "home" or not decision.shown:
            continue
        page = LoggedPage.of(rewarded)
        yield (
            page.rewarded,
            page.vector,
            page.vector.counts(),
            dict(decision.context),
            is_held_out(decision.decision_id),
        )


def level_groups(decisions: Sequence[records_pb2.RewardedDecision]) -> Iterator[LevelGroup]:
    """Every home decision's shelf group, then one card group per shown shelf with cards."""
    for rewarded, vector, counts, context, held in logged_home(decisions):
        decision = rewarded.decision
        clicked = {o.item_id for o in rewarded.outcomes if o.reward > 0}
        shelves = list(decision.shown)
        shelf_ids = list(decision.shelf_candidates.item_ids) or [s.shelf_id for s in shelves]
        said = {s.shelf_id: s.explanation_id for s in shelves if s.explanation_id}
        yield LevelGroup(
            decision.decision_id, held, "shelf", tuple(shelf_ids),
            dict(zip(shelf_ids, vector.engagement(SHELF, shelf_ids).tolist(), strict=True)), counts, context,
            tuple(
                Cell(s.shelf_id, s.position, s.propensity * _explained(s),
                     float(s.shelf_id in clicked or any(c.card_id in clicked for c in s.cards)))
                for s in shelves
            ),
            explanations=said or None,
        )  # fmt: skip
        for shelf in shelves:
            if not shelf.cards:
                continue
            card_ids = list(shelf.card_candidates.item_ids) or [c.card_id for c in shelf.cards]
            yield LevelGroup(
                decision.decision_id, held, "card", tuple(card_ids),
                dict(zip(card_ids, vector.engagement(CARD, card_ids).tolist(), strict=True)), counts, context,
                tuple(Cell(c.card_id, c.position, c.propensity, float(c.card_id in clicked)) for c in shelf.cards),
                outer_propensity=shelf.propensity * _explained(shelf),
                explanations={c: shelf.explanation_id for c in card_ids} if shelf.explanation_id else None,
            )  # fmt: skip


def _explained(shelf: records_pb2.LoggedShelf) -> float:
    """P(the explanation the shelf was shown under | the shelf); 1 when it had none."""
    return shelf.explanation_propensity if shelf.explanation_id else 1.0


def training_rows(
    decisions: Sequence[records_pb2.RewardedDecision],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X, y, held_out, propensity) over every shown shelf and card of the home decisions; a card's
    propensity is its shelf's times its own."""
    blocks: list[np.ndarray] = []
    labels: list[float] = []
    held: list[bool] = []
    propensities: list[float] = []
    for group in level_groups(decisions):
        blocks.append(group.shown_rows())
        labels.extend(c.label for c in group.cells)
        held.extend([group.held] * len(group.cells))
        propensities.extend(group.outer_propensity * c.propensity for c in group.cells)
    if not blocks:
        raise ValueError("no shown home items to train on")
    return np.vstack(blocks), np.array(labels), np.array(held, dtype=bool), np.array(propensities)
