"""A home decision read once (`records.logged_page.LoggedPage`): what every offline stage walks."""

from __future__ import annotations

import numpy as np

from tastemaker.bandits.reward_features import COUNT_TYPES
from tastemaker.records.feature_vector import home_names
from tastemaker.records.layout import pack
from tastemaker.records.logged_page import LoggedPage, pages_of
from tastemaker.v1 import api_pb2, records_pb2


def _decision() -> records_pb2.RewardedDecision:
    """Two free rows and a shelf pinned far below the page (logged at row 7 by an earlier version)."""
    decision = records_pb2.DecisionLog(
        decision_id="d1", surface="home", user_id="u", ranking_propensity=0.5, max_shelves=3, max_cards_per_shelf=2,
        feature_names=home_names(["s1", "s2", "s3"], ["a", "b", "c", "a"]),
        feature_values=[3.0] + [0.0] * (len(COUNT_TYPES) - 1) + [1.0, 0.0, 2.0, 5.0, 0.0, 1.0, 5.0],
        candidates=[api_pb2.Shelf(shelf_id="s1", card_ids=["a", "b"]), api_pb2.Shelf(shelf_id="s2", card_ids=["c"]),
                    api_pb2.Shelf(shelf_id="s3", card_ids=["a"])],
        pinned_shelves=[api_pb2.PinnedShelf(shelf_id="s3", position=7)],
    )  # fmt: skip
    decision.shelf_candidates.item_ids.extend(["s1", "s2"])
    decision.shelf_candidates.scores.extend([0.75, 0.25])  # float32-exact: the packed layout holds float32
    first = decision.shown.add(shelf_id="s1", position=0, score=0.75, propensity=0.9, cards_ranking_propensity=0.8)
    first.card_candidates.item_ids.extend(["a", "b"])
    first.card_candidates.scores.extend([0.5, 0.125])
    first.cards.add(card_id="a", position=0, score=0.5, propensity=0.8)
    first.cards.add(card_id="b", position=1, score=0.125, propensity=0.6)
    second = decision.shown.add(shelf_id="s2", position=1, score=0.25, propensity=0.4, cards_ranking_propensity=1.0)
    second.card_candidates.item_ids.extend(["c"])
    second.card_candidates.scores.extend([0.375])
    second.cards.add(card_id="c", position=0, score=0.375, propensity=1.0)
    third = decision.shown.add(shelf_id="s3", position=7, score=0.0, propensity=1.0, cards_ranking_propensity=1.0)
    third.card_candidates.item_ids.extend(["a"])
    third.card_candidates.scores.extend([0.5])
    rewarded = records_pb2.RewardedDecision(decision=decision, reward=2.0)
    rewarded.outcomes.add(decision_id="d1", item_id="b", reward=1.0)
    rewarded.outcomes.add(decision_id="d1", item_id="s2", reward=1.0)
    return rewarded


def test_a_page_knows_its_rows_cells_candidates_and_vector() -> None:
    page = LoggedPage.of(_decision())
    assert [s.position for s in page.decision.shown] == [0, 1, 2]  # the far pin compacted to the row after
    assert page.slot_of_row == {0: 0, 1: 1} and page.pinned == {2: "s3"}
    assert page.shelves.ids == ("s1", "s2") and page.shelf_index == {"s1": 0, "s2": 1}
    np.testing.assert_array_equal(page.shelves.scores, [0.75, 0.25])
    assert [c.ids for c in page.cards] == [("a", "b"), ("c",), ("a",)]
    assert page.card_index[0] == {"a": 0, "b": 1}
    assert page.cells == {"s1": (0, 0), "a": (0, 1), "b": (0, 2), "s2": (1, 0), "c": (1, 1), "s3": (2, 0)}
    np.testing.assert_array_equal(page.row_rewards(3), [1.0, 1.0, 0.0])
    cells = list(page.shown_cells())
    assert cells[:3] == [((0, 0), "s1", 0.9), ((0, 1), "a", 0.9 * 0.8), ((0, 2), "b", 0.9 * 0.6)]
    assert (
        page.vector.counts()[0] == 3.0
        and page.vector.counts()[1:].sum() == 0.0
        and page.vector.engagement("card", ["a", "c"]).tolist() == [5.0, 1.0]
    )


def test_a_packed_decision_reads_as_its_written_out_form() -> None:
    written = LoggedPage.of(_decision())
    rewarded = _decision()
    rewarded.decision.shown[2].position = 2  # a log this version writes: rows already 0, 1, 2
    rewarded.decision.pinned_shelves[0].position = 2
    packed = records_pb2.RewardedDecision()
    packed.CopyFrom(rewarded)
    packed.decision.CopyFrom(pack(rewarded.decision))
    assert packed.decision.layout == 2, "the example packs"
    page = LoggedPage.of(packed)
    assert page.cells == written.cells and page.slot_of_row == written.slot_of_row and page.pinned == written.pinned
    assert [c.ids for c in page.cards] == [c.ids for c in written.cards]


def test_pages_of_reads_each_decision_once_and_passes_pages_through() -> None:
    page = LoggedPage.of(_decision())
    again = pages_of([page, _decision()])
    assert again[0] is page and isinstance(again[1], LoggedPage)
