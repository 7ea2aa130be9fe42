"""Off-policy evaluation of home-page policies from rewarded decisions.

Every shown shelf and every shown card is a slot (a cell of the home grid) with its own
reward and its propensity of being in that cell; the estimators assume rewards depend only on
what is in each cell (position-based model). Target policies are re-run on the logged
scores, so their propensities are exact:
`logging` (the logged ε), `greedy` (ε = 0) and `uniform-random` (ε = 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tastemaker.bandits.epsilon_greedy import EpsilonGreedyRanker
from tastemaker.training.ope import IPW, SNIPW, OffPolicyEstimator, SlotData, weight_diagnostics
from tastemaker.v1 import records_pb2

POLICIES = ("logging", "greedy", "uniform-random")


def _ranker_for(policy: str, logged_epsilon: float) -> EpsilonGreedyRanker:
    if policy == "logging":
        return EpsilonGreedyRanker(logged_epsilon)
    if policy == "greedy":
        return EpsilonGreedyRanker(0.0)
    if policy == "uniform-random":
        return EpsilonGreedyRanker(1.0)
    raise ValueError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")


def _grid(decisions: Sequence[records_pb2.RewardedDecision]) -> tuple[int, int]:
    rows = max((len(d.decision.shown) for d in decisions), default=0)
    cols = 1 + max((len(s.cards) for d in decisions for s in d.decision.shown), default=0)
    return rows, cols


def slot_data(decisions: Sequence[records_pb2.RewardedDecision]) -> SlotData:
    """Slots are (row, column) cells flattened: column 0 is the shelf itself, column 1+k its k-th card.

    A card's propensity is its shelf's times its own (conditional on the shelf)."""
    rows, cols = _grid(decisions)
    rewards = np.zeros((len(decisions), rows, cols))
    propensity = np.ones((len(decisions), rows, cols))
    mask = np.zeros((len(decisions), rows, cols), dtype=bool)
    for i, rewarded in enumerate(decisions):
        cell: dict[str, tuple[int, int]] = {}
        for shelf in rewarded.decision.shown:
            row = shelf.position
            cell[shelf.shelf_id] = (row, 0)
            propensity[i, row, 0] = shelf.propensity
            mask[i, row, 0] = True
            for card in shelf.cards:
                cell[card.card_id] = (row, 1 + card.position)
                propensity[i, row, 1 + card.position] = shelf.propensity * card.propensity
                mask[i, row, 1 + card.position] = True
        for outcome in rewarded.outcomes:
            if outcome.item_id in cell:
                rewards[(i, *cell[outcome.item_id])] += outcome.reward
    n = len(decisions)
    return SlotData(
        rewards=rewards.reshape(n, -1), logged_propensity=propensity.reshape(n, -1), mask=mask.reshape(n, -1)
    )


def target_propensity(decisions: Sequence[records_pb2.RewardedDecision], policy: str) -> np.ndarray:
    """π(item at its logged cell) for each shown cell, re-running `policy` on the logged scores."""
    rows, cols = _grid(decisions)
    out = np.zeros((len(decisions), rows, cols))
    for i, rewarded in enumerate(decisions):
        decision = rewarded.decision
        ranker = _ranker_for(policy, decision.exploration.epsilon)
        shelf_marginals = ranker.marginals(np.asarray(decision.shelf_candidates.scores), len(decision.shown))
        shelf_index = {shelf_id: c for c, shelf_id in enumerate(decision.shelf_candidates.item_ids)}
        for shelf in decision.shown:
            p_shelf = shelf_marginals[shelf_index[shelf.shelf_id], shelf.position]
            out[i, shelf.position, 0] = p_shelf
            card_marginals = ranker.marginals(np.asarray(shelf.card_candidates.scores), len(shelf.cards))
            card_index = {card_id: c for c, card_id in enumerate(shelf.card_candidates.item_ids)}
            for card in shelf.cards:
                out[i, shelf.position, 1 + card.position] = (
                    p_shelf * card_marginals[card_index[card.card_id], card.position]
                )
    return out.reshape(len(decisions), -1)


def evaluate(
    decisions: Sequence[records_pb2.RewardedDecision],
    policies: Sequence[str] = POLICIES,
    estimators: Sequence[OffPolicyEstimator] = (IPW(), SNIPW()),
) -> dict[str, Any]:
    """Estimates per policy and estimator, the on-policy mean reward and diagnostics."""
    if not decisions:
        raise ValueError("no rewarded decisions to evaluate")
    home = [d for d in decisions if d.decision.surface == "home"]
    data = slot_data(home)
    report: dict[str, Any] = {
        "n_decisions": len(home),
        "on_policy_mean_reward": float(np.mean([d.reward for d in home])),
        "defaulted_share": float(np.mean([d.defaulted for d in home])),
        "policies": {},
    }
    for policy in policies:
        target = target_propensity(home, policy)
        report["policies"][policy] = {
            "estimates": {e.name: e.estimate(data, target).as_dict() for e in estimators},
            **weight_diagnostics(data, target).as_dict(),
        }
    logging_target = target_propensity(home, "logging")
    report["max_logged_propensity_error"] = (
        float(np.abs(logging_target - data.logged_propensity)[data.mask].max()) if data.mask.any() else 0.0
    )
    return report


def format_report(report: dict[str, Any]) -> str:
    head = f"decisions: {report['n_decisions']}   on-policy mean reward: {report['on_policy_mean_reward']:.4f}"
    if "defaulted_share" in report:
        head += f"   defaulted: {report['defaulted_share']:.1%}"
    lines = [head]
    if "max_logged_propensity_error" in report:
        lines.append(f"largest |logged - recomputed| logging propensity: {report['max_logged_propensity_error']:.2e}")
    lines.append(f"{'policy':<16}{'estimator':<11}{'estimate':>10}  {'95% interval':<22}{'mean w':>8}{'ESS':>9}")
    warnings = []
    for policy, body in report["policies"].items():
        for name, est in body["estimates"].items():
            interval = f"[{est['lower']:.4f}, {est['upper']:.4f}]"
            lines.append(
                f"{policy:<16}{name:<11}{est['value']:>10.4f}  {interval:<22}{body['mean_weight']:>8.3f}"
                f"{body['effective_sample_size']:>9.0f}"
            )
        warnings += [f"warning ({policy}): {w}" for w in body.get("warnings", [])]
    return "\n".join(lines + warnings)
