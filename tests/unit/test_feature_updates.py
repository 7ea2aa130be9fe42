"""What each event declares to Redis, from the one list of feature definitions."""

import pytest

from tastemaker.features.definitions import FEATURES, Aggregation, Entity, FeatureDefinition
from tastemaker.features.updates import OpSpec, compile_plans, lua_dispatch, recent_lists


def test_a_play_is_planned_for_counters_sums_decay_recency_recent_items_shelf_card_and_item() -> None:
    plans = compile_plans()
    user = {op.name: op for op in plans["user"]["play"]}
    assert user["events.play.count"] == OpSpec("count", "events.play.count", "", "", 0.0, 0)
    assert user["listened_seconds.sum"].value_field == "listened_seconds"
    assert user["plays.decayed_7d"].half_life_ms == 7 * 24 * 3600 * 1000.0
    assert user["shelf.engagement"].keyed == "shelf" and user["card.engagement"].keyed == "item"
    assert user["recent.played"].max_items == 20
    assert {op.name for op in plans["item"]["play"]} == {"item.popularity.decayed_1d", "item.engagement.count"}
    assert "play" not in plans["item"] or "skip" not in plans["item"]
    assert recent_lists(plans, "play") == ["recent.played"] and recent_lists(plans, "skip") == []


def test_the_generated_lua_has_one_branch_per_unit_and_type() -> None:
    lua = lua_dispatch(compile_plans())
    assert 'if unit == "user" then' in lua and 'elseif unit == "item" then' in lua
    assert 'count("events.play.count")' in lua
    assert "if shelf ~= '' then count(\"shelf.engagement\" .. '|' .. shelf) end" in lua
    assert 'sum("listened_seconds.sum", ARGV[10])' in lua  # listened_seconds is the 2nd value field
    assert "recent(2, 20)" in lua


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
