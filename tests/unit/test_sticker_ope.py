"""Off-policy evaluation of sticker suggestions, worked by hand: slots per position, the logging
policy's estimate equals the on-policy send rate, a greedy target weighs only what greedy would
show where it would show it, uniform-random spreads over the candidates, and a bundle's policy
re-ranks the logged candidates by its own similarity."""

from __future__ import annotations

import numpy as np
import pytest

from tastemaker.training.evaluation.sticker_ope import (
    evaluate_stickers,
    format_sticker_report,
    resolve,
    slot_data,
    sticker_decisions,
    target_propensity,
)
from tastemaker.v1 import records_pb2


def _decision(i: int, candidates: dict[str, float], shown: list[tuple[str, float]], sent: str | None):  # type: ignore[no-untyped-def]
    decision = records_pb2.DecisionLog(
        decision_id=f"d{i}", surface="stickers", served_at_ms=i, context={"message": "good night"}
    )
    decision.feature_values.extend([*candidates.values(), *[0.0] * len(candidates)])
    row = decision.shown.add(shelf_id="stickers", position=0, propensity=1.0)
    row.card_candidates.item_ids.extend(candidates)
    row.card_candidates.scores.extend(candidates.values())
    for position, (sticker_id, propensity) in enumerate(shown):
        row.cards.add(card_id=sticker_id, position=position, propensity=propensity)
    outcomes = [] if sent is None else [records_pb2.Outcome(decision_id=f"d{i}", item_id=sent, reward=1.0)]
    return records_pb2.RewardedDecision(decision=decision, outcomes=outcomes, reward=float(sent is not None))


CANDIDATES = {"moon": 0.9, "star": 0.5, "sun": 0.1}


def test_slots_and_target_propensities_by_hand() -> None:
    logs = [
        _decision(0, CANDIDATES, [("moon", 0.8), ("star", 0.7)], sent="moon"),
        _decision(1, CANDIDATES, [("sun", 0.1), ("moon", 0.1)], sent="moon"),
        _decision(2, CANDIDATES, [("moon", 0.8), ("star", 0.7)], sent=None),
    ]
    data = slot_data(logs)
    np.testing.assert_array_equal(data.rewards, [[1, 0], [0, 1], [0, 0]])
    np.testing.assert_allclose(data.logged_propensity, [[0.8, 0.7], [0.1, 0.1], [0.8, 0.7]])
    # greedy shows moon then star: weight 1 where it agrees, 0 elsewhere
    np.testing.assert_allclose(target_propensity(logs, resolve("greedy")), [[1, 1], [0, 0], [1, 1]])
    np.testing.assert_allclose(target_propensity(logs, resolve("uniform-random")), np.full((3, 2), 1 / 3))
    np.testing.assert_allclose(target_propensity(logs, resolve("logging")), data.logged_propensity)


def test_the_logging_estimate_is_the_on_policy_rate_and_greedy_is_reweighted() -> None:
    logs = [
        _decision(0, CANDIDATES, [("moon", 0.8), ("star", 0.7)], sent="moon"),
        _decision(1, CANDIDATES, [("sun", 0.1), ("moon", 0.1)], sent="moon"),
        _decision(2, CANDIDATES, [("moon", 0.8), ("star", 0.7)], sent=None),
    ]
    home = records_pb2.RewardedDecision(decision=records_pb2.DecisionLog(surface="home"))
    report = evaluate_stickers([*logs, home])
    assert report["n_decisions"] == 3 and report["sends"] == 2
    assert report["on_policy_sends_per_decision"] == pytest.approx(2 / 3)
    logging = report["policies"]["logging"]["estimates"]
    assert logging["ipw"]["value"] == pytest.approx(2 / 3)
    assert logging["ipw"]["lower"] <= 2 / 3 <= logging["ipw"]["upper"]
    # greedy: only decision 0's send counts, weight 1/0.8
    assert report["policies"]["greedy"]["estimates"]["ipw"]["value"] == pytest.approx((1 / 0.8) / 3)
    # uniform: decision 0's send weighs (1/3)/0.8, decision 1's (1/3)/0.1
    assert report["policies"]["uniform-random"]["estimates"]["ipw"]["value"] == pytest.approx(
        ((1 / 3) / 0.8 + (1 / 3) / 0.1) / 3
    )
    text = format_sticker_report(report)
    assert "sticker decisions: 3" in text and "greedy" in text


def test_only_evaluable_sticker_decisions_count_and_bad_policies_are_refused() -> None:
    empty = records_pb2.RewardedDecision(decision=records_pb2.DecisionLog(surface="stickers"))
    assert sticker_decisions([empty]) == []
    with pytest.raises(ValueError, match="no sticker decisions"):
        evaluate_stickers([empty])
    with pytest.raises(ValueError, match="unknown sticker policy"):
        resolve("best")
