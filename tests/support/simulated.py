"""Rewarded decisions from a home ranker serving the simulated world: the logs many tests and
benchmarks learn and evaluate from."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.services.home import HomeRankingService, HomeRequest
from tastemaker.training.evaluation.home_policies import HomePolicy, resolve
from tastemaker.v1 import records_pb2


def rewarded_logs(
    service: HomeRankingService,
    world: SimulatedWorld,
    n: int,
    users: int = 40,
    seed: int = 1,
    context: Callable[[int], dict[str, str]] = lambda i: {},
) -> list[records_pb2.RewardedDecision]:
    """`n` requests from `users` users in turn; clicks drawn from the world's click model."""
    rng, out = np.random.default_rng(seed), []
    for i in range(n):
        user_id = f"user-{i % users}"
        decision = service.rank(HomeRequest(user_id, context(i), (), 0, 0))
        shown = [(s.shelf_id, [c.card_id for c in s.cards]) for s in decision.shown]
        clicks = world.respond(user_id, shown, rng)
        outcomes = [
            records_pb2.Outcome(decision_id=decision.decision_id, item_id=c.card_id, reward=1.0) for c in clicks
        ]
        out.append(records_pb2.RewardedDecision(decision=decision, outcomes=outcomes, reward=float(len(clicks))))
    return out


def greedy_page(policy: HomePolicy, decision: records_pb2.DecisionLog) -> list[tuple[str, list[str]]]:
    """The page `policy`'s model would show greedily for a logged request: the top shelves among the
    logged candidates, each with its top cards, scored from the logged features."""
    shelf_ids = list(decision.shelf_candidates.item_ids)
    rows = decision.max_shelves or len(decision.shown)
    columns = decision.max_cards_per_shelf or max(len(s.cards) for s in decision.shown)
    page = []
    for s in np.argsort(-policy.shelf_scores(decision), kind="stable")[:rows]:
        card_ids, scores = policy.candidate_card_scores(decision, shelf_ids[s])
        page.append((shelf_ids[s], [card_ids[c] for c in np.argsort(-scores, kind="stable")[:columns]]))
    return page


def true_value(world: SimulatedWorld, policy: str, decisions: list[records_pb2.RewardedDecision]) -> float:
    """Expected clicks per page (the simulator's truth) of `policy`'s greedy pages for the logged requests."""
    resolved = resolve(policy)
    return float(
        np.mean([world.expected_clicks(d.decision.user_id, greedy_page(resolved, d.decision)) for d in decisions])
    )
