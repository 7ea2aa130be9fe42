"""Rows in logs: whatever position a legacy log holds, offline jobs see the rows actually shown."""

from __future__ import annotations

from tastemaker.records.log_files import compact_rows
from tastemaker.training.evaluation.evaluate import evaluate
from tastemaker.v1 import api_pb2, records_pb2


def _legacy(i: int) -> records_pb2.RewardedDecision:
    """A page of 3 rows whose pinned shelf was logged at row 501 (shown at row 2), as `main` did."""
    decision = records_pb2.DecisionLog(decision_id=f"d{i}", user_id="u", surface="home", max_shelves=1000)
    decision.exploration.strategy = "epsilon-greedy"
    decision.exploration.epsilon = 0.5
    decision.shelf_candidates.item_ids.extend(["a", "b"])
    decision.shelf_candidates.scores.extend([1.0, 0.5])
    decision.pinned_shelves.append(api_pb2.PinnedShelf(shelf_id="p", position=501))
    for position, (shelf, propensity) in zip((0, 1, 501), (("a", 0.75), ("b", 0.75), ("p", 1.0)), strict=True):
        row = decision.shown.add(shelf_id=shelf, position=position, propensity=propensity)
        row.cards.add(card_id=f"{shelf}1", position=0, propensity=1.0)
        row.card_candidates.item_ids.append(f"{shelf}1")
        row.card_candidates.scores.append(0.0)
        row.cards_ranking_propensity = 1.0
    decision.ranking_propensity = 0.75
    outcomes = [records_pb2.Outcome(decision_id=f"d{i}", item_id="p1", reward=1.0)] if i % 2 else []
    return records_pb2.RewardedDecision(decision=decision, outcomes=outcomes, reward=float(len(outcomes)))


def test_compact_rows_maps_a_far_pin_to_the_row_it_was_shown_at() -> None:
    rewarded = compact_rows(_legacy(0))
    assert [(s.shelf_id, s.position) for s in rewarded.decision.shown] == [("a", 0), ("b", 1), ("p", 2)]
    assert [(p.shelf_id, p.position) for p in rewarded.decision.pinned_shelves] == [("p", 2)]


def test_evaluation_reads_logs_with_any_row() -> None:
    """`tastemaker up` used to exit 1 here: IndexError: index 501 is out of bounds for axis 1 with size 3."""
    report = evaluate([_legacy(i) for i in range(40)], policies=["logging"], slates=False)
    assert report["n_decisions"] == 40
    assert report["policies"]["logging"]["estimates"]["ipw"]["value"] == report["on_policy_mean_reward"]
