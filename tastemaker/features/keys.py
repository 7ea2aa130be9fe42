"""Redis key encoding. Pure functions; the `{...}` hash tag keeps one entity's keys in one
Redis Cluster slot so that per-entity updates stay atomic."""

from __future__ import annotations


def text(value: object) -> str:
    """A Redis reply (bytes unless the client decodes) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def user_features(namespace: str, user_id: str) -> str:
    return f"{namespace}:user:{{{user_id}}}:features"


def user_seen_event(namespace: str, user_id: str, event_id: str) -> str:
    """Marker that `event_id` was applied to the user's features (dedup on redelivery)."""
    return f"{namespace}:user:{{{user_id}}}:seen:{event_id}"


def event_count_field(event_type: str) -> str:
    return f"count:{event_type}"


def shelf_engagement_field(shelf_id: str) -> str:
    return f"shelf:{shelf_id}"


def card_engagement_field(card_id: str) -> str:
    return f"card:{card_id}"


def decision(namespace: str, decision_id: str) -> str:
    return f"{namespace}:decision:{{{decision_id}}}:log"


def decision_outcomes(namespace: str, decision_id: str) -> str:
    return f"{namespace}:decision:{{{decision_id}}}:outcomes"


def decision_closed(namespace: str, decision_id: str) -> str:
    return f"{namespace}:decision:{{{decision_id}}}:closed"


def joiner_deadlines(namespace: str) -> str:
    return f"{namespace}:joiner:deadlines"
