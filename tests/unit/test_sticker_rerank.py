"""The sticker re-rank: the static formula, the learned one (static until it has learned, then the
posterior's θ̂·x + β̂_s), the side-by-side arms, the learner's rows of a sticker decision and the
demo report's sends per list by re-rank and minute."""

from __future__ import annotations

import numpy as np
import pytest

from tastemaker.bandits.sticker_rerank import (
    RERANK_DIM,
    LearnedReRank,
    rerank_arm,
    rerank_features,
    static_scores,
)
from tastemaker.bandits.strategies import LinearState
from tastemaker.features.learner import sticker_rows_of
from tastemaker.services.stickers import StickerReRanking
from tastemaker.training.evaluation.sticker_ope import rerank_by_minute
from tastemaker.v1 import records_pb2


def test_static_scores_are_the_model_score_plus_a_tenth_of_log_sends() -> None:
    np.testing.assert_allclose(
        static_scores(np.array([0.5, -1.0]), np.array([0.0, 9.0])), [0.5, -1.0 + 0.1 * np.log(10)]
    )


def test_the_learned_rerank_serves_static_until_it_has_learned_then_its_posterior() -> None:
    state = LinearState(RERANK_DIM)
    rerank = LearnedReRank(state, min_rows=50)
    ids, score, sends = ["a", "b"], np.array([0.2, 0.1]), np.array([0.0, 5.0])
    np.testing.assert_allclose(rerank.scores(ids, score, sends), static_scores(score, sends))
    rng = np.random.default_rng(0)
    # users send what they sent before, whatever the model score: the posterior learns it
    for _ in range(60):
        x = rerank_features(rng.normal(size=2), rng.integers(0, 5, size=2))
        for row in x:
            state.update(row, float(row[2] > 1.0))
        state.items["b"] = (30.0, 20.0)
    assert rerank.learned
    expect = rerank_features(score, sends) @ state.theta() + state.item_terms(ids)[0]
    np.testing.assert_allclose(rerank.scores(ids, score, sends), expect)
    assert state.theta()[2] > 0.2  # the user's own sends count
    with pytest.raises(ValueError, match="4 features"):
        LearnedReRank(LinearState(2))


def test_side_by_side_puts_each_user_in_one_arm_and_logs_which() -> None:
    arms = [rerank_arm(f"chat-{i:04d}") for i in range(1000)]
    assert arms == [rerank_arm(f"chat-{i:04d}") for i in range(1000)]
    assert 400 < arms.count("learned") < 600
    learned = LearnedReRank(LinearState(RERANK_DIM))
    both = StickerReRanking("side-by-side", learned)
    user = next(f"chat-{i:04d}" for i in range(1000) if arms[i] == "learned")
    assert both.scores(user, ["a"], np.zeros(1), np.zeros(1))[0] == "learned"
    with pytest.raises(ValueError, match="needs the learned posterior"):
        StickerReRanking("learned")
    with pytest.raises(ValueError, match="unknown sticker re-rank"):
        StickerReRanking("clever")


def _rewarded(ids: list[str], scores: list[float], sends: list[float], shown: list[str], sent: list[str],
              served_at_ms: int = 0, arm: str = "") -> records_pb2.RewardedDecision:  # fmt: skip
    context = {"rerank": arm} if arm else {}
    decision = records_pb2.DecisionLog(decision_id="d", surface="stickers", served_at_ms=served_at_ms,
                                       feature_values=scores + sends, context=context)  # fmt: skip
    row = decision.shown.add(shelf_id="stickers", position=0, propensity=1.0)
    row.card_candidates.item_ids.extend(ids)
    for position, sticker in enumerate(shown):
        row.cards.add(card_id=sticker, position=position, propensity=0.5)
    outcomes = [records_pb2.Outcome(decision_id="d", item_id=s, reward=1.0) for s in sent]
    return records_pb2.RewardedDecision(decision=decision, outcomes=outcomes, reward=float(len(sent)))


def test_the_learner_learns_one_row_per_suggestion_shown_from_what_the_decision_logged() -> None:
    rows = sticker_rows_of(_rewarded(["a", "b", "c"], [0.9, 0.5, 0.1], [0.0, 3.0, 1.0], ["b", "a"], ["a"]))
    assert [(r, i) for _, r, i in rows] == [(0.0, "b"), (1.0, "a")]
    np.testing.assert_allclose(rows.x[0], [1.0, 1 / 2, np.log(4.0), 1.0])  # b: second by score, shown first
    np.testing.assert_allclose(rows.x[1], [1.0, 1.0, 0.0, 1 / 2])  # a: first by score, shown second
    assert len(sticker_rows_of(_rewarded(["a"], [0.9], [], ["a"], []))) == 0  # values missing: nothing to learn


def test_the_report_compares_the_rerank_arms_in_the_first_and_last_whole_minute() -> None:
    logs = [
        _rewarded(["a"], [0.0], [0.0], ["a"], sent, at, arm)
        for at, arm, sent in [(0, "static", []), (1_000, "learned", []), (30_000, "learned", ["a"]),
                              (70_000, "static", ["a"]), (80_000, "learned", ["a"]), (130_000, "learned", [])]
    ]  # fmt: skip
    report = rerank_by_minute(logs)
    assert report["learned"] == {"decisions": 4, "sends_per_list": 0.5, "first_minute": 0.5, "last_minute": 1.0,
                                 "minutes": 2.0}  # fmt: skip
    assert report["static"]["first_minute"] == 0.0 and report["static"]["last_minute"] == 1.0
    assert rerank_by_minute([_rewarded(["a"], [0.0], [0.0], ["a"], [])]) == {}


def test_the_rerank_parameters_are_judged_off_policy_on_logs_they_were_not_fitted_on() -> None:
    """Uniform logging over 10 candidates, 3 shown; users send the stickers they have sent before
    (sends ≥ 3) far more, whatever the model score. The learned re-rank, fitted on the first half,
    is estimated to earn clearly more on the second half than the static one, which the noisy model
    score drives; the estimate of the static one covers its true value."""
    from tastemaker.training.evaluation.sticker_ope import evaluate_reranks

    rng = np.random.default_rng(3)
    logs, static_truth = [], []
    for i in range(3000):
        ids = [f"s{j}" for j in range(10)]
        score, sends = rng.normal(size=10), rng.integers(0, 6, size=10).astype(float)
        order = rng.permutation(10)[:3]
        appeal = np.where(sends >= 3, 0.5, 0.05)
        sent = [ids[c] for p, c in enumerate(order) if rng.random() < appeal[c] / (1 + p)]
        decision = records_pb2.DecisionLog(decision_id=f"d{i}", surface="stickers", served_at_ms=i,
                                           feature_values=[*score, *sends])  # fmt: skip
        row = decision.shown.add(shelf_id="stickers", position=0, propensity=1.0)
        row.card_candidates.item_ids.extend(ids)
        for p, c in enumerate(order):
            row.cards.add(card_id=ids[c], position=p, propensity=0.1)
        outcomes = [records_pb2.Outcome(decision_id=f"d{i}", item_id=s, reward=1.0) for s in sent[:1]]
        logs.append(records_pb2.RewardedDecision(decision=decision, outcomes=outcomes, reward=float(len(outcomes))))
        top = np.argsort(-static_scores(score, sends))[:3]
        static_truth.append(1 - np.prod([1 - appeal[c] / (1 + p) for p, c in enumerate(top)]))
    judged = evaluate_reranks(logs)
    assert judged["fitted_on"] == 1500 and judged["evaluated_on"] == 1500
    static, learned = judged["policies"]["static re-rank"], judged["policies"]["learned re-rank"]
    assert learned["lower"] > static["upper"]
    assert judged["theta"][2] > 0.05  # the user's own sends count
    assert static["lower"] <= np.mean(static_truth[1500:]) <= static["upper"] + 0.05
    assert evaluate_reranks(logs[:60]) == {}
