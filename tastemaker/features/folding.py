"""Folds a batch of events into one update per atomic unit and source partition, so that Redis
runs one short script per (unit, partition) instead of one per event. Pure: no Redis here.

Every aggregation folds exactly: counts and sums add; recency and recent items keep the latest
event time; a decayed value folds to (S, T) with T the latest event time in the group and
S = Σ wᵢ · 2^(−(T − tᵢ)/h), which the store merges with the stored (v, T₀) as
v · 2^(−(max(T, T₀) − T₀)/h) + S · 2^(−(max(T, T₀) − T)/h) — the same value as applying the
events one at a time, in any order (definitions.py).

A group keeps its source offsets (first, last) for the store's exactly-once watermark, and its
events, so that a group the watermark only partly covers (a redelivery whose batch boundaries
differ from the first delivery's) can be re-applied one event at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from tastemaker.features.definitions import FEATURES, Aggregation, FeatureDefinition
from tastemaker.features.updates import Step, compile_plans
from tastemaker.v1 import records_pb2

COUNT, SUM, LAST, DECAY, RECENT = (
    Aggregation.COUNT.value,
    Aggregation.SUM.value,
    Aggregation.LAST_TIME.value,
    "decay",
    Aggregation.RECENT_ITEMS.value,
)


class Provenance(NamedTuple):
    """Where a record came from; its offset orders it within its partition."""

    topic: str
    partition: int
    offset: int


@dataclass
class UnitUpdate:
    """What one batch does to one unit (a user or an item) from one source partition."""

    unit: str  # "user" | "item"
    entity_id: str
    topic: str
    partition: int
    first_offset: int = -1
    last_offset: int = -1
    #: the events folded in, in offset order: (event, offset)
    events: list[tuple[records_pb2.UserEvent, int]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    lasts: dict[str, int] = field(default_factory=dict)
    #: field → [S, T, half-life ms]
    decays: dict[str, list[float]] = field(default_factory=dict)
    #: recent-items feature → (max items, {item → latest event time})
    recents: dict[str, tuple[int, dict[str, int]]] = field(default_factory=dict)

    def add(self, event: records_pb2.UserEvent, offset: int, steps: Sequence[Step]) -> None:
        if self.first_offset < 0:
            self.first_offset = offset
        self.last_offset = offset
        self.events.append((event, offset))
        t = event.event_time_ms
        for kind, name, keyed, value_field, half_life_ms, max_items in steps:
            if keyed:
                sub = event.shelf_id if keyed == "shelf" else event.item_id
                if not sub:
                    continue
                name = f"{name}|{sub}"
            if kind == COUNT:
                self.counts[name] = self.counts.get(name, 0) + 1
            elif kind == SUM:
                self.sums[name] = self.sums.get(name, 0) + getattr(event, value_field)
            elif kind == LAST:
                if t > self.lasts.get(name, -1):
                    self.lasts[name] = t
            elif kind == DECAY:
                weight = float(getattr(event, value_field)) if value_field else 1.0
                folded = self.decays.get(name)
                if folded is None:
                    self.decays[name] = [weight, float(t), half_life_ms]
                elif t >= folded[1]:
                    folded[0] = folded[0] * 2.0 ** (-(t - folded[1]) / half_life_ms) + weight
                    folded[1] = float(t)
                else:
                    folded[0] += weight * 2.0 ** (-(folded[1] - t) / half_life_ms)
            elif kind == RECENT and event.item_id:
                latest = self.recents.setdefault(name, (max_items, {}))[1]
                if t > latest.get(event.item_id, -1):
                    latest[event.item_id] = t


class BatchFolder:
    """Runs the compiled plans over batches of (event, provenance)."""

    def __init__(self, features: Sequence[FeatureDefinition] = FEATURES) -> None:
        plans = compile_plans(features)
        self._user_steps = plans["user"]
        self._item_steps = plans["item"]

    def fold(self, batch: Iterable[tuple[records_pb2.UserEvent, Provenance]]) -> list[UnitUpdate]:
        """`batch`: (event, provenance) pairs as the processor makes them, in consumption order.
        Returns the user updates, then the item updates, each in first-seen order."""
        users: dict[tuple[str, str, int], UnitUpdate] = {}
        items: dict[tuple[str, str, int], UnitUpdate] = {}
        user_steps, item_steps = self._user_steps, self._item_steps
        for event, (topic, partition, offset) in batch:
            key = (event.user_id, topic, partition)
            update = users.get(key)
            if update is None:
                update = users[key] = UnitUpdate("user", event.user_id, topic, partition)
            update.add(event, offset, user_steps.get(event.type, ()))
            steps = item_steps.get(event.type)
            if steps and event.item_id:
                key = (event.item_id, topic, partition)
                update = items.get(key)
                if update is None:
                    update = items[key] = UnitUpdate("item", event.item_id, topic, partition)
                update.add(event, offset, steps)
        return [*users.values(), *items.values()]

    def one_by_one(self, update: UnitUpdate) -> list[UnitUpdate]:
        """The update split into one update per event (for a group a watermark partly covers)."""
        steps = (self._user_steps if update.unit == "user" else self._item_steps).get
        out = []
        for event, offset in update.events:
            single = UnitUpdate(update.unit, update.entity_id, update.topic, update.partition)
            single.add(event, offset, steps(event.type, ()))
            out.append(single)
        return out
