"""The logged feature vector: names written by serving, read back by every offline job."""

from __future__ import annotations

import numpy as np

from tastemaker.bandits.catalog import ShelfCandidates
from tastemaker.bandits.reward_features import COUNT_TYPES
from tastemaker.features.store import UserFeatures
from tastemaker.records.feature_vector import CARD, SHELF, LoggedVector, home_names, is_count
from tastemaker.services.home import feature_vector
from tastemaker.v1 import records_pb2


def test_what_serving_logs_is_what_the_offline_jobs_read() -> None:
    shelves = [ShelfCandidates("s1", ("a", "b")), ShelfCandidates("s2", ("c",))]
    user = UserFeatures(
        "u",
        {"events.play.count": 3},
        {"shelf.engagement": {"s2": 5}, "card.engagement": {"b": 2, "c": 7}},
    )
    values, _ = feature_vector(user.for_ranking(COUNT_TYPES, ["s1", "s2"], ["a", "b", "c"]), shelves)
    names = home_names(["s1", "s2"], ["a", "b", "c"])
    assert len(names) == len(values)
    assert sum(map(is_count, names)) == len(COUNT_TYPES)
    vector = LoggedVector.of(records_pb2.DecisionLog(feature_names=names, feature_values=values.tolist()))
    np.testing.assert_array_equal(vector.engagement(SHELF, ["s1", "s2"]), [0, 5])
    np.testing.assert_array_equal(vector.engagement(CARD, ["a", "b", "c", "never-logged"]), [0, 2, 7, 0])
    np.testing.assert_array_equal(vector.counts(), values[: len(COUNT_TYPES)])
    assert vector.missing(CARD, ["a", "zzz"]) == ["zzz"]
