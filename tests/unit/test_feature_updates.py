"""What each event declares to Redis, from the one list of feature definitions."""

import numpy as np
import pytest

from tastemaker.features.definitions import DAY_S, FEATURES, Aggregation, Entity, FeatureDefinition
from tastemaker.features.folding import BatchFolder, Provenance
from tastemaker.features.updates import Step, compile_plans
from tastemaker.v1 import records_pb2


def test_a_play_is_planned_for_counters_sums_decay_recency_recent_items_shelf_card_and_item() -> None:
    plans = compile_plans()
    user = {op.name: op for op in plans["user"]["play"]}
    assert user["events.play.count"] == Step("count", "events.play.count", "", "", 0.0, 0)
    assert user["listened_seconds.sum"].value_field == "listened_seconds"
    assert user["plays.decayed_7d"].half_life_ms == 7 * 24 * 3600 * 1000.0
    assert user["shelf.engagement"].keyed == "shelf" and user["card.engagement"].keyed == "item"
    assert user["recent.played"].max_items == 20
    assert {op.name for op in plans["item"]["play"]} == {"item.popularity.decayed_1d", "item.engagement.count"}
    assert "play" not in plans["item"] or "skip" not in plans["item"]


def _play(
    i: int, user: str, t_ms: int, item: str = "t1", shelf: str = "s1", listened: float = 10.0
) -> records_pb2.UserEvent:
    event = records_pb2.UserEvent(
        event_id=f"e{i}", user_id=user, type="play", event_time_ms=t_ms, item_id=item, shelf_id=shelf,
        listened_seconds=listened, track_length_seconds=100.0,
    )  # fmt: skip
    return event


def test_a_batch_folds_into_one_update_per_unit_and_partition() -> None:
    batch = [
        (_play(0, "ann", 1_000, item="t1"), Provenance("events", 0, 10)),
        (_play(1, "ann", 3_000, item="t2", shelf="s2"), Provenance("events", 0, 11)),
        (_play(2, "bob", 2_000, item="t1"), Provenance("events", 1, 5)),
        (_play(3, "ann", 2_000, item="t1"), Provenance("events", 0, 12)),  # late: older than the one before
    ]
    updates = BatchFolder().fold(batch)
    assert [(u.unit, u.entity_id, u.partition) for u in updates] == [
        ("user", "ann", 0), ("user", "bob", 1), ("item", "t1", 0), ("item", "t2", 0), ("item", "t1", 1),
    ]  # fmt: skip
    ann = updates[0]
    assert (ann.first_offset, ann.last_offset, len(ann.events)) == (10, 12, 3)
    assert ann.counts["events.play.count"] == 3 and ann.counts["card.engagement|t1"] == 2
    assert ann.counts["shelf.engagement|s2"] == 1 and ann.sums["listened_seconds.sum"] == 30.0
    assert ann.lasts["events.play.last_ms"] == 3_000
    assert ann.recents["recent.played"] == (20, {"t1": 2_000, "t2": 3_000})
    assert updates[2].counts == {"item.engagement.count": 2}


def test_a_folded_decayed_value_equals_the_sum_over_its_events_in_any_order() -> None:
    rng = np.random.default_rng(3)
    times = rng.integers(1_700_000_000_000, 1_700_000_000_000 + 20 * 24 * 3600 * 1000, size=200)
    listened = rng.uniform(1, 300, size=200)
    batch = [
        (_play(i, "cy", int(t), listened=float(x)), Provenance("events", 0, i))
        for i, (t, x) in enumerate(zip(times, listened, strict=True))
    ]
    (user, *_items) = BatchFolder().fold(batch)
    folded, t_ref, half_life_ms = user.decays["listened_seconds.decayed_1d"]
    assert t_ref == times.max() and half_life_ms == DAY_S * 1000
    reference = np.sum(listened * 2.0 ** (-(times.max() - times) / (DAY_S * 1000)))
    assert folded == pytest.approx(reference, rel=1e-12)
    assert user.decays["plays.decayed_7d"][0] == pytest.approx(
        np.sum(2.0 ** (-(times.max() - times) / (7 * DAY_S * 1000))), rel=1e-12
    )


def test_one_by_one_splits_a_group_into_its_events_in_offset_order() -> None:
    batch = [(_play(i, "dee", 1_000 + i), Provenance("events", 2, 40 + i)) for i in range(3)]
    folder = BatchFolder()
    singles = folder.one_by_one(folder.fold(batch)[0])
    assert [(s.first_offset, s.last_offset, s.counts["events.play.count"]) for s in singles] == [
        (40, 40, 1), (41, 41, 1), (42, 42, 1),
    ]  # fmt: skip


def test_every_event_type_has_an_exact_counter() -> None:
    counters = {f.name for f in FEATURES if f.aggregation is Aggregation.COUNT and f.entity is Entity.USER}
    for event_type in ("play", "skip", "card_click", "sticker_sent", "message_typed", "home_impression"):
        assert f"events.{event_type}.count" in counters


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source_events": frozenset({"teleport"})}, "known event types"),
        ({"aggregation": Aggregation.SUM}, "`value_field` is required by sums"),
        ({"aggregation": Aggregation.DECAYED_COUNT}, "positive `half_life_s`"),
        ({"aggregation": Aggregation.DECAYED_COUNT, "half_life_s": -1.0}, "positive `half_life_s`"),
        ({"aggregation": Aggregation.RECENT_ITEMS}, "`max_items` is required"),
        ({"name": "a|b"}, "may not contain"),
        ({"aggregation": Aggregation.SUM, "value_field": "user_id"}, "`value_field` must be one of"),
    ],
)
def test_bad_definitions_are_refused(kwargs: dict, message: str) -> None:
    base = {"name": "x", "entity": Entity.USER, "source_events": frozenset({"play"}), "aggregation": Aggregation.COUNT}
    with pytest.raises(ValueError, match=message):
        FeatureDefinition(**{**base, **kwargs})
