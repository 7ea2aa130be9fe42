"""Rewarded decisions from a home ranker serving the simulated world: the logs many tests and
benchmarks learn and evaluate from."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tastemaker.bandits.engagement_model import EngagementLinearModel
from tastemaker.bandits.reward_models import EngagementScorer, RewardModel
from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import EpsilonGreedy, Strategy
from tastemaker.records.logged_page import LoggedPage
from tastemaker.services.home import HomeRankingService
from tastemaker.services.requests import HomeRequest
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


def true_value(world: SimulatedWorld, policy: str, decisions: list[records_pb2.RewardedDecision]) -> float:
    """Expected clicks per page (the simulator's truth) of `policy` for the logged requests: exact,
    over the pages it can show (`expected_clicks`)."""
    resolved = resolve(policy)
    return float(np.mean([expected_clicks(world, resolved, d.decision) for d in decisions]))


def expected_clicks(world: SimulatedWorld, policy: HomePolicy, decision: records_pb2.DecisionLog) -> float:
    """The expected clicks of the page `policy` draws for a logged request (`expected_clicks_by_row`)."""
    return float(expected_clicks_by_row(world, policy, decision).sum())


def expected_clicks_by_row(world: SimulatedWorld, policy: HomePolicy, decision: records_pb2.DecisionLog) -> np.ndarray:
    """Each row's expected clicks on the page `policy` draws for a logged request, over every page it
    can draw — a greedy policy's ties broken at random included: the click model is a cell's appeal
    times its row's and column's bias, so row r earns Σ_s P(s at r)·bias(r)·Σ_c bias(c)·Σ_a P(a at c | s)·appeal(a)."""
    strategy = policy.strategy_for(decision)
    assert strategy is not None, f"{policy.name} cannot be re-run on the logged request"
    page = LoggedPage.of_decision(decision)
    shelves = policy.shelf_candidates(page)
    rows = min(decision.max_shelves or len(decision.shown), len(shelves.ids))
    columns = decision.max_cards_per_shelf or max(len(s.cards) for s in decision.shown)
    shelf_marginals = strategy.marginals(shelves, rows)  # (shelves, rows)
    row_value = np.zeros(len(shelves.ids))  # each shelf's expected clicks before its row's bias
    for s, shelf_id in enumerate(shelves.ids):
        if shelf_marginals[s].sum() <= 0:
            continue
        cards = policy.candidate_cards(page, shelf_id)
        k = min(columns, len(cards.ids))
        appeal = world.appeal(decision.user_id, shelf_id, list(cards.ids))
        row_value[s] = float(appeal @ strategy.marginals(cards, k) @ world.column_bias(k))
    return np.asarray(row_value @ shelf_marginals * world.row_bias(rows))
