"""The reward model under DM and DR on home-page logs: q̂(cell, item), the mean reward of an item
in a cell of the page grid (row, column; column 0 is the shelf, 1+k its k-th card), smoothed
toward the cell's mean and cross-fitted over decisions (fold = a hash of the decision id).

For a target policy π, the model's expected reward in a cell is
    shelf cell (r, 0):  q̄ = Σ_s π(s at r) · q̂((r, 0), s)
    card cell (r, c):   q̄ = Σ_s π(s at r) · Σ_a π(a at c | s) · q̂((r, c), a)
over every candidate shelf and its candidate cards (scores of shelves that were not shown are
recomputed from the logged feature vector). Cells are those the logged page showed.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from tastemaker.bandits.strategies import Strategy
from tastemaker.records.logged_page import LoggedPage, pages_of, shown_cells
from tastemaker.training.evaluation.home_policies import HomePolicy
from tastemaker.training.progress import progress
from tastemaker.v1 import records_pb2

FOLDS = 2
PRIOR_STRENGTH = 20.0

Cell = tuple[int, int]


def fold_of(decision_id: str, folds: int = FOLDS) -> int:
    return int.from_bytes(hashlib.blake2b(decision_id.encode(), digest_size=8).digest(), "big") % folds


def _rewarded_cells(rewarded: records_pb2.RewardedDecision) -> list[tuple[Cell, str, float]]:
    """(cell, item, the item's summed reward) of every shown shelf and card."""
    reward_of: dict[str, float] = defaultdict(float)
    for outcome in rewarded.outcomes:
        reward_of[outcome.item_id] += outcome.reward
    return [(cell, item, reward_of.get(item, 0.0)) for cell, item, _ in shown_cells(rewarded.decision)]


def model_sums(
    rewarded: records_pb2.RewardedDecision | LoggedPage,
) -> list[tuple[tuple[int, Cell, str], tuple[float, float]]]:
    """The model's sufficient statistics from one decision: (fold, cell, item) → (reward, 1), and
    (fold, cell, "") → (reward, 1) for the cell's own mean. Sums of these fit the model anywhere."""
    k = fold_of(rewarded.decision.decision_id)
    out = []
    for cell, item, reward in _rewarded_cells(rewarded.rewarded if isinstance(rewarded, LoggedPage) else rewarded):
        out.append(((k, cell, item), (reward, 1.0)))
        out.append(((k, cell, ""), (reward, 1.0)))
    return out


class CellRewardModel:
    """Cross-fitted q̂(cell, item) from summed statistics (`model_sums`); `fit` sums them in memory."""

    def __init__(
        self, sums: dict[tuple[int, Cell, str], tuple[float, float]], prior_strength: float = PRIOR_STRENGTH
    ) -> None:
        self._prior = prior_strength
        self._cache: dict[tuple[int, Cell, tuple[str, ...]], np.ndarray] = {}
        self._sums = sums

    @classmethod
    def fit(cls, decisions: Sequence[records_pb2.RewardedDecision | LoggedPage]) -> CellRewardModel:
        sums: dict[tuple[int, Cell, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
        for rewarded in decisions:
            for key, (reward, count) in model_sums(rewarded):
                sums[key][0] += reward
                sums[key][1] += count
        return cls({key: (v[0], v[1]) for key, v in sums.items()})

    def q(self, decision_id: str, cell: Cell, items: Sequence[str]) -> np.ndarray:
        """q̂(cell, item) for each item, from the folds other than the decision's own."""
        key = (fold_of(decision_id), cell, tuple(items))
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._table(key[0], cell, items)
        return cached

    def _table(self, own: int, cell: Cell, items: Sequence[str]) -> np.ndarray:
        others = [f for f in range(FOLDS) if f != own]

        def summed(item: str) -> tuple[float, float]:
            total = n = 0.0
            for f in others:
                entry = self._sums.get((f, cell, item))
                if entry is not None:
                    total, n = total + entry[0], n + entry[1]
            return total, n

        cell_total, cell_n = summed("")
        cell_mean = cell_total / cell_n if cell_n else 0.0
        out = np.empty(len(items))
        for i, item in enumerate(items):
            total, n = summed(item)
            out[i] = (total + self._prior * cell_mean) / (n + self._prior)
        return out


def q_arrays(
    decisions: Sequence[records_pb2.RewardedDecision | LoggedPage],
    model: CellRewardModel,
    policy: HomePolicy,
    rows: int,
    cols: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(q̂ of each logged item in its cell, q̄ of the target in that cell), each (n, rows·cols)."""
    pages = pages_of(decisions)
    q_logged = np.zeros((len(pages), rows, cols))
    q_target = np.zeros((len(pages), rows, cols))
    for i, page in enumerate(pages):
        decision = page.decision
        if not decision.shown:
            continue
        strategy = policy.strategy_for(decision)
        slot_of_row, pinned = page.slot_of_row, page.pinned
        shelf_ids = list(page.shelves.ids)
        if strategy is None:  # the logging policy, not re-runnable: q̄ is the model at the logged items
            for cell, item, _ in page.shown_cells():
                q_logged[i, cell[0], cell[1]] = q_target[i, cell[0], cell[1]] = model.q(
                    decision.decision_id, cell, [item]
                )[0]
            continue
        shelf_marginals = strategy.marginals(policy.shelf_candidates(page), len(slot_of_row))
        cards = TargetCards(policy, page, strategy)
        for cell, item, _ in page.shown_cells():
            row, col = cell
            q_logged[i, row, col] = model.q(decision.decision_id, cell, [item])[0]
            # which shelf the target puts in this row, with what probability
            if row in pinned:
                row_shelves = [(pinned[row], 1.0)]
            else:
                slot = slot_of_row[row]
                row_shelves = [(sid, float(shelf_marginals[s, slot])) for s, sid in enumerate(shelf_ids)]
            if col == 0:
                q_target[i, row, 0] = sum(
                    p * model.q(decision.decision_id, cell, [sid])[0] for sid, p in row_shelves if p > 0
                )
                continue
            expected = 0.0
            for shelf_id, p in row_shelves:
                if p <= 0:  # a shelf the target never puts here: its cards are not needed
                    continue
                ids, marginals = cards[shelf_id]
                if col - 1 < marginals.shape[1]:
                    expected += p * float(marginals[:, col - 1] @ model.q(decision.decision_id, cell, ids))
            q_target[i, row, col] = expected
    n = len(pages)
    return q_logged.reshape(n, -1), q_target.reshape(n, -1)


def cascade_q(
    decisions: Sequence[records_pb2.RewardedDecision | LoggedPage],
    model: CellRewardModel,
    policy: HomePolicy,
    rows: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Cascade-DR's model terms per page row l (a shelf and its cards), each (n, rows):
    q̂_l, the model's reward for the row as logged (the sum over its cells), and q̄_l, the target's
    expected q̂ for row l given the logged rows above it:

        q̄_l = Σ_s π(s at l | the logged shelves above) · [q̂((l, 0), s) + Σ_c Σ_a π(a at c | s) q̂((l, 1 + c), a)]

    with π(s at l | above) = π(above, then s) / π(above) from the target's ranking probabilities
    (a pinned row: its shelf, with probability 1) and each shelf's cards ranked by the target on
    their own. q̄_l is 0 where the target never shows the logged rows above (their weight is 0
    too). None when the target cannot be re-run on some decision."""
    pages = pages_of(decisions)
    q_logged = np.zeros((len(pages), rows))
    q_target = np.zeros((len(pages), rows))
    for i, page in enumerate(progress(pages, f"{policy.name}: cascade-DR model terms")):
        decision = page.decision
        if not decision.shown:
            continue
        strategy = policy.strategy_for(decision)
        if strategy is None:
            return None
        did = decision.decision_id
        for cell, item, _ in page.shown_cells():
            q_logged[i, cell[0]] += model.q(did, cell, [item])[0]
        slot_of_row, pinned = page.slot_of_row, page.pinned
        candidates = policy.shelf_candidates(page)
        shelf_ids = list(candidates.ids)
        index = page.shelf_index
        order = [index[s.shelf_id] for s in decision.shown if s.position in slot_of_row]
        row_value = _RowValues(model, policy, page, strategy)
        for shelf in decision.shown:
            row = shelf.position
            if row in pinned:
                q_target[i, row] = row_value(pinned[row], row)
                continue
            slot = slot_of_row[row]
            above = strategy.ranking_probability(candidates, np.array(order[:slot], dtype=int)) if slot else 1.0
            if above <= 0:
                continue
            shown_above = set(order[:slot])
            for s, shelf_id in enumerate(shelf_ids):
                if s in shown_above:
                    continue
                p = strategy.ranking_probability(candidates, np.array([*order[:slot], s], dtype=int)) / above
                if p > 0:
                    q_target[i, row] += p * row_value(shelf_id, row)
    return q_logged, q_target


class TargetCards:
    """The target's card marginals for each shelf of one decision, computed once per shelf:
    shelf id → (its candidate cards, P(card at column c | the shelf)), shape (cards, k)."""

    def __init__(self, policy: HomePolicy, page: LoggedPage, strategy: Strategy) -> None:
        self._policy, self._page, self._strategy = policy, page, strategy
        decision = page.decision
        self._card_k = decision.max_cards_per_shelf or max(len(s.cards) for s in decision.shown)
        self._cards: dict[str, tuple[list[str], np.ndarray]] = {}

    def __getitem__(self, shelf_id: str) -> tuple[list[str], np.ndarray]:
        if shelf_id not in self._cards:
            ranked = self._policy.candidate_cards(self._page, shelf_id)
            k = min(self._card_k, len(ranked.ids))
            self._cards[shelf_id] = (list(ranked.ids), self._strategy.marginals(ranked, k))
        return self._cards[shelf_id]


class _RowValues:
    """q̂ of a shelf in a row with the target's cards for it (`cascade_q`), for one decision."""

    def __init__(self, model: CellRewardModel, policy: HomePolicy, page: LoggedPage, strategy: Strategy) -> None:
        self._model, self._decision = model, page.decision
        self._cards = TargetCards(policy, page, strategy)

    def __call__(self, shelf_id: str, row: int) -> float:
        ids, marginals = self._cards[shelf_id]
        did = self._decision.decision_id
        value = float(self._model.q(did, (row, 0), [shelf_id])[0])
        for c in range(marginals.shape[1]):
            value += float(marginals[:, c] @ self._model.q(did, (row, 1 + c), ids))
        return value
