"""Off-policy evaluation of action logs (the Open Bandit Dataset, the generic CSV/Parquet layout):
every estimator for every policy, with diagnostics, values per position and over time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tastemaker.training.evaluation import action_policies
from tastemaker.training.evaluation.action_log import ActionLog, reward_model, slot_data, unsupported_mass
from tastemaker.training.evaluation.ope import (
    IPW,
    OffPolicyEstimator,
    SlotData,
    estimate_dict,
    weight_diagnostics,
    weight_histogram,
)


def _per_position_ipw(log: ActionLog, weights: np.ndarray) -> list[float]:
    """Each position's IPW value: mean over its rows of w·r (the position's share of the click rate
    divided by how often it occurs)."""
    out = []
    for position in range(log.len_list):
        rows = log.position == position
        out.append(float((weights[rows] * log.reward[rows]).mean()) if rows.any() else 0.0)
    return out


def _over_time(log: ActionLog, data: SlotData, target: np.ndarray, buckets: int = 10) -> list[dict[str, Any]]:
    if log.timestamp_ms is None:
        return []
    order = np.argsort(log.timestamp_ms, kind="stable")
    out = []
    for rows in np.array_split(order, min(buckets, len(order))):
        if len(rows) < 2:
            continue
        estimate = IPW().estimate(data.subset(rows), target[rows])
        times = log.timestamp_ms[rows]
        out.append({"from_ms": float(times.min()), "to_ms": float(times.max()), **estimate.as_dict()})
    return out


def evaluate_action_log(
    log: ActionLog,
    policies: Sequence[str],
    estimators: Sequence[OffPolicyEstimator],
    fmt: str,
    bootstrap: int = 0,
) -> dict[str, Any]:
    """Estimates of each policy's mean reward per row."""
    q_all = reward_model(log)
    rows = np.arange(log.n_rounds)
    data = slot_data(log, q_all[rows, log.action])
    report: dict[str, Any] = {
        "n_decisions": log.n_rounds,
        "on_policy_mean_reward": float(log.reward.mean()),
        "n_actions": log.n_actions,
        "len_list": log.len_list,
        "policies": {},
    }
    for name in policies:
        distribution = action_policies.checked(name, action_policies.resolve(name, fmt)(log, q_all), log)
        target = distribution[rows, log.action][:, None]
        q_target = (distribution * q_all).sum(axis=1)[:, None]
        weights = target[:, 0] / log.propensity
        report["policies"][name] = {
            "estimates": {e.name: estimate_dict(e, data, target, q_target, bootstrap) for e in estimators},
            **weight_diagnostics(data, target).as_dict(),
            "unsupported_mass": unsupported_mass(log, distribution),
            "weight_histogram": weight_histogram(data, target),
            "per_position_ipw": _per_position_ipw(log, weights),
            "over_time_ipw": _over_time(log, data, target),
        }
    return report
