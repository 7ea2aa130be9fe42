"""The home ranker with each exploration strategy, pinned shelves, excluded items and card
de-duplication: what it shows obeys the constraints, and the logged propensities are the ones
off-policy evaluation recomputes (or, for LinUCB and Thompson, uses as logged)."""

from __future__ import annotations

import numpy as np
import pytest

from tastemaker.bandits.catalog import ShelfCandidates
from tastemaker.bandits.engagement_model import EngagementLinearModel
from tastemaker.bandits.reward_models import EngagementScorer
from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import EpsilonGreedy, LinearState, LinUCB, Softmax, SquareCB, Thompson
from tastemaker.services.errors import InvalidArgument
from tastemaker.services.home import HomeRankingService
from tastemaker.services.requests import HomeRequest, parse_rank_home
from tastemaker.training.evaluation.evaluate import evaluate
from tastemaker.v1 import api_pb2, records_pb2
from tests.support.fakes import FixedFeatures

WORLD = SimulatedWorld(seed=3)
PINNED = WORLD.shelf_id(2)
EXCLUDED_SHELF = WORLD.shelf_id(5)
EXCLUDED_CARD = WORLD.card_id(0, 0)

CONFIGS = {
    "epsilon-greedy": (lambda: EpsilonGreedy(0.2), 0.01),
    "softmax": (lambda: Softmax(0.8), 0.02),
    "linucb": (lambda: LinUCB(LinearState(2), alpha=0.5), 0.02),
    "thompson": (lambda: Thompson(LinearState(2), n_samples=1000), 0.0),
    "squarecb": (lambda: SquareCB(gamma=5.0), 0.01),
}


def _service(name: str, max_shelves: int = 4) -> HomeRankingService:
    make, floor = CONFIGS[name]
    return HomeRankingService(
        features=FixedFeatures(WORLD), catalog=WORLD.catalog(), model=EngagementScorer(EngagementLinearModel()),
        strategy=make(), card_strategy=make(), publish=lambda *a: True, decisions_topic="unused",
        default_max_shelves=max_shelves, default_max_cards=4, reward_window_s=1.0, rng=np.random.default_rng(1),
        propensity_floor=floor,
    )  # fmt: skip


def _logs(name: str, n: int = 300) -> list[records_pb2.RewardedDecision]:
    service = _service(name)
    rng = np.random.default_rng(2)
    out = []
    for i in range(n):
        user_id = f"user-{i % 25}"
        request = HomeRequest(
            user_id, {}, (), 0, 0, pinned=((0, PINNED),), excluded=frozenset({EXCLUDED_SHELF, EXCLUDED_CARD})
        )
        decision = service.rank(request)
        clicks = WORLD.respond(user_id, [(s.shelf_id, [c.card_id for c in s.cards]) for s in decision.shown], rng)
        outcomes = [
            records_pb2.Outcome(decision_id=decision.decision_id, item_id=c.card_id, reward=1.0) for c in clicks
        ]
        out.append(records_pb2.RewardedDecision(decision=decision, outcomes=outcomes, reward=float(len(clicks))))
    return out


@pytest.mark.parametrize("name", list(CONFIGS))
def test_constraints_hold_and_propensities_are_consistent(name: str) -> None:
    logs = _logs(name)
    for rewarded in logs:
        decision = rewarded.decision
        assert decision.exploration.strategy == name
        assert decision.exploration.propensity_floor == CONFIGS[name][1]
        assert decision.shown[0].shelf_id == PINNED and decision.shown[0].propensity == 1.0
        assert [s.position for s in decision.shown] == [0, 1, 2, 3]
        cards = [c.card_id for s in decision.shown for c in s.cards]
        assert len(cards) == len(set(cards)), "a card appears twice on one page"
        assert EXCLUDED_SHELF not in {s.shelf_id for s in decision.shown} and EXCLUDED_CARD not in cards
        assert 0 < decision.ranking_propensity <= 1
        if CONFIGS[name][1]:
            assert min(s.propensity for s in decision.shown[1:]) >= CONFIGS[name][1] - 1e-12
    report = evaluate(logs, policies=["logging", "greedy"])
    logging = report["policies"]["logging"]
    assert logging["estimates"]["ipw"]["value"] == pytest.approx(report["on_policy_mean_reward"])
    assert report["max_logged_propensity_error"] < 1e-9
    if name in ("linucb", "thompson"):
        assert logs[0].decision.exploration.propensity_method == ("closed-form" if name == "linucb" else "monte-carlo")
        assert "cascade-ipw" not in logging["estimates"] and report["notes"]
    else:
        assert "cascade-ipw" in logging["estimates"]
        assert logging["estimates"]["cascade-ipw"]["value"] == pytest.approx(report["on_policy_mean_reward"])


@pytest.mark.parametrize(
    ("pins", "excluded", "field"),
    [
        ([("s", -1)], [], "pinned_shelves[0].position"),
        ([("s", 0), ("t", 0)], [], "pinned_shelves[1].position"),
        ([("s", 0), ("s", 1)], [], "pinned_shelves[1].shelf_id"),
        ([("", 0)], [], "pinned_shelves[0].shelf_id"),
        ([], [""], "excluded_item_ids[0]"),
    ],
)
def test_bad_constraints_name_the_field(pins, excluded, field) -> None:
    request = api_pb2.RankHomeRequest(
        user_id="u", pinned_shelves=[api_pb2.PinnedShelf(shelf_id=s, position=p) for s, p in pins],
        excluded_item_ids=excluded,
    )  # fmt: skip
    with pytest.raises(InvalidArgument) as info:
        parse_rank_home(request)
    assert info.value.field == field


@pytest.mark.parametrize("name", ["epsilon-greedy", "linucb"])
def test_cards_shared_by_shelves_are_shown_once_with_consistent_propensities(name: str) -> None:
    """Shelves whose candidate cards overlap take the rows one at a time (a card shown in a row
    leaves the later rows' candidates); their propensities are still the ones evaluation recomputes."""
    service = _service(name, max_shelves=3)
    cards = [WORLD.card_id(s, c) for s in range(2) for c in range(6)]
    shelves = tuple(
        ShelfCandidates(WORLD.shelf_id(s), tuple(cards[(4 * s + c) % len(cards)] for c in range(6))) for s in range(3)
    )
    rng = np.random.default_rng(2)
    logs = []
    for i in range(200):
        decision = service.rank(HomeRequest(f"user-{i % 25}", {}, shelves, 0, 0))
        shown = [c.card_id for s in decision.shown for c in s.cards]
        assert len(shown) == len(set(shown)) >= 10, "a card appears twice on one page"
        clicks = WORLD.respond(
            decision.user_id, [(s.shelf_id, [c.card_id for c in s.cards]) for s in decision.shown], rng
        )
        logs.append(records_pb2.RewardedDecision(decision=decision, reward=float(len(clicks))))
    report = evaluate(logs, policies=["logging"])
    assert report["max_logged_propensity_error"] < 1e-9


def test_item_terms_teach_the_linear_strategies_which_of_equal_candidates_is_good() -> None:
    """Six candidates with equal features: after rewards only for "s4", LinUCB ranks it first and
    Thompson shows it first most often; an item never rewarded keeps the widest interval."""
    from tastemaker.bandits.strategies import Candidates, LinearState, LinUCB, Thompson

    state = LinearState(dim=2)
    ids = tuple(f"s{i}" for i in range(6))
    x = np.column_stack([np.ones(6), np.zeros(6)])
    for _ in range(50):
        state.update(x[:5], np.array([0.0, 0.0, 0.0, 0.0, 1.0]), ids[:5])
    candidates = Candidates(ids, np.zeros(6), x)
    ucb = LinUCB(state, alpha=0.1).ucb(candidates)
    assert int(np.argmax(ucb[:5])) == 4
    assert ucb[5] > ucb[0]  # "s5", never shown, is worth exploring before the known losers
    first = Thompson(state, scale=0.3).marginals(candidates, 1)[:, 0]
    assert first[4] > 0.5 and first[:4].max() < 0.05
