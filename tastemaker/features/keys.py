"""Redis key encoding. Pure functions; the `{...}` hash tag keeps one entity's keys in one
Redis Cluster slot so that per-entity updates stay atomic."""

from __future__ import annotations


def text(value: object) -> str:
    """A Redis reply (bytes unless the client decodes) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def entity_features(namespace: str, entity: str, entity_id: str) -> str:
    """The hash of one user's or one item's features."""
    return f"{namespace}:{entity}:{{{entity_id}}}:features"


def user_features(namespace: str, user_id: str) -> str:
    return entity_features(namespace, "user", user_id)


def item_features(namespace: str, item_id: str) -> str:
    return entity_features(namespace, "item", item_id)


def recent_items(namespace: str, user_id: str, feature: str) -> str:
    """The sorted set (score = event time) behind a user's recent-items feature."""
    return f"{namespace}:user:{{{user_id}}}:recent:{feature}"


def linear_state(namespace: str, level: str) -> str:
    """The hash of one level's linear posterior (`linear_store`): one slot for the whole level."""
    return f"{namespace}:{{linear:{level}}}"


def watermark_field(topic: str, partition: int) -> str:
    """The hash field holding the last source offset applied to an entity from one partition."""
    return f"~wm:{topic}:{partition}"


def dead_letter_watermark(namespace: str, topic: str) -> str:
    """Hash: per source partition, the last offset whose dead letter is known to be sent."""
    return f"{namespace}:dlq:{{{topic}}}:sent"


def dead_letter_intent(namespace: str, topic: str) -> str:
    """Hash: per source partition, 'offset,time_ms' of letters being sent (cleared once sent)."""
    return f"{namespace}:dlq:{{{topic}}}:sending"


def processor_status(namespace: str) -> str:
    """Hash: per processor instance, its last published stats as JSON."""
    return f"{namespace}:processors"


def decision(namespace: str, decision_id: str) -> str:
    return f"{namespace}:decision:{{{decision_id}}}:log"


def decision_outcomes(namespace: str, decision_id: str) -> str:
    return f"{namespace}:decision:{{{decision_id}}}:outcomes"


def decision_activated(namespace: str, decision_id: str) -> str:
    """Set when Feedback.Activate named a deferred decision (`records.activation`)."""
    return f"{namespace}:decision:{{{decision_id}}}:activated"


def decision_closed(namespace: str, decision_id: str) -> str:
    return f"{namespace}:decision:{{{decision_id}}}:closed"


def joiner_deadlines(namespace: str) -> str:
    return f"{namespace}:joiner:deadlines"


def device_decision(namespace: str, client_id: str, device_decision_id: str) -> str:
    """Set (NX) when a device decision is first uploaded (`services/device_decisions.py`)."""
    return f"{namespace}:device-decision:{{{client_id}}}:{device_decision_id}"
