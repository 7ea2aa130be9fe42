"""User events: the accepted types, decoding (protobuf or its JSON mapping) and validation."""

from __future__ import annotations

import math
import re

from tastemaker.bandits.reward_features import COUNT_TYPES
from tastemaker.messaging.codec import UndecodableRecord, decode
from tastemaker.v1 import records_pb2

#: Event types that count as engagement with a shelf and a card.
ENGAGEMENT_TYPES = frozenset({"card_click", "play", "shelf_click"})
#: Every accepted event type; the reward models count each (`bandits.reward_features.COUNT_TYPES`).
EVENT_TYPES = frozenset(COUNT_TYPES)
MAX_ID_LENGTH = 256


class EventRejected(ValueError):
    """A record that is not a valid user event; the message is the reason sent to the DLQ."""


def decode_event(value: bytes, headers: dict[str, bytes]) -> records_pb2.UserEvent:
    """Decode and validate one record from `tastemaker.events`."""
    try:
        event = decode(value, headers, records_pb2.UserEvent())
    except UndecodableRecord as exc:
        raise EventRejected(str(exc)) from exc
    validate_event(event)
    return event


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_IDS = ("event_id", "user_id", "item_id", "shelf_id")
_NUMBERS = ("value", "listened_seconds", "track_length_seconds")


def validate_event(event: records_pb2.UserEvent) -> None:
    if not event.event_id:
        raise EventRejected("`event_id` is required")
    if not event.user_id:
        raise EventRejected("`user_id` is required")
    ids = event.event_id + event.user_id + event.item_id + event.shelf_id  # one check for the common case
    if len(ids) > MAX_ID_LENGTH or _CONTROL.search(ids):
        for name in _IDS:
            value = getattr(event, name)
            if len(value) > MAX_ID_LENGTH:
                raise EventRejected(f"`{name}` is longer than {MAX_ID_LENGTH} characters")
            if _CONTROL.search(value):
                raise EventRejected(f"`{name}` may not contain control characters")
    if event.type not in EVENT_TYPES:
        raise EventRejected(f"`type` must be one of {sorted(EVENT_TYPES)}, got {event.type!r}")
    if event.event_time_ms <= 0:
        raise EventRejected(f"`event_time_ms` must be positive, got {event.event_time_ms}")
    if event.type in ENGAGEMENT_TYPES and not (event.item_id or event.shelf_id):
        raise EventRejected(f"a {event.type} event needs `item_id` or `shelf_id`")
    if not math.isfinite(event.value + event.listened_seconds + event.track_length_seconds):
        # a NaN or an infinity would poison every sum and decayed value it entered, for good
        for name in _NUMBERS:
            if not math.isfinite(getattr(event, name)):
                raise EventRejected(f"`{name}` must be finite, got {getattr(event, name)}")
