"""The Open Bandit Dataset's CSV layout (Saito et al., NeurIPS 2021 Datasets track), as shipped
in obp: one row per (round, position) with item_id, position (1..len_list), click and the
logging policy's propensity_score; `item_context.csv` beside it.

Policies evaluated here are context-free over the dataset's items, so the reward model for
DM/DR is the click rate per (item, position), smoothed toward the position's rate and
cross-fitted: each row's prediction comes from a model fitted on the other folds.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tastemaker.training.ope import OffPolicyEstimator, SlotData, weight_diagnostics, weight_histogram

REQUIRED_COLUMNS = ("item_id", "position", "click", "propensity_score")


class OBDFormatError(ValueError):
    pass


@dataclass(frozen=True)
class OBDLog:
    item: np.ndarray  # (n,) int, 0..n_items-1
    position: np.ndarray  # (n,) int, 0-based
    click: np.ndarray  # (n,) float
    propensity: np.ndarray  # (n,) float
    n_items: int
    len_list: int

    @property
    def n_rounds(self) -> int:
        return int(self.item.shape[0])


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def read_obd(path: Path) -> OBDLog:
    """Read one Open Bandit Dataset CSV (e.g. `bts/all/all.csv`); n_items from `item_context.csv`
    beside it when present, else from the log."""
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise OBDFormatError(f"{path}: not an Open Bandit Dataset log, missing columns {missing}")
            rows = [(row["item_id"], row["position"], row["click"], row["propensity_score"]) for row in reader]
    except UnicodeDecodeError as exc:
        raise OBDFormatError(f"{path}: not a CSV text file") from exc
    if not rows:
        raise OBDFormatError(f"{path}: no rows")
    table = np.array([[_number(x) for x in row] for row in rows], dtype=np.float64)
    checks = {
        "item_id": ~np.isfinite(table[:, 0]) | (table[:, 0] < 0) | (table[:, 0] != np.round(table[:, 0])),
        "position": ~np.isfinite(table[:, 1]) | (table[:, 1] < 1) | (table[:, 1] != np.round(table[:, 1])),
        "click": ~np.isfinite(table[:, 2]),
        "propensity_score": ~((table[:, 3] > 0) & (table[:, 3] <= 1)),
    }
    rules = {
        "item_id": "a non-negative integer",
        "position": "an integer from 1",
        "click": "a finite number",
        "propensity_score": "in (0, 1]",
    }
    problems = [
        f"{int(bad.sum())} rows with `{column}` not {rules[column]} (first at data row {int(np.argmax(bad)) + 1})"
        for column, bad in checks.items()
        if bad.any()
    ]
    if problems:
        raise OBDFormatError(f"{path}: {'; '.join(problems)} — nothing was evaluated")
    item, position = table[:, 0].astype(int), table[:, 1].astype(int) - 1
    propensity = table[:, 3]
    item_context = path.parent / "item_context.csv"
    n_items = int(item.max()) + 1
    if item_context.is_file():
        with item_context.open(newline="") as handle:
            n_items = max(n_items, sum(1 for _ in csv.DictReader(handle)))
    return OBDLog(item, position, table[:, 2], propensity, n_items, int(position.max()) + 1)


def slot_data(log: OBDLog, q_logged: np.ndarray | None = None) -> SlotData:
    """Each row is a decision showing one slot (its position)."""
    n, slots = log.n_rounds, log.len_list
    rows = np.arange(n)

    def place(values: np.ndarray, fill: float) -> np.ndarray:
        out = np.full((n, slots), fill)
        out[rows, log.position] = values
        return out

    mask = np.zeros((n, slots), dtype=bool)
    mask[rows, log.position] = True
    q = None if q_logged is None else place(q_logged, 0.0)
    return SlotData(place(log.click, 0.0), place(log.propensity, 1.0), mask, q)


def click_rate_model(log: OBDLog, folds: int = 2, prior_strength: float = 20.0, seed: int = 0) -> np.ndarray:
    """Cross-fitted q̂(item, row's position) for every row and item: shape (n_rounds, n_items)."""
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, size=log.n_rounds)
    out = np.empty((log.n_rounds, log.n_items))
    for k in range(folds):
        train, test = fold != k, fold == k
        clicks = np.zeros((log.n_items, log.len_list))
        shows = np.zeros((log.n_items, log.len_list))
        np.add.at(clicks, (log.item[train], log.position[train]), log.click[train])
        np.add.at(shows, (log.item[train], log.position[train]), 1.0)
        position_rate = clicks.sum(axis=0) / np.maximum(shows.sum(axis=0), 1.0)
        table = (clicks + prior_strength * position_rate) / (shows + prior_strength)
        out[test] = table[:, log.position[test]].T
    return out


POLICIES = ("uniform-random",)


def target_for(log: OBDLog, policy: str, q_all: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(π(logged item | position) per row, q̄ per row) for a built-in context-free policy."""
    if policy != "uniform-random":
        raise ValueError(f"policy {policy!r} is not available for Open Bandit Dataset logs; known: {POLICIES}")
    return np.full(log.n_rounds, 1.0 / log.n_items), q_all.mean(axis=1)


def evaluate_obd(
    log: OBDLog, policies: tuple[str, ...] | list[str], estimators: list[OffPolicyEstimator]
) -> dict[str, Any]:
    """Estimates of each policy's click rate per round from an Open Bandit Dataset log."""
    q_all = click_rate_model(log)
    q_logged = q_all[np.arange(log.n_rounds), log.item]
    data = slot_data(log, q_logged)
    report: dict[str, Any] = {
        "n_decisions": log.n_rounds,
        "on_policy_mean_reward": float(log.click.mean()),
        "policies": {},
    }
    for policy in policies:
        target_row, q_bar_row = target_for(log, policy, q_all)
        target = slot_data(
            OBDLog(log.item, log.position, target_row, log.propensity, log.n_items, log.len_list)
        ).rewards
        q_target = slot_data(
            OBDLog(log.item, log.position, q_bar_row, log.propensity, log.n_items, log.len_list)
        ).rewards
        report["policies"][policy] = {
            "estimates": {e.name: e.estimate(data, target, q_target).as_dict() for e in estimators},
            **weight_diagnostics(data, target).as_dict(),
            "weight_histogram": weight_histogram(data, target),
        }
    return report
