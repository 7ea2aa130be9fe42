"""Explanations as actions and the caller's candidate features, through RankHome: checked on the
way in (INVALID_ARGUMENT naming the field), chosen per shelf with a propensity, answered, logged
(written out, with every variant's score), replayed and counted by the propensity check, evaluated
(the logging policy's estimate is its on-policy mean, so logged and re-run propensities agree),
learned by the reward models and by the online learner (the same rows serving ranks with)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from tastemaker.bandits.catalog import Catalog, ShelfCandidates
from tastemaker.bandits.online_features import OnlineFeatures
from tastemaker.bandits.reward_features import encode
from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.bandits.strategies import EpsilonGreedy, LinearState, LinUCB
from tastemaker.features.learner import rows_of
from tastemaker.records.layout import pack
from tastemaker.services.errors import InvalidArgument
from tastemaker.services.home import HomeRankingService, ServedPage, rank_home_response
from tastemaker.services.requests import HomeRequest, parse_rank_home
from tastemaker.training.evaluation.evaluate import evaluate
from tastemaker.training.lifecycle.propensity_check import check_propensities
from tastemaker.training.modeling.reward_rows import training_rows
from tastemaker.v1 import api_pb2, records_pb2
from tests.support.fakes import FixedFeatures

EXPLANATIONS = ("because-you-played", "popular-near-you", "new-release")
WORLD = SimulatedWorld(seed=3, n_shelves=5, cards_per_shelf=6, explanations=EXPLANATIONS)


class ExplainedScorer:
    """A reward model that likes "new-release" rows and fresh shelves (deterministic, for exact checks)."""

    version = "explained-1"

    def score_level(
        self,
        level: str,
        counts: np.ndarray,
        ids: Sequence[str],
        engagement: np.ndarray,
        context: Mapping[str, str] | None = None,
        explanations: Sequence[str] | None = None,
    ) -> np.ndarray:
        base = np.log1p(np.asarray(engagement, dtype=np.float64))
        if explanations is not None:
            base = base + np.array([1.0 if e == "new-release" else 0.0 for e in explanations])
        return base


def _catalog() -> Catalog:
    shelves = []
    for s, shelf in enumerate(WORLD.catalog().shelves):
        shelves.append(
            ShelfCandidates(
                shelf.shelf_id, shelf.card_ids, EXPLANATIONS if s % 2 == 0 else (),
                {"freshness": float(s) / 5, "editorial": 1.0},
                {shelf.card_ids[0]: {"freshness": 0.5}},
            )
        )  # fmt: skip
    return Catalog(tuple(shelves))


def _service(strategy=None, online: OnlineFeatures | None = None, seed: int = 1) -> HomeRankingService:  # type: ignore[no-untyped-def]
    published: list[bytes] = []
    return HomeRankingService(
        features=FixedFeatures(WORLD), catalog=_catalog(), model=ExplainedScorer(),
        strategy=strategy or EpsilonGreedy(0.3), publish=lambda topic, payload, *a: published.append(payload) or True,
        decisions_topic="decisions", default_max_shelves=3, default_max_cards=3, reward_window_s=1.0,
        rng=np.random.default_rng(seed), online=online,
    )  # fmt: skip


def _logs(n: int, users: int = 1) -> list[records_pb2.RewardedDecision]:
    service = _service()
    rng = np.random.default_rng(5)
    out = []
    for i in range(n):
        user = f"user-{i % users}"
        decision = service.rank(HomeRequest(user, {"hour": "night"}, (), 0, 0))
        shown = [(s.shelf_id, [c.card_id for c in s.cards]) for s in decision.shown]
        said = [s.explanation_id or None for s in decision.shown]
        clicks = WORLD.respond(user, shown, rng, explanations=said)
        outcomes = [
            records_pb2.Outcome(decision_id=decision.decision_id, item_id=c.card_id, reward=1.0) for c in clicks
        ]
        out.append(records_pb2.RewardedDecision(decision=decision, outcomes=outcomes, reward=float(len(clicks))))
    return out


@pytest.fixture(scope="module")
def logs() -> list[records_pb2.RewardedDecision]:
    return _logs(600)


def _request(**shelf: object) -> api_pb2.RankHomeRequest:
    return api_pb2.RankHomeRequest(
        user_id="u",
        candidates=[api_pb2.Shelf(shelf_id="s", card_ids=["a", "b"], **shelf)],  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("shelf", "field"),
    [
        ({"explanation_ids": ["x", "x"]}, "candidates[0].explanation_ids"),
        ({"explanation_ids": [f"e{i}" for i in range(17)]}, "candidates[0].explanation_ids"),
        ({"explanation_ids": ["ok", ""]}, "candidates[0].explanation_ids[1]"),
        ({"explanation_ids": ["x" * 300]}, "candidates[0].explanation_ids[0]"),
        ({"features": {"fresh": float("nan")}}, "candidates[0].features['fresh']"),
        ({"features": {"fresh": 1e300}}, "candidates[0].features['fresh']"),
        ({"features": {f"f{i}": 1.0 for i in range(65)}}, "candidates[0].features"),
        ({"features": {"x" * 65: 1.0}}, "candidates[0].features['"),
        ({"card_features": {"zz": api_pb2.Features(values={"a": 1.0})}}, "candidates[0].card_features['zz']"),
        ({"card_features": {"a": api_pb2.Features(values={"a": float("inf")})}}, "candidates[0].card_features['a']"),
    ],
)
def test_bad_explanations_and_features_are_refused_naming_the_field(shelf: dict, field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_rank_home(_request(**shelf))
    assert raised.value.field.startswith(field), raised.value.field


def test_explanations_and_features_are_parsed() -> None:
    request = parse_rank_home(
        _request(explanation_ids=["e1", "e2"], features={"fresh": 0.5},
                 card_features={"a": api_pb2.Features(values={"x": 2.0})})
    )  # fmt: skip
    shelf = request.candidates[0]
    assert shelf.explanation_ids == ("e1", "e2")
    assert shelf.features == {"fresh": 0.5} and shelf.card_features == {"a": {"x": 2.0}}


def test_each_shown_shelf_with_variants_is_answered_and_logged_under_one(logs) -> None:
    service = _service()
    decision, page = service._decide(HomeRequest("user-0", {"hour": "night"}, (), 0, 0))
    response = rank_home_response(ServedPage(decision, page))
    catalog = {s.shelf_id: s for s in _catalog().shelves}
    for ranked, logged in zip(response.shelves, decision.shown, strict=True):
        variants = catalog[ranked.shelf_id].explanation_ids
        assert ranked.explanation_id == logged.explanation_id
        assert ranked.explanation_propensity == pytest.approx(logged.explanation_propensity)
        if variants:
            assert ranked.explanation_id in variants
            assert tuple(logged.explanation_candidates.item_ids) == variants
            scores = dict(zip(variants, logged.explanation_candidates.scores, strict=True))
            assert scores["new-release"] == pytest.approx(scores["because-you-played"] + 1.0)
            # ε-greedy over the variants: the greedy one (new-release) 0.7 + 0.1, the others 0.1
            expected = 0.8 if ranked.explanation_id == "new-release" else 0.1
            assert ranked.explanation_propensity == pytest.approx(expected)
        else:
            assert ranked.explanation_id == "" and not logged.HasField("explanation_candidates")
    assert decision.layout == 0  # written out: the packed layout holds no explanations or features
    assert pack(decision) is decision
    logged_candidates = {s.shelf_id: s for s in decision.candidates}
    first = logged_candidates[WORLD.shelf_id(2)]
    assert list(first.explanation_ids) == list(EXPLANATIONS)
    assert dict(first.features) == {"freshness": pytest.approx(0.4), "editorial": 1.0}
    assert dict(first.card_features[WORLD.card_id(2, 0)].values) == {"freshness": 0.5}


def test_the_propensity_check_replays_and_counts_the_pairs(logs) -> None:
    report = check_propensities(logs)
    assert report.passed, report.lines()
    assert report.replayed == len(logs) and report.contexts_tested >= 1
    # a log that claims another explanation propensity fails the replay
    broken = [records_pb2.RewardedDecision() for _ in logs[:20]]
    for copy, original in zip(broken, logs, strict=False):
        copy.CopyFrom(original)
        for shelf in copy.decision.shown:
            if shelf.explanation_id:
                shelf.explanation_propensity *= 0.5
    assert not check_propensities(broken).passed


def test_the_frequency_check_counts_each_pair(logs) -> None:
    from tastemaker.training.lifecycle.propensity_check import PropensityCheck, frequencies

    said = Counter(s.explanation_id for r in logs for s in r.decision.shown if s.explanation_id)
    assert said["new-release"] > 2 * said["popular-near-you"]  # the model's favourite is shown most
    lying = [records_pb2.RewardedDecision() for _ in logs]
    for copy, original in zip(lying, logs, strict=True):
        copy.CopyFrom(original)
        for shelf in copy.decision.shown:  # claims a uniform choice among the variants it did not make
            if shelf.explanation_id:
                shelf.explanation_propensity = 1.0 / 3
    report = PropensityCheck()
    frequencies(lying, report)
    assert report.contexts_tested >= 1 and not report.passed
    assert any("under 'new-release'" in m.item_id for m in report.mismatches)


def test_the_logging_policy_estimate_is_its_on_policy_mean_with_explanations(logs) -> None:
    report = evaluate(logs, policies=["logging", "greedy"], slates=False)
    logged_mean = float(np.mean([r.reward for r in logs]))
    assert report["policies"]["logging"]["estimates"]["ipw"]["value"] == pytest.approx(logged_mean, rel=1e-9)
    assert np.isfinite(report["policies"]["greedy"]["estimates"]["ipw"]["value"])


def test_reward_model_rows_carry_the_explanation_and_its_propensity(logs) -> None:
    x, _, _, propensity = training_rows(logs[:50])
    plain = encode(np.zeros(10), np.zeros(1), ["s"], "shelf")
    explained = encode(np.zeros(10), np.zeros(1), ["s"], "shelf", explanations=["new-release"])
    column = int(np.flatnonzero(explained[0] != plain[0])[0])
    assert x[:, column].any()
    rewarded = logs[0]
    shelf = next(s for s in rewarded.decision.shown if s.explanation_id)
    assert shelf.propensity * shelf.explanation_propensity in set(propensity.tolist())


def test_the_learner_learns_explanations_on_the_rows_serving_ranked_with(logs) -> None:
    basic = rows_of(logs[0])
    said = [s for s in logs[0].decision.shown if s.explanation_id]
    assert basic["explanation"].items == [s.explanation_id for s in said]
    online = OnlineFeatures(width=14)
    service = _service(LinUCB(LinearState(online.dim)), online)
    decision, page = service._decide(HomeRequest("user-0", {"hour": "night"}, (), 0, 0))
    rewarded = records_pb2.RewardedDecision(decision=decision)
    taught = rows_of(rewarded, online)
    from tastemaker.bandits.page import PageInputs

    assert taught["shelf"].x.shape == (len(decision.shown), online.dim)
    catalog = {s.shelf_id: s for s in _catalog().shelves}
    counts = np.zeros(10)
    inputs = PageInputs(_catalog().shelves, counts, np.zeros(5), [], {"hour": "night"}, 3, 3, online=online)
    features = FixedFeatures(WORLD).read("user-0")
    for r, shelf in enumerate(decision.shown):
        engagement = features.shelf_engagements([shelf.shelf_id])
        x = inputs.linear_rows("shelf", [shelf.shelf_id], engagement, [catalog[shelf.shelf_id].features])
        np.testing.assert_allclose(taught["shelf"].x[r], x[0])
    assert len(taught["explanation"]) == sum(1 for s in decision.shown if s.explanation_id)


def test_a_log_whose_shown_explanation_is_not_among_its_variants_is_refused_clearly(logs) -> None:
    from tastemaker.records.logged_page import LoggedPage

    broken = records_pb2.RewardedDecision()
    broken.CopyFrom(next(r for r in logs if any(s.explanation_id for s in r.decision.shown)))
    shelf = next(s for s in broken.decision.shown if s.explanation_id)
    shelf.explanation_id = "made-up"
    with pytest.raises(ValueError, match="made-up"):
        LoggedPage.of(broken)


def test_retrain_learns_the_explanations_from_the_logs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`retrain` (validation, training, the gate) on logs with explanations: the trained model tells
    the explanations apart (the simulated users look at "because-you-played" rows most on average)."""
    from tastemaker.models.artifacts import load_reward_model
    from tastemaker.training.lifecycle.registry import Registry
    from tastemaker.training.lifecycle.retrain import retrain

    logs = _logs(1500, users=30)
    for i, rewarded in enumerate(logs):
        rewarded.decision.served_at_ms = 1_000 * i
    registry = Registry(tmp_path / "registry")
    summary = retrain(logs, registry, kind="logistic", epochs=3, say=lambda line: None)
    assert summary.trained
    model = load_reward_model(registry.path(summary.version))
    shelf = WORLD.shelf_id(0)
    scores = model.score_level(
        "shelf", np.zeros(10), [shelf] * 3, np.ones(3), {"hour": "night"}, explanations=EXPLANATIONS
    )
    assert len(set(np.round(scores, 6).tolist())) == 3
