r"""Doubly robust regression targets for the home reward models (`--targets dr`).

For a cell k (a page row for shelves, a column of a shown shelf for cards) of a logged decision
x, with the item a_k shown there, its propensity μ_k(a_k | x) and the reward r_k, every candidate
a of the level gets the pseudo-outcome

    Γ(x, a, k) = r̂(x, a, k) + 1[a = a_k] · min(1/μ_k(a | x), clip) · (r_k − r̂(x, a, k))

(Dudík, Langford & Li, "Doubly Robust Policy Evaluation and Learning", ICML 2011, eq. 4), whose
expectation under the logging policy is the true E[r | x, a, k] when either r̂ is right or the
propensities are (and the clip does not bind). Regressing the reward model on Γ over every
candidate, not only the shown ones, removes the logging policy's selection bias with less
variance than weighting the shown rows by 1/μ.

- r̂ is a logistic regression (numpy, IRLS with an L2 penalty) cross-fitted over two halves of
  the decisions, so no row's target uses a model that saw its own reward.
- The unshown candidates of a cell are sampled, `unshown_per_cell` of them uniformly, each
  weighted (n − 1)/K so that the objective's expectation is the full sum over candidates.
- Card cells use the card's propensity given its shelf (the card model's target is the reward
  given the shelf shown at its row).

Γ is not confined to [0, 1], so the models regress on it (squared error; YDF's regression task).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tastemaker.training.modeling.reward_rows import LevelGroup, level_groups
from tastemaker.v1 import records_pb2

FirstStage = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class DrRows:
    #: shape (n_rows, WIDTH)
    x: np.ndarray
    #: Γ, shape (n_rows,)
    target: np.ndarray
    #: sample weights, shape (n_rows,): 1 for shown items, (n − 1)/K for sampled unshown ones
    weight: np.ndarray
    #: the row's decision is in the metrics' held-out fifth
    held: np.ndarray
    #: the row is a shown item (its cell's logged action)
    shown: np.ndarray


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 30) -> np.ndarray:
    """Weights (WIDTH + 1,), the last the intercept, of an L2-penalised logistic regression by
    iteratively reweighted least squares (Newton's method); the intercept is not penalised."""
    design = np.hstack([x, np.ones((len(x), 1))])
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0
    w = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        gradient = design.T @ (p - y) + penalty * w
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def logistic_predictor(w: np.ndarray) -> FirstStage:
    return lambda rows: 1.0 / (1.0 + np.exp(-(rows @ w[:-1] + w[-1])))


def _half(decision_id: str) -> int:
    return hashlib.blake2b(decision_id.encode(), digest_size=2, person=b"dr-fold").digest()[0] % 2


def cross_fitted_first_stage(groups: Sequence[LevelGroup], l2: float = 1.0) -> dict[int, FirstStage]:
    """r̂ for each half of the decisions, fitted on the other half's shown items (labels as logged)."""
    rows = {0: [], 1: []}  # type: dict[int, list[np.ndarray]]
    labels = {0: [], 1: []}  # type: dict[int, list[float]]
    for group in groups:
        half = _half(group.decision_id)
        rows[half].append(group.shown_rows())
        labels[half].extend(c.label for c in group.cells)
    models: dict[int, FirstStage] = {}
    for half in (0, 1):
        other = 1 - half
        source = other if rows[other] else half  # one half empty (tiny logs): fit on what there is
        models[half] = logistic_predictor(fit_logistic(np.vstack(rows[source]), np.array(labels[source]), l2))
    return models


def dr_rows(
    decisions: Sequence[records_pb2.RewardedDecision],
    clip: float | None = 10.0,
    unshown_per_cell: int = 3,
    first_stage: FirstStage | None = None,
    seed: int = 0,
) -> DrRows:
    """The pseudo-outcome rows above; `first_stage` fixes r̂ (tests), else it is cross-fitted."""
    if clip is not None and not clip >= 1:
        raise ValueError(f"`clip` must be at least 1, got {clip}")
    if unshown_per_cell < 0:
        raise ValueError(f"`unshown_per_cell` must be non-negative, got {unshown_per_cell}")
    groups = list(level_groups(decisions))
    if not groups:
        raise ValueError("no shown home items to train on")
    models = cross_fitted_first_stage(groups) if first_stage is None else None
    rng = np.random.default_rng(seed)
    blocks, targets, weights, held, shown = [], [], [], [], []
    for group in groups:
        predict = first_stage if models is None else models[_half(group.decision_id)]
        assert predict is not None
        for cell in group.cells:
            others = [a for a in group.candidates if a != cell.item_id]
            sampled = (
                [others[i] for i in rng.choice(len(others), size=unshown_per_cell, replace=False)]
                if len(others) > unshown_per_cell
                else others
            )
            ids = [cell.item_id, *sampled]
            x = group.encode(ids, [cell.position] * len(ids))
            r_hat = predict(x)
            inverse = 1.0 / cell.propensity if clip is None else min(1.0 / cell.propensity, clip)
            gamma = r_hat.copy()
            gamma[0] += inverse * (cell.label - r_hat[0])
            blocks.append(x)
            targets.append(gamma)
            weights.append(np.r_[1.0, np.full(len(sampled), len(others) / max(len(sampled), 1))])
            held.extend([group.held] * len(ids))
            shown.extend([True] + [False] * len(sampled))
    return DrRows(np.vstack(blocks), np.concatenate(targets), np.concatenate(weights), np.array(held), np.array(shown))
