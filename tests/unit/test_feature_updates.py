"""What each event declares to Redis, from the one list of feature definitions."""

import pytest

from tastemaker.features.definitions import FEATURES, Aggregation, Entity, FeatureDefinition
from tastemaker.features.updates import Op, plan
from tastemaker.v1 import records_pb2


def _event(**fields: object) -> records_pb2.UserEvent:
    base = {"event_id": "e", "user_id": "u1", "event_time_ms": 1_000}
    return records_pb2.UserEvent(**{**base, **fields})


def test_a_play_updates_counters_sums_decay_recency_recent_items_shelf_card_and_item() -> None:
    units = plan(_event(type="play", shelf_id="s1", item_id="t9", listened_seconds=30.0, track_length_seconds=200.0))
    user, item = units
    assert (user.entity, user.entity_id, item.entity, item.entity_id) == ("user", "u1", "item", "t9")
    ops = {op.field: op for op in user.ops}
    assert ops["events.play.count"] == Op("inc", "events.play.count", "1")
    assert ops["events.play.last_ms"] == Op("max", "events.play.last_ms", "1000")
    assert ops["listened_seconds.sum"] == Op("incf", "listened_seconds.sum", "30.0")
    assert ops["track_seconds.sum"].a == "200.0"
    assert ops["plays.decayed_7d"] == Op("decay", "plays.decayed_7d", "1000", "1.0", repr(7 * 24 * 3600 * 1000.0))
    assert ops["listened_seconds.decayed_1d"].b == "30.0"
    assert ops["shelf.engagement|s1"].kind == "inc"
    assert ops["card.engagement|t9"].kind == "inc"
    assert user.recent_lists == ("recent.played",)
    assert [op for op in user.ops if op.kind == "recent"] == [Op("recent", "2", "1000", "t9", "20")]
    assert {op.field for op in item.ops} == {"item.popularity.decayed_1d", "item.engagement.count"}


def test_an_event_without_a_sub_key_skips_the_keyed_features() -> None:
    [user] = plan(_event(type="skip"))
    fields = {op.field for op in user.ops}
    assert "events.skip.count" in fields and "skips.decayed_7d" in fields
    assert not any("|" in f for f in fields)


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
