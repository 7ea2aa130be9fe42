"""The retraining tests' world: a small simulated catalog, an exploration-heavy log with fixed
decision ids, and the simulator's true value of a model's greedy pages."""

from __future__ import annotations

import functools
import itertools
import uuid
from unittest import mock

import numpy as np

from tastemaker.bandits.engagement_model import EngagementLinearModel
from tastemaker.bandits.reward_features import COUNT_TYPES
from tastemaker.bandits.reward_models import EngagementScorer, RewardModel
from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import EpsilonGreedy
from tastemaker.services.home import HomeRankingService
from tastemaker.v1 import records_pb2
from tests.support.fakes import FixedFeatures
from tests.support.simulated import rewarded_logs

# a small world and an exploration-heavy log (a randomised bucket), so that 2,400 held-out decisions
# are enough for the gate's intervals to tell a good model from a bad one
WORLD = SimulatedWorld(seed=3, n_shelves=5, cards_per_shelf=5)
ROWS = COLUMNS = 3
N_DECISIONS, HELD_OUT = 8000, 2400


@functools.cache
def retrain_logs() -> list[records_pb2.RewardedDecision]:
    """8,000 rewarded decisions of a uniformly exploring ranker in the small world (built once)."""
    clock = itertools.count(1_000_000, 1000)
    service = HomeRankingService(
        features=FixedFeatures(WORLD), catalog=WORLD.catalog(), model=EngagementScorer(EngagementLinearModel()),
        strategy=EpsilonGreedy(1.0), publish=lambda *a: True, decisions_topic="unused",
        default_max_shelves=ROWS, default_max_cards=COLUMNS, reward_window_s=1.0, rng=np.random.default_rng(0),
        clock_ms=lambda: next(clock),
    )  # fmt: skip
    # decision ids choose the held-out fifth (a hash of the id): fixed ids make every run the same
    ids = (uuid.UUID(int=i) for i in itertools.count(1))
    with mock.patch("uuid.uuid4", lambda: next(ids)):
        return rewarded_logs(service, WORLD, N_DECISIONS, context=lambda i: {"device": "ios" if i % 3 else "web"})


def true_value_of(model: RewardModel, decisions: list[records_pb2.RewardedDecision]) -> float:
    """Expected clicks of greedy pages under `model`, for the same requests (the simulator's truth)."""
    features, shelves, values = FixedFeatures(WORLD), WORLD.catalog().shelves, []
    for rewarded in decisions:
        user = features.read(rewarded.decision.user_id)
        context = dict(rewarded.decision.context)
        counts = np.zeros(len(COUNT_TYPES))
        shelf_ids = [s.shelf_id for s in shelves]
        shelf_scores = model.score_level("shelf", counts, shelf_ids,
                                         np.array([user.shelf_engagement(i) for i in shelf_ids]), context)  # fmt: skip
        page = []
        for s in np.argsort(-shelf_scores, kind="stable")[:ROWS]:
            cards = shelves[s].card_ids
            scores = model.score_level("card", counts, list(cards),
                                       np.array([user.card_engagement(c) for c in cards]), context)  # fmt: skip
            page.append((shelves[s].shelf_id, [cards[c] for c in np.argsort(-scores, kind="stable")[:COLUMNS]]))
        values.append(WORLD.expected_clicks(rewarded.decision.user_id, page))
    return float(np.mean(values))
