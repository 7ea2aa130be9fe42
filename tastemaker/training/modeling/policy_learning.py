"""Learning the policy itself from the logs (counterfactual risk minimisation), rather than a
reward model under it: BanditNet (Joachims, Swaminathan & de Rijke, ICLR 2018) — the
self-normalised IPS objective with the Lagrangian trick, over a softmax policy per page cell.

For every shown cell i (a shelf in its row, or a card in its shelf), the policy is a softmax over
that cell's candidates of θ·x (x from `reward_features.encode`, position included), and

    maximise  (1/n) Σ_i (r_i − λ) · π_θ(a_i | x_i) / p_i  − (l2/2)·‖θ‖²

where a_i is the logged item, p_i its logged propensity and r_i its reward. Subtracting λ is the
Lagrangian form of self-normalisation: λ is chosen from a grid by the self-normalised IPS value
on held-out decisions. The result serves like any dense model (`kind = "banditnet"`): its score
is sigmoid(θ·x), which ranks as the policy does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tastemaker.bandits.reward_features import WIDTH, encode
from tastemaker.records.feature_vector import CARD, SHELF
from tastemaker.training.modeling.reward_rows import logged_home
from tastemaker.v1 import records_pb2


@dataclass(frozen=True)
class CellSets:
    x: np.ndarray  # (n, m, d): each cell's candidates, padded
    mask: np.ndarray  # (n, m): real candidates
    logged: np.ndarray  # (n,): the logged candidate's index
    propensity: np.ndarray  # (n,)
    reward: np.ndarray  # (n,)
    held: np.ndarray  # (n,): held out (by a hash of the decision id)


def cell_sets(decisions: Sequence[records_pb2.RewardedDecision]) -> CellSets:
    rows: list[tuple[np.ndarray, int, float, float, bool]] = []
    for rewarded, vector, counts, context, hold in logged_home(decisions):
        decision = rewarded.decision
        reward_of: dict[str, float] = {}
        for outcome in rewarded.outcomes:
            reward_of[outcome.item_id] = reward_of.get(outcome.item_id, 0.0) + outcome.reward
        pinned = {p.position for p in decision.pinned_shelves}
        shelf_ids = list(decision.shelf_candidates.item_ids)
        for shelf in decision.shown:
            row_reward = reward_of.get(shelf.shelf_id, 0.0) + sum(reward_of.get(c.card_id, 0.0) for c in shelf.cards)
            if shelf.position not in pinned and shelf.shelf_id in shelf_ids:
                engagement = vector.engagement(SHELF, shelf_ids)
                x = encode(counts, engagement, shelf_ids, "shelf", context, np.full(len(shelf_ids), shelf.position))
                rows.append((x, shelf_ids.index(shelf.shelf_id), shelf.propensity, row_reward, hold))
            card_ids = list(shelf.card_candidates.item_ids)
            engagement = vector.engagement(CARD, card_ids)
            for card in shelf.cards:
                x = encode(counts, engagement, card_ids, "card", context, np.full(len(card_ids), card.position))
                rows.append((x, card_ids.index(card.card_id), card.propensity, reward_of.get(card.card_id, 0.0), hold))
    if not rows:
        raise ValueError("no shown home cells to learn a policy from")
    width = max(len(r[0]) for r in rows)
    x = np.zeros((len(rows), width, WIDTH), dtype=np.float32)
    mask = np.zeros((len(rows), width), dtype=bool)
    for i, row in enumerate(rows):
        x[i, : len(row[0])] = row[0]
        mask[i, : len(row[0])] = True
    return CellSets(
        x, mask, np.array([r[1] for r in rows]), np.array([r[2] for r in rows]),
        np.array([r[3] for r in rows]), np.array([r[4] for r in rows], dtype=bool),
    )  # fmt: skip


def _policy(theta: np.ndarray, cells: CellSets) -> np.ndarray:
    logits = np.where(cells.mask, cells.x @ theta, -np.inf)
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def snips(theta: np.ndarray, cells: CellSets, rows: np.ndarray) -> float:
    """Self-normalised IPS value of the softmax policy on the given cells."""
    pi = _policy(theta, cells)[rows, cells.logged[rows]]
    w = pi / cells.propensity[rows]
    return float((w * cells.reward[rows]).sum() / max(w.sum(), 1e-12))


def fit(
    cells: CellSets, lam: float, rows: np.ndarray, iterations: int = 150, lr: float = 0.05, l2: float = 1e-3
) -> np.ndarray:
    """Adam on the BanditNet objective over `rows` (full batch)."""
    theta = np.zeros(cells.x.shape[2])
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    x, logged, p, r = cells.x[rows], cells.logged[rows], cells.propensity[rows], cells.reward[rows]
    sub = CellSets(x, cells.mask[rows], logged, p, r, cells.held[rows])
    idx = np.arange(len(rows))
    for step in range(1, iterations + 1):
        pi = _policy(theta, sub)
        coefficient = (r - lam) * pi[idx, logged] / p
        # ∂π(a)/∂θ = π(a)·(x_a − E_π[x]); maximise, so descend the negative
        toward = coefficient @ x[idx, logged]
        away = np.einsum("nm,nmd->d", coefficient[:, None] * pi, x)
        grad = -(toward - away) / len(idx) + l2 * theta
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        theta -= lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    return theta


def learn_policy(
    decisions: Sequence[records_pb2.RewardedDecision],
    lambdas: Sequence[float] | None = None,
    iterations: int = 150,
    max_cells: int = 20_000,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, float]]:
    """θ and its metrics: the λ picked by held-out SNIPS, and that SNIPS next to the logging policy's.
    At most `max_cells` training cells are used (a seeded sample), which keeps a fit to seconds."""
    cells = cell_sets(decisions)
    train, held = np.flatnonzero(~cells.held), np.flatnonzero(cells.held)
    if len(train) > max_cells:
        train = np.sort(np.random.default_rng(seed).choice(train, max_cells, replace=False))
    if not len(held):
        held = train
    mean_reward = float(cells.reward[train].mean())
    grid = list(lambdas) if lambdas is not None else [0.0, 0.5 * mean_reward, mean_reward]
    fitted = [(lam, fit(cells, lam, train, iterations)) for lam in grid]
    scores = [(snips(theta, cells, held), lam, theta) for lam, theta in fitted]
    best, lam, theta = max(scores, key=lambda s: s[0])
    logging = float(cells.reward[held].mean())  # the logging policy's own per-cell value (SNIPS with w = 1)
    return theta, {"lambda": lam, "heldout_snips": best, "heldout_logging_value": logging, "cells": float(len(train))}
