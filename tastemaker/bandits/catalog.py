"""The home catalog: shelves and the cards that may fill them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ShelfCandidates:
    shelf_id: str
    card_ids: tuple[str, ...]


@dataclass(frozen=True)
class Catalog:
    shelves: tuple[ShelfCandidates, ...]

    def __post_init__(self) -> None:
        ids = [s.shelf_id for s in self.shelves]
        if len(set(ids)) != len(ids):
            raise ValueError("`shelves` must have unique shelf ids")
