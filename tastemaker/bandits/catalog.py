"""The home catalog: shelves and the cards that may fill them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ShelfCandidates:
    shelf_id: str
    card_ids: tuple[str, ...]
    #: the explanations the shelf may be shown under (empty: none)
    explanation_ids: tuple[str, ...] = ()
    #: the caller's numeric features of the shelf, and of its cards by card id (not part of equality
    #: or the hash: a candidate set is known by its ids, as the decision log's id table caches it)
    features: Mapping[str, float] = field(default_factory=dict, compare=False)
    card_features: Mapping[str, Mapping[str, float]] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Catalog:
    shelves: tuple[ShelfCandidates, ...]

    def __post_init__(self) -> None:
        ids = [s.shelf_id for s in self.shelves]
        if len(set(ids)) != len(ids):
            raise ValueError("`shelves` must have unique shelf ids")
