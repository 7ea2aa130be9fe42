"""Off-policy evaluation of home-page policies from rewarded decisions.

Each shown shelf is a slot; its reward is the sum of the joined outcomes on that shelf or its
cards. Target policies are re-run on the logged scores, so their propensities are exact:
`logging` (the logged ε), `greedy` (ε = 0) and `uniform-random` (ε = 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tastemaker.bandits.epsilon_greedy import EpsilonGreedyRanker
from tastemaker.training.ope import IPS, SNIPS, OffPolicyEstimator, SlotData
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


def slot_data(decisions: Sequence[records_pb2.RewardedDecision]) -> SlotData:
    n_slots = max((len(d.decision.shown) for d in decisions), default=0)
    rewards = np.zeros((len(decisions), n_slots))
    propensity = np.ones((len(decisions), n_slots))
    mask = np.zeros((len(decisions), n_slots), dtype=bool)
    for i, rewarded in enumerate(decisions):
        slot_of: dict[str, int] = {}
        for shelf in rewarded.decision.shown:
            slot_of[shelf.shelf_id] = shelf.position
            slot_of.update((card.card_id, shelf.position) for card in shelf.cards)
            propensity[i, shelf.position] = shelf.propensity
            mask[i, shelf.position] = True
        for outcome in rewarded.outcomes:
            if outcome.item_id in slot_of:
                rewards[i, slot_of[outcome.item_id]] += outcome.reward
    return SlotData(rewards=rewards, logged_propensity=propensity, mask=mask)


def target_propensity(decisions: Sequence[records_pb2.RewardedDecision], policy: str) -> np.ndarray:
    n_slots = max((len(d.decision.shown) for d in decisions), default=0)
    out = np.zeros((len(decisions), n_slots))
    for i, rewarded in enumerate(decisions):
        decision = rewarded.decision
        ranker = _ranker_for(policy, decision.exploration.epsilon)
        scores = np.asarray(decision.shelf_candidates.scores, dtype=np.float64)
        index = {shelf_id: c for c, shelf_id in enumerate(decision.shelf_candidates.item_ids)}
        marginals = ranker.marginals(scores, len(decision.shown))
        for shelf in decision.shown:
            out[i, shelf.position] = marginals[index[shelf.shelf_id], shelf.position]
    return out


def evaluate(
    decisions: Sequence[records_pb2.RewardedDecision],
    policies: Sequence[str] = POLICIES,
    estimators: Sequence[OffPolicyEstimator] = (IPS(), SNIPS()),
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
        weights = np.where(data.mask, target / data.logged_propensity, 0.0)
        report["policies"][policy] = {
            "estimates": {e.name: e.estimate(data, target).as_dict() for e in estimators},
            "mean_weight": float(weights[data.mask].mean()) if data.mask.any() else float("nan"),
            "max_weight": float(weights.max()) if weights.size else float("nan"),
        }
    logging_target = target_propensity(home, "logging")
    report["max_logged_propensity_error"] = (
        float(np.abs(logging_target - data.logged_propensity)[data.mask].max()) if data.mask.any() else 0.0
    )
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"decisions: {report['n_decisions']}   on-policy mean reward: {report['on_policy_mean_reward']:.4f}"
        f"   defaulted: {report['defaulted_share']:.1%}",
        f"largest |logged - recomputed| logging propensity: {report['max_logged_propensity_error']:.2e}",
        f"{'policy':<16}{'estimator':<10}{'estimate':>10}  {'95% interval':<22}{'mean w':>8}",
    ]
    for policy, body in report["policies"].items():
        for name, est in body["estimates"].items():
            interval = f"[{est['lower']:.4f}, {est['upper']:.4f}]"
            lines.append(f"{policy:<16}{name:<10}{est['value']:>10.4f}  {interval:<22}{body['mean_weight']:>8.3f}")
    return "\n".join(lines)
