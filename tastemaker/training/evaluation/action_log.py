"""Logs of single actions shown at a position (one row per shown (decision, position)), the
shape shared by the Open Bandit Dataset and the generic CSV/Parquet layout (`log_readers.py`).

Each row is one decision with one slot; the position is part of the context, as in Open Bandit
Pipeline, so self-normalisation is over all rows. The reward model for DM/DR is the mean reward
per (action, position), smoothed toward the position's mean and cross-fitted: each row's
prediction comes from a model fitted on the other folds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tastemaker.training.evaluation.ope import SlotData


@dataclass(frozen=True)
class ActionLog:
    action: np.ndarray  # (n,) int, 0..n_actions-1
    position: np.ndarray  # (n,) int, 0-based
    reward: np.ndarray  # (n,) float
    propensity: np.ndarray  # (n,) float in (0, 1]: π₀(action | context, position)
    n_actions: int
    len_list: int
    #: the action's id as written in the log, by index (for entry-point policies and reports)
    action_ids: tuple[str, ...] = ()
    #: event time in ms, when the log has one (for estimates over time)
    timestamp_ms: np.ndarray | None = None
    #: every other column, as read (for entry-point policies)
    context: Mapping[str, np.ndarray] = field(default_factory=dict)
    #: a stable hash of each row's text (`row_key`): its cross-fitting fold, the same in every engine
    row_hash: np.ndarray | None = None

    @property
    def n_rounds(self) -> int:
        return int(self.action.shape[0])


def slot_data(log: ActionLog, q_logged: np.ndarray | None = None) -> SlotData:
    """One slot per row; `q_logged` is q̂(x_i, a_i) per row."""
    q = None if q_logged is None else q_logged[:, None]
    return SlotData(log.reward[:, None], log.propensity[:, None], np.ones((log.n_rounds, 1), dtype=bool), q)


FOLDS = 2
PRIOR_STRENGTH = 20.0


def row_text(values: Sequence[str]) -> str:
    """A row's columns' text, in file order."""
    return "\x1f".join(values)


def row_key(text: str, occurrence: int) -> int:
    """A stable 63-bit hash of a row's text and how many identical rows came before it: decides its
    fold in every engine. Identical rows are interchangeable, so which of them is counted first
    does not change any estimate, and the Beam engine, which never sees row numbers, agrees."""
    digest = hashlib.blake2b(f"{text}\x1e{occurrence}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def fold_table(rewards: np.ndarray, shows: np.ndarray, prior_strength: float = PRIOR_STRENGTH) -> np.ndarray:
    """q̂(action, position) from reward sums and show counts of the training rows, each shape
    (n_actions, len_list): the mean reward smoothed toward the position's mean."""
    position_mean = rewards.sum(axis=0) / np.maximum(shows.sum(axis=0), 1.0)
    return (rewards + prior_strength * position_mean) / (shows + prior_strength)


def reward_model(
    log: ActionLog, folds: int = FOLDS, prior_strength: float = PRIOR_STRENGTH, seed: int = 0
) -> np.ndarray:
    """Cross-fitted q̂(action, row's position) for every row and action: shape (n_rounds, n_actions).

    A row's fold is its `row_hash` modulo `folds` when the log has one (so that the Beam engine,
    which never sees row numbers, folds identically), else drawn from `seed`."""
    if log.row_hash is not None:
        fold = (log.row_hash % folds).astype(int)
    else:
        fold = np.random.default_rng(seed).integers(0, folds, size=log.n_rounds)
    out = np.empty((log.n_rounds, log.n_actions))
    for k in range(folds):
        train, test = fold != k, fold == k
        rewards = np.zeros((log.n_actions, log.len_list))
        shows = np.zeros((log.n_actions, log.len_list))
        np.add.at(rewards, (log.action[train], log.position[train]), log.reward[train])
        np.add.at(shows, (log.action[train], log.position[train]), 1.0)
        out[test] = fold_table(rewards, shows, prior_strength)[:, log.position[test]].T
    return out


def unsupported_mass(log: ActionLog, distribution: np.ndarray) -> float:
    """Share of the target's mass on (action, position) pairs that the log never shows: there the
    logging policy gives (empirically) no support, and IPW-type estimates say nothing."""
    seen = np.zeros((log.n_actions, log.len_list), dtype=bool)
    seen[log.action, log.position] = True
    return float((distribution * ~seen[:, log.position].T).sum(axis=1).mean())
