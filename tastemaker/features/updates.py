"""Compiles the feature definitions into per-event-type update plans, one per atomic unit (a
user, or an item). Pure: no Redis here. folding.py runs the plans over a batch; adding a
feature changes no code here or there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from tastemaker.features.definitions import FEATURES, Aggregation, Entity, FeatureDefinition

#: Field suffix holding a decayed feature's reference time (ms).
DECAY_TIME_SUFFIX = "@t"
_KEYED = {Entity.USER_SHELF: "shelf", Entity.USER_ITEM: "item"}


class Step(NamedTuple):
    """One update a unit makes for one feature when an event of a source type arrives."""

    #: count, sum, last_time, decay (decayed counts and sums) or recent_items
    kind: str
    name: str
    #: "" for a plain field, "shelf" or "item" for a field per shelf_id / item_id of the event
    keyed: str
    value_field: str
    half_life_ms: float
    max_items: int


_DECAYED = {Aggregation.DECAYED_COUNT, Aggregation.DECAYED_SUM}


def _step(feature: FeatureDefinition) -> Step:
    return Step(
        kind="decay" if feature.aggregation in _DECAYED else feature.aggregation.value,
        name=feature.name,
        keyed=_KEYED.get(feature.entity, ""),
        value_field=feature.value_field or "",
        half_life_ms=(feature.half_life_s or 0.0) * 1000.0,
        max_items=feature.max_items or 0,
    )


def compile_plans(features: Iterable[FeatureDefinition] = FEATURES) -> dict[str, dict[str, list[Step]]]:
    """unit ("user" | "item") → event type → the steps, in declaration order."""
    plans: dict[str, dict[str, list[Step]]] = {"user": {}, "item": {}}
    for feature in features:
        unit = "item" if feature.entity is Entity.ITEM else "user"
        for event_type in sorted(feature.source_events):
            plans[unit].setdefault(event_type, []).append(_step(feature))
    return plans
