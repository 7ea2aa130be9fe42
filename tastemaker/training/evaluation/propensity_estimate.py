"""Logs without (trustworthy) propensities: the logging policy fitted from the logged actions.

`estimate_propensities` gives each row π̂₀(action | position, time window): the share of that
window's rows at the position that showed the action, shrunk toward the action's share at the
position over the whole log (λ pseudo-rows; that share itself add-one smoothed), cross-fitted —
a row's estimate comes only from the other folds' rows (the reward model's folds: by row hash
when the log has one), so its own action never inflates it. The number of time windows (1 when
the log has no timestamps) and λ are chosen by the held-out log-likelihood of the logged actions
— the fit's own criterion, never the logged propensities. This fits a logging policy that does
not look at user features, drifting over time (a popularity ranking, or the Open Bandit
Dataset's Bernoulli Thompson sampling); of one that does, it fits the marginal, as the report says.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tastemaker.training.evaluation.action_log import ActionLog

FOLDS = 5
WINDOWS = (1, 2, 5, 10, 20, 40, 80)
STRENGTHS = (10.0, 20.0, 40.0, 80.0, 160.0, 320.0)


@dataclass(frozen=True)
class PropensityFit:
    propensity: np.ndarray  # (n_rounds,) in (0, 1]
    windows: int
    strength: float
    log_likelihood: float  # mean held-out log π̂₀ of the logged actions

    def describe(self) -> str:
        return (
            f"ESTIMATED, not logged: π̂₀(action | position, one of {self.windows} time windows) fitted from the "
            f"logged actions (shrunk toward the whole log's share with λ = {self.strength:g}, both chosen by held-out "
            f"log-likelihood {self.log_likelihood:.4f}; cross-fitted over {FOLDS} folds) — a logging policy that "
            "looked at user features is fitted only in its marginal"
        )


def _folds(log: ActionLog, folds: int, seed: int) -> np.ndarray:
    if log.row_hash is not None:
        return (log.row_hash % folds).astype(int)
    return np.random.default_rng(seed).integers(0, folds, size=log.n_rounds)


def _fit(log: ActionLog, fold: np.ndarray, folds: int, window: np.ndarray, windows: int, strength: float) -> np.ndarray:
    out = np.empty(log.n_rounds)
    for k in range(folds):
        train, test = fold != k, fold == k
        counts = np.zeros((log.n_actions, log.len_list))
        np.add.at(counts, (log.action[train], log.position[train]), 1.0)
        overall = (counts + 1.0) / (counts.sum(axis=0) + log.n_actions)
        by_window = np.zeros((windows, log.n_actions, log.len_list))
        np.add.at(by_window, (window[train], log.action[train], log.position[train]), 1.0)
        shares = (by_window + strength * overall[None]) / (by_window.sum(axis=1, keepdims=True) + strength)
        out[test] = shares[window[test], log.action[test], log.position[test]]
    return out


def estimate_propensities(log: ActionLog, folds: int = FOLDS, seed: int = 0) -> PropensityFit:
    """Cross-fitted π̂₀(logged action | position, time window) for every row, the window count and
    shrinkage chosen by held-out log-likelihood."""
    fold = _folds(log, folds, seed)
    order = np.argsort(log.timestamp_ms, kind="stable") if log.timestamp_ms is not None else None
    best: PropensityFit | None = None
    # a window holds at least a few rows per action, or the time split only adds noise
    for windows in [w for w in WINDOWS if order is not None or w == 1]:
        if windows > 1 and log.n_rounds / windows < 2 * log.n_actions:
            continue
        window = np.zeros(log.n_rounds, dtype=int)
        if order is not None:
            window[order] = np.arange(log.n_rounds) * windows // log.n_rounds
        for strength in STRENGTHS:
            p = _fit(log, fold, folds, window, windows, strength)
            fit = PropensityFit(p, windows, strength, float(np.log(p).mean()))
            if best is None or fit.log_likelihood > best.log_likelihood:
                best = fit
    assert best is not None
    return best


def with_estimated_propensities(log: ActionLog, folds: int = FOLDS) -> tuple[ActionLog, PropensityFit]:
    """The same log with its propensities replaced by `estimate_propensities`, and the fit."""
    fit = estimate_propensities(log, folds)
    return replace(log, propensity=fit.propensity), fit
