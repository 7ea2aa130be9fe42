"""Compiles the feature definitions into the per-event-type update plans that the Redis Lua
script runs, one plan per atomic unit (a user, or an item). Pure: no Redis here.

The plans are embedded in the script (store.py), so a record costs one short call per unit —
the event's fields, not a list of operations — and adding a feature changes no code here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from tastemaker.features.definitions import FEATURES, Aggregation, Entity, FeatureDefinition

#: Field suffix holding a decayed feature's reference time (ms).
DECAY_TIME_SUFFIX = "@t"
#: Event fields the script receives, in ARGV order after the fixed ones.
VALUE_FIELDS = ("value", "listened_seconds", "track_length_seconds", "dwell_ms")
_KEYED = {Entity.USER_SHELF: "shelf", Entity.USER_ITEM: "item"}


@dataclass(frozen=True)
class OpSpec:
    """One update a unit makes for one feature when an event of a source type arrives."""

    aggregation: str
    name: str
    #: "" for a plain field, "shelf" or "item" for a field per shelf_id / item_id of the event
    keyed: str
    value_field: str
    half_life_ms: float
    max_items: int


def _spec(feature: FeatureDefinition) -> OpSpec:
    return OpSpec(
        aggregation=feature.aggregation.value,
        name=feature.name,
        keyed=_KEYED.get(feature.entity, ""),
        value_field=feature.value_field or "",
        half_life_ms=(feature.half_life_s or 0.0) * 1000.0,
        max_items=feature.max_items or 0,
    )


def compile_plans(features: Iterable[FeatureDefinition] = FEATURES) -> dict[str, dict[str, list[OpSpec]]]:
    """unit ("user" | "item") → event type → the ops, in declaration order."""
    plans: dict[str, dict[str, list[OpSpec]]] = {"user": {}, "item": {}}
    for feature in features:
        unit = "item" if feature.entity is Entity.ITEM else "user"
        for event_type in sorted(feature.source_events):
            plans[unit].setdefault(event_type, []).append(_spec(feature))
    return plans


def recent_lists(plans: dict[str, dict[str, list[OpSpec]]], event_type: str) -> list[str]:
    """The recent-items features an event type feeds, in the order the script expects their keys."""
    return [op.name for op in plans["user"].get(event_type, []) if op.aggregation == Aggregation.RECENT_ITEMS.value]


def _lua_statement(op: OpSpec, recent_key: int) -> str:
    name = json.dumps(op.name)  # a JSON string literal is a valid Lua string literal for these names
    field = name
    guard = ""
    if op.keyed == "shelf":
        field, guard = f"{name} .. '|' .. shelf", "shelf ~= ''"
    elif op.keyed == "item":
        field, guard = f"{name} .. '|' .. item", "item ~= ''"
    value = f"ARGV[{9 + VALUE_FIELDS.index(op.value_field)}]" if op.value_field else "'1'"
    statement = {
        Aggregation.COUNT.value: f"count({field})",
        Aggregation.SUM.value: f"sum({field}, {value})",
        Aggregation.LAST_TIME.value: f"last({field})",
        Aggregation.DECAYED_COUNT.value: f"decay({field}, 1, {op.half_life_ms!r})",
        Aggregation.DECAYED_SUM.value: f"decay({field}, tonumber({value}), {op.half_life_ms!r})",
        Aggregation.RECENT_ITEMS.value: f"recent({recent_key}, {op.max_items})",
    }[op.aggregation]
    return f"if {guard} then {statement} end" if guard else statement


def lua_dispatch(plans: dict[str, dict[str, list[OpSpec]]]) -> str:
    """Straight-line Lua, one branch per (unit, event type): compiled once by Redis, with no
    per-call table building (which cost more than the updates themselves)."""
    lines = []
    for u, (unit, by_type) in enumerate(plans.items()):
        lines.append(f"{'if' if u == 0 else 'elseif'} unit == {json.dumps(unit)} then")
        for t, (event_type, ops) in enumerate(sorted(by_type.items())):
            lines.append(f"  {'if' if t == 0 else 'elseif'} etype == {json.dumps(event_type)} then")
            recent_key = 1
            for op in ops:
                if op.aggregation == Aggregation.RECENT_ITEMS.value:
                    recent_key += 1
                lines.append(f"    {_lua_statement(op, recent_key)}")
        if by_type:
            lines.append("  end")
    lines.append("end")
    return "\n".join(lines)
