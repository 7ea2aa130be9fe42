"""Every online feature, declared once: its name, entity, source events, aggregation and
window. The stream processor turns these into Redis updates, the store reads them back by
the same declarations, and adding a feature is adding one line to `FEATURES`.

Decayed aggregations are exponentially time-decayed in *event* time with a half-life h:
the value at reference time T is Σ wᵢ · 2^(−(T − tᵢ)/h), kept as (value, T) with T the
latest event time seen, so events arriving out of order are weighted exactly as in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tastemaker.features.events import EVENT_TYPES

DAY_S = 24 * 3600.0


class Entity(StrEnum):
    #: one value per user
    USER = "user"
    #: one value per (user, shelf_id of the event)
    USER_SHELF = "user_shelf"
    #: one value per (user, item_id of the event): cards, tracks, stickers
    USER_ITEM = "user_item"
    #: one value per item_id, across all users (global popularity)
    ITEM = "item"


class Aggregation(StrEnum):
    COUNT = "count"
    SUM = "sum"
    DECAYED_COUNT = "decayed_count"
    DECAYED_SUM = "decayed_sum"
    #: the latest event time (recency), in ms
    LAST_TIME = "last_time"
    #: the most recent distinct item ids, newest first, bounded by `max_items`
    RECENT_ITEMS = "recent_items"


#: Event fields a SUM may add up.
SUMMABLE_FIELDS = frozenset({"value", "listened_seconds", "track_length_seconds", "dwell_ms"})


@dataclass(frozen=True)
class FeatureDefinition:
    name: str
    entity: Entity
    source_events: frozenset[str]
    aggregation: Aggregation
    #: the event field summed by SUM / DECAYED_SUM
    value_field: str | None = None
    half_life_s: float | None = None
    max_items: int | None = None

    def __post_init__(self) -> None:
        unknown = self.source_events - EVENT_TYPES
        if not self.source_events or unknown:
            raise ValueError(f"feature {self.name!r}: `source_events` must be known event types, got {sorted(unknown)}")
        summing = self.aggregation in (Aggregation.SUM, Aggregation.DECAYED_SUM)
        if summing != (self.value_field is not None):
            raise ValueError(f"feature {self.name!r}: `value_field` is required by sums and only by sums")
        if self.value_field is not None and self.value_field not in SUMMABLE_FIELDS:
            raise ValueError(f"feature {self.name!r}: `value_field` must be one of {sorted(SUMMABLE_FIELDS)}")
        decayed = self.aggregation in (Aggregation.DECAYED_COUNT, Aggregation.DECAYED_SUM)
        if decayed != (self.half_life_s is not None) or (decayed and self.half_life_s <= 0):  # type: ignore[operator]
            raise ValueError(f"feature {self.name!r}: decayed features need a positive `half_life_s`, others none")
        if (self.aggregation is Aggregation.RECENT_ITEMS) != (self.max_items is not None):
            raise ValueError(f"feature {self.name!r}: `max_items` is required by recent_items and only by it")
        if self.aggregation is Aggregation.RECENT_ITEMS and self.entity is not Entity.USER:
            raise ValueError(f"feature {self.name!r}: recent_items is a per-user feature")
        if "|" in self.name or "@" in self.name:
            raise ValueError(f"feature {self.name!r}: names may not contain '|' or '@'")


@dataclass(frozen=True)
class RatioDefinition:
    """A feature derived at read time: Σ numerators / Σ denominators (default when 0/0)."""

    name: str
    numerators: tuple[str, ...]
    denominators: tuple[str, ...]
    default: float = 0.0


ENGAGEMENT = frozenset({"card_click", "play", "shelf_click"})

FEATURES: tuple[FeatureDefinition, ...] = (
    *(
        FeatureDefinition(f"events.{t}.count", Entity.USER, frozenset({t}), Aggregation.COUNT)
        for t in sorted(EVENT_TYPES)
    ),
    *(
        FeatureDefinition(f"events.{t}.last_ms", Entity.USER, frozenset({t}), Aggregation.LAST_TIME)
        for t in sorted(EVENT_TYPES)
    ),
    FeatureDefinition(
        "plays.decayed_7d", Entity.USER, frozenset({"play"}), Aggregation.DECAYED_COUNT, half_life_s=7 * DAY_S
    ),
    FeatureDefinition(
        "skips.decayed_7d", Entity.USER, frozenset({"skip"}), Aggregation.DECAYED_COUNT, half_life_s=7 * DAY_S
    ),
    FeatureDefinition("listened_seconds.sum", Entity.USER, frozenset({"play"}), Aggregation.SUM, "listened_seconds"),
    FeatureDefinition("track_seconds.sum", Entity.USER, frozenset({"play"}), Aggregation.SUM, "track_length_seconds"),
    FeatureDefinition(
        "listened_seconds.decayed_1d",
        Entity.USER,
        frozenset({"play"}),
        Aggregation.DECAYED_SUM,
        "listened_seconds",
        DAY_S,
    ),
    FeatureDefinition(
        "dwell_ms.sum", Entity.USER, frozenset({"shelf_dwell", "card_dwell"}), Aggregation.SUM, "dwell_ms"
    ),
    FeatureDefinition("recent.played", Entity.USER, frozenset({"play"}), Aggregation.RECENT_ITEMS, max_items=20),
    FeatureDefinition(
        "recent.stickers_sent", Entity.USER, frozenset({"sticker_sent"}), Aggregation.RECENT_ITEMS, max_items=20
    ),
    FeatureDefinition("shelf.engagement", Entity.USER_SHELF, ENGAGEMENT, Aggregation.COUNT),
    FeatureDefinition(
        "shelf.engagement.decayed_3d", Entity.USER_SHELF, ENGAGEMENT, Aggregation.DECAYED_COUNT, half_life_s=3 * DAY_S
    ),
    FeatureDefinition("shelf.dwell_ms", Entity.USER_SHELF, frozenset({"shelf_dwell"}), Aggregation.SUM, "dwell_ms"),
    FeatureDefinition("card.engagement", Entity.USER_ITEM, frozenset({"card_click", "play"}), Aggregation.COUNT),
    FeatureDefinition("sticker.sends", Entity.USER_ITEM, frozenset({"sticker_sent"}), Aggregation.COUNT),
    FeatureDefinition(
        "sticker.sends.decayed_7d",
        Entity.USER_ITEM,
        frozenset({"sticker_sent"}),
        Aggregation.DECAYED_COUNT,
        half_life_s=7 * DAY_S,
    ),
    FeatureDefinition(
        "item.popularity.decayed_1d",
        Entity.ITEM,
        frozenset({"play", "card_click", "sticker_sent"}),
        Aggregation.DECAYED_COUNT,
        half_life_s=DAY_S,
    ),
    FeatureDefinition(
        "item.engagement.count", Entity.ITEM, frozenset({"play", "card_click", "sticker_sent"}), Aggregation.COUNT
    ),
)

RATIOS: tuple[RatioDefinition, ...] = (
    RatioDefinition("skip_rate", ("events.skip.count",), ("events.play.count", "events.skip.count")),
    RatioDefinition("completion_rate", ("listened_seconds.sum",), ("track_seconds.sum",)),
)


def by_name() -> dict[str, FeatureDefinition]:
    return {f.name: f for f in FEATURES}


def _check_unique() -> None:
    names = [f.name for f in FEATURES] + [r.name for r in RATIOS]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"feature names must be unique: {sorted(duplicates)}")
    known = set(by_name())
    for ratio in RATIOS:
        missing = set(ratio.numerators + ratio.denominators) - known
        if missing:
            raise ValueError(f"ratio {ratio.name!r} refers to unknown features {sorted(missing)}")


_check_unique()
