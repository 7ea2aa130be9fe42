"""Rewarded decisions from a home ranker serving the simulated world: the logs many tests and
benchmarks learn and evaluate from."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.services.home import HomeRankingService, HomeRequest
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
