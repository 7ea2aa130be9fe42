"""A home decision read once, for every offline job that walks its page.

`LoggedPage.of(rewarded)` writes the decision out (a packed one unpacked, rows at 0, 1, 2, …:
`log_files.compact_rows`) and derives, once, what the estimators, the policies re-run on the log,
the cell reward model and the propensity check each used to re-derive from the raw `DecisionLog`:
the free and pinned rows, the logged candidates with their scores (as the strategies take them),
each candidate's index, every shown item's cell, each row's reward and the logged feature vector.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tastemaker.bandits.strategies import Candidates
from tastemaker.records.feature_vector import LoggedVector
from tastemaker.records.log_files import compact_rows
from tastemaker.v1 import records_pb2


@dataclass(frozen=True, eq=False)
class LoggedPage:
    rewarded: records_pb2.RewardedDecision
    #: free (unpinned) shown row → its index among the free rows (the strategy ranked only those)
    slot_of_row: dict[int, int]
    #: pinned row → its shelf id
    pinned: dict[int, str]
    #: the ranked (free) candidate shelves with their logged scores, and each one's index
    shelves: Candidates
    shelf_index: dict[str, int]
    #: per shown row (in logged order): its candidate cards with their logged scores, and each one's index
    cards: tuple[Candidates, ...]
    card_index: tuple[dict[str, int], ...]
    #: every shown item → its cell (row, column): column 0 the shelf, 1 + k its k-th card
    cells: dict[str, tuple[int, int]]
    #: the logged feature vector, by name
    vector: LoggedVector
    #: per shown row: the explanation variants with their logged scores and the shown one's index
    #: (None for a row shown without an explanation)
    explanations: tuple[tuple[Candidates, int] | None, ...] = ()

    @property
    def decision(self) -> records_pb2.DecisionLog:
        return self.rewarded.decision

    @classmethod
    def of(cls, rewarded: records_pb2.RewardedDecision) -> LoggedPage:
        """Read `rewarded` (written out and rows compacted in place, as every reader does)."""
        decision = compact_rows(rewarded).decision
        pinned = {p.position: p.shelf_id for p in decision.pinned_shelves}
        free_rows = sorted(s.position for s in decision.shown if s.position not in pinned)
        shelf_ids = tuple(decision.shelf_candidates.item_ids)
        cells: dict[str, tuple[int, int]] = {}
        cards, card_index = [], []
        for shelf in decision.shown:
            cells[shelf.shelf_id] = (shelf.position, 0)
            for card in shelf.cards:
                cells[card.card_id] = (shelf.position, 1 + card.position)
            ids = tuple(shelf.card_candidates.item_ids)
            cards.append(Candidates(ids, np.asarray(shelf.card_candidates.scores)))
            card_index.append({card_id: c for c, card_id in enumerate(ids)})
        return cls(
            rewarded=rewarded,
            slot_of_row={row: i for i, row in enumerate(free_rows)},
            pinned=pinned,
            shelves=Candidates(shelf_ids, np.asarray(decision.shelf_candidates.scores)),
            shelf_index={shelf_id: c for c, shelf_id in enumerate(shelf_ids)},
            cards=tuple(cards),
            card_index=tuple(card_index),
            cells=cells,
            vector=LoggedVector.of(decision),
            explanations=tuple(_explanation(decision.decision_id, shelf) for shelf in decision.shown),
        )

    @classmethod
    def of_decision(cls, decision: records_pb2.DecisionLog) -> LoggedPage:
        """A decision without outcomes (the live propensity check, tests)."""
        return cls.of(records_pb2.RewardedDecision(decision=decision))

    def row_rewards(self, rows: int) -> np.ndarray:
        """Reward per shown row (a shelf and its cards)."""
        out = np.zeros(rows)
        for outcome in self.rewarded.outcomes:
            cell = self.cells.get(outcome.item_id)
            if cell is not None:
                out[cell[0]] += outcome.reward
        return out

    def shown_cells(self) -> Iterable[tuple[tuple[int, int], str, float]]:
        return shown_cells(self.decision)


def shown_cells(decision: records_pb2.DecisionLog) -> Iterable[tuple[tuple[int, int], str, float]]:
    """((row, column), item, its logged propensity in that cell) for every shown shelf and card; a
    card's propensity is its shelf's times its own. A shelf shown under an explanation is the
    (shelf, explanation) pair: its row's propensities include P(explanation | shelf)."""
    for shelf in decision.shown:
        p_shelf = shelf.propensity * (shelf.explanation_propensity if shelf.explanation_id else 1.0)
        yield (shelf.position, 0), shelf.shelf_id, p_shelf
        for card in shelf.cards:
            yield (shelf.position, 1 + card.position), card.card_id, p_shelf * card.propensity


def _explanation(decision_id: str, shelf: records_pb2.LoggedShelf) -> tuple[Candidates, int] | None:
    """A shown row's explanation variants with their logged scores, and the shown one's index."""
    if not shelf.explanation_id:
        return None
    ids = tuple(shelf.explanation_candidates.item_ids)
    scores = np.asarray(shelf.explanation_candidates.scores)
    if shelf.explanation_id not in ids or len(scores) != len(ids):
        raise ValueError(
            f"decision {decision_id}: shelf {shelf.shelf_id!r} was shown under {shelf.explanation_id!r}, "
            "which its logged explanation variants (with one score each) do not hold"
        )
    return Candidates(ids, scores), ids.index(shelf.explanation_id)


def pages_of(decisions: Iterable[records_pb2.RewardedDecision | LoggedPage]) -> list[LoggedPage]:
    """Each decision read once (pages pass through as they are)."""
    return [d if isinstance(d, LoggedPage) else LoggedPage.of(d) for d in decisions]
