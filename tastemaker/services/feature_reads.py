"""The ranker's feature read: one round trip for the request's candidates, behind the circuit
breaker, so that a feature-store outage degrades ranking (non-personalised) instead of failing it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tastemaker.bandits.catalog import ShelfCandidates
from tastemaker.bandits.reward_features import COUNT_TYPES
from tastemaker.features.store import FeatureReader, RankingFeatures, UserFeatures
from tastemaker.rate_limited_log import RateLimitedLog
from tastemaker.services.breaker import CircuitBreaker

log = logging.getLogger(__name__)


def read_ranking_features(
    reader: FeatureReader | None, user_id: str, shelves: Sequence[ShelfCandidates]
) -> RankingFeatures:
    """The user's counts and engagement with the candidates (`FeatureReader.read_for_ranking`); with
    no reader, a user without features (all zeros)."""
    shelf_ids = [s.shelf_id for s in shelves]
    card_ids = [c for s in shelves for c in s.card_ids]
    if reader is None:
        return UserFeatures(user_id).for_ranking(COUNT_TYPES, shelf_ids, card_ids)
    return reader.read_for_ranking(user_id, COUNT_TYPES, shelf_ids, card_ids)


class GuardedFeatureReads:
    """`read_ranking_features` behind a circuit breaker: None when the store is unavailable (or the
    breaker is open), each failure counted and logged at most once per 10 s."""

    def __init__(self, reader: FeatureReader, breaker: CircuitBreaker | None = None) -> None:
        self._reader = reader
        self._breaker = breaker
        self.failures = 0
        self._failure_log = RateLimitedLog(log)

    def read(self, user_id: str, shelves: Sequence[ShelfCandidates]) -> RankingFeatures | None:
        if self._breaker is not None and not self._breaker.allow():
            return None
        try:
            features = read_ranking_features(self._reader, user_id, shelves)
        except Exception as exc:
            self.failures += 1
            if self._breaker is not None:
                self._breaker.failure()
            self._failure_log.warning("features unavailable for %s, serving non-personalised: %s", user_id, exc)
            return None
        if self._breaker is not None:
            self._breaker.success()
        return features
