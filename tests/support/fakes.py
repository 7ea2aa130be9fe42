"""Fakes shared by the pure unit tests (real Redis and Kafka are for the integration tests)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from tastemaker.bandits.simulator import SimulatedWorld
from tastemaker.features.store import RankingFeatures, UserFeatures


class FixedFeatures:
    """A fake feature reader: each user has fixed random engagement with shelves and cards."""

    def __init__(self, world: SimulatedWorld) -> None:
        self._world = world
        self._cache: dict[str, UserFeatures] = {}

    def read(self, user_id: str) -> UserFeatures:
        if user_id not in self._cache:
            self._cache[user_id] = self._draw(user_id)
        return self._cache[user_id]

    def read_for_ranking(
        self, user_id: str, event_types: Sequence[str], shelf_ids: Sequence[str], card_ids: Sequence[str]
    ) -> RankingFeatures:
        return self.read(user_id).for_ranking(event_types, shelf_ids, card_ids)

    def _draw(self, user_id: str) -> UserFeatures:
        rng = np.random.default_rng(zlib.crc32(user_id.encode()))
        shelves: dict[str, int] = {}
        cards: dict[str, int] = {}
        for shelf in self._world.catalog().shelves:
            shelves[shelf.shelf_id] = int(rng.poisson(2))
            for card in shelf.card_ids:
                cards[card] = int(rng.poisson(1))
        return UserFeatures(user_id, {}, {"shelf.engagement": shelves, "card.engagement": cards})
