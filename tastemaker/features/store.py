"""The online feature store in Redis: applies events idempotently, reads feature vectors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import redis

from tastemaker.features import keys
from tastemaker.features.events import ENGAGEMENT_TYPES
from tastemaker.v1 import records_pb2

# KEYS[1] = features hash, KEYS[2] = seen marker; ARGV = ttl_s, seen_ttl_s, field1, field2, ...
# Atomic per event: an event already applied (a redelivery after a crash) changes nothing.
_APPLY_EVENT_LUA = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) == false then
  return 0
end
for i = 3, #ARGV do
  redis.call('HINCRBY', KEYS[1], ARGV[i], 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


@dataclass(frozen=True)
class UserFeatures:
    """One user's features as read from Redis; missing ones default to 0."""

    user_id: str
    counts: dict[str, int] = field(default_factory=dict)

    def event_count(self, event_type: str) -> int:
        return self.counts.get(keys.event_count_field(event_type), 0)

    def shelf_engagement(self, shelf_id: str) -> int:
        return self.counts.get(keys.shelf_engagement_field(shelf_id), 0)

    def card_engagement(self, card_id: str) -> int:
        return self.counts.get(keys.card_engagement_field(card_id), 0)


class FeatureReader(Protocol):
    def read(self, user_id: str) -> UserFeatures: ...


def fields_for(event: records_pb2.UserEvent) -> list[str]:
    """The counters one event increments."""
    fields = [keys.event_count_field(event.type)]
    if event.type in ENGAGEMENT_TYPES:
        if event.shelf_id:
            fields.append(keys.shelf_engagement_field(event.shelf_id))
        if event.item_id:
            fields.append(keys.card_engagement_field(event.item_id))
    return fields


class FeatureStore:
    def __init__(
        self,
        client: redis.Redis,
        namespace: str = "tm",
        ttl_s: int = 30 * 24 * 3600,
        dedup_ttl_s: int = 7 * 24 * 3600,
    ) -> None:
        self._redis = client
        self._namespace = namespace
        self._ttl_s = ttl_s
        self._dedup_ttl_s = dedup_ttl_s
        self._apply = client.register_script(_APPLY_EVENT_LUA)

    def apply_events(self, events: Sequence[records_pb2.UserEvent]) -> int:
        """Apply a batch in one round trip; returns how many were new (not duplicates)."""
        if not events:
            return 0
        pipe = self._redis.pipeline(transaction=False)
        for event in events:
            self._apply(
                keys=[
                    keys.user_features(self._namespace, event.user_id),
                    keys.user_seen_event(self._namespace, event.user_id, event.event_id),
                ],
                args=[self._ttl_s, self._dedup_ttl_s, *fields_for(event)],
                client=pipe,
            )
        return int(sum(int(r) for r in pipe.execute()))

    def read(self, user_id: str) -> UserFeatures:
        """One user's features in one round trip."""
        raw = self._redis.hgetall(keys.user_features(self._namespace, user_id))
        return UserFeatures(user_id=user_id, counts={keys.text(k): int(v) for k, v in raw.items()})
