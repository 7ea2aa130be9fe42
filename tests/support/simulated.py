"""Rewarded decisions from a home ranker serving the simulated world: the logs many tests and
benchmarks learn and evaluate from."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tastemaker.bandits.engagement_model import EngagementLinearModel
from tastemaker.bandits.reward_models import EngagementScorer, RewardModel
from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import EpsilonGreedy, Strategy
from tastemaker.services.home import HomeRankingService, HomeRequest
from tastemaker.training.evaluation.home_policies import HomePolicy, resolve
from tastemaker.v1 import records_pb2
from tests.support.fakes import FixedFeatures


def home_service(
    world: SimulatedWorld,
    model: RewardModel | None = None,
    strategy: Strategy | None = None,
    shelves: int = 4,
    cards: int = 4,
    seed: int = 0,
) -> HomeRankingService:
    """A home ranker over the world's catalog and fixed random features, publishing nowhere
    (default: the built-in engagement model, ε-greedy with ε = 0.3)."""
    return HomeRankingService(
        features=FixedFeatures(world),
        catalog=world.catalog(),
        model=model or EngagementScorer(EngagementLinearModel()),
        strategy=strategy or EpsilonGreedy(0.3),
        publish=lambda *a: True,
        decisions_topic="unused",
        default_max_shelves=shelves,
        default_max_cards=cards,
        reward_window_s=1.0,
        rng=np.random.default_rng(seed),
    )


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
    for s in np.argsort(-policy.shelf_candidates(decision).scores, kind="stable")[:rows]:
        cards = policy.candidate_cards(decision, shelf_ids[s])
        page.append((shelf_ids[s], [cards.ids[c] for c in np.argsort(-cards.scores, kind="stable")[:columns]]))
    return page


def true_value(world: SimulatedWorld, policy: str, decisions: list[records_pb2.RewardedDecision]) -> float:
    """Expected clicks per page (the simulator's truth) of `policy`'s greedy pages for the logged requests."""
    resolved = resolve(policy)
    return float(
        np.mean([world.expected_clicks(d.decision.user_id, greedy_page(resolved, d.decision)) for d in decisions])
    )
