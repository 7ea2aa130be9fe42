"""Turns one event into the Redis updates its features declare, grouped by the atomic unit
(one user, or one item) that a single Lua call applies. Pure: no Redis here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tastemaker.features.definitions import FEATURES, Aggregation, Entity, FeatureDefinition
from tastemaker.v1 import records_pb2

#: Field suffix holding a decayed feature's reference time (ms).
DECAY_TIME_SUFFIX = "@t"


@dataclass(frozen=True)
class Op:
    """One update: `kind` is inc | incf | max | decay | recent (see store.APPLY_LUA)."""

    kind: str
    field: str
    a: str = ""
    b: str = ""
    c: str = ""


@dataclass(frozen=True)
class UnitUpdate:
    """Every op one event makes on one atomic unit: a user or an item."""

    entity: str  # "user" or "item"
    entity_id: str
    ops: tuple[Op, ...]
    #: names of the recent-items lists the `recent` ops refer to, by 1-based index
    recent_lists: tuple[str, ...] = ()


def field_name(feature: FeatureDefinition, event: records_pb2.UserEvent) -> str | None:
    """The hash field for `feature` on this event, or None when the event lacks the sub-key."""
    if feature.entity is Entity.USER_SHELF:
        return f"{feature.name}|{event.shelf_id}" if event.shelf_id else None
    if feature.entity is Entity.USER_ITEM:
        return f"{feature.name}|{event.item_id}" if event.item_id else None
    return feature.name


def _num(x: float) -> str:
    return repr(float(x))


def _op(feature: FeatureDefinition, field: str, event: records_pb2.UserEvent, recent_index: int) -> Op:
    t = str(event.event_time_ms)
    agg = feature.aggregation
    if agg is Aggregation.COUNT:
        return Op("inc", field, "1")
    if agg is Aggregation.SUM:
        return Op("incf", field, _num(getattr(event, feature.value_field or "value")))
    if agg is Aggregation.LAST_TIME:
        return Op("max", field, t)
    if agg in (Aggregation.DECAYED_COUNT, Aggregation.DECAYED_SUM):
        weight = 1.0 if agg is Aggregation.DECAYED_COUNT else float(getattr(event, feature.value_field or "value"))
        return Op("decay", field, t, _num(weight), _num((feature.half_life_s or 0.0) * 1000.0))
    if agg is Aggregation.RECENT_ITEMS:
        return Op("recent", str(recent_index), t, event.item_id, str(feature.max_items))
    raise AssertionError(f"unhandled aggregation {agg}")


def plan(event: records_pb2.UserEvent, features: Iterable[FeatureDefinition] = FEATURES) -> list[UnitUpdate]:
    user_ops: list[Op] = []
    recent: list[str] = []
    item_ops: list[Op] = []
    for feature in features:
        if event.type not in feature.source_events:
            continue
        if feature.aggregation is Aggregation.RECENT_ITEMS:
            if not event.item_id:
                continue
            recent.append(feature.name)
            user_ops.append(_op(feature, feature.name, event, len(recent) + 1))  # KEYS[1] is the hash
            continue
        if feature.entity is Entity.ITEM:
            if event.item_id:
                item_ops.append(_op(feature, feature.name, event, 0))
            continue
        field = field_name(feature, event)
        if field is not None:
            user_ops.append(_op(feature, field, event, 0))
    units = [UnitUpdate("user", event.user_id, tuple(user_ops), tuple(recent))]
    if item_ops:
        units.append(UnitUpdate("item", event.item_id, tuple(item_ops)))
    return units
