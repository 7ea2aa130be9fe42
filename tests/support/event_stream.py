"""A reproducible stream of user events with a known share of malformed records, and the exact
counters a correct processor must end with (the recount)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from tastemaker.messaging.codec import JSON_HEADERS
from tastemaker.messaging.ports import Producer
from tastemaker.v1 import records_pb2

TYPES = ("play", "skip", "card_click", "sticker_sent", "home_impression")


@dataclass
class Expected:
    counts: Counter = field(default_factory=Counter)  # (user, feature name) -> count
    shelf: Counter = field(default_factory=Counter)  # (user, shelf) -> engagement count
    item: Counter = field(default_factory=Counter)  # item -> item.engagement.count
    malformed: list[bytes] = field(default_factory=list)
    users: set[str] = field(default_factory=set)


def produce_stream(producer: Producer, topic: str, n: int, malformed_share: float = 0.01, seed: int = 0) -> Expected:
    rng = np.random.default_rng(seed)
    expected = Expected()
    users = rng.integers(0, 500, size=n)
    types = rng.integers(0, len(TYPES), size=n)
    shelves = rng.integers(0, 8, size=n)
    items = rng.integers(0, 200, size=n)
    bad = rng.random(n) < malformed_share
    for i in range(n):
        user = f"user-{users[i]}"
        if bad[i]:
            kind = i % 3
            if kind == 0:
                value, headers = f"\xff garbage {i}".encode("latin-1"), {}
            elif kind == 1:
                value, headers = (
                    f'{{"eventId": "bad-{i}", "userId": "{user}", "type": "teleport", "eventTimeMs": 1}}'.encode(),
                    JSON_HEADERS,
                )
            else:
                value, headers = f"{{not json {i}".encode(), JSON_HEADERS
            producer.send(topic, value, key=user.encode(), headers=headers)
            expected.malformed.append(value)
            continue
        event_type = TYPES[types[i]]
        event = records_pb2.UserEvent(
            event_id=f"e{i}",
            user_id=user,
            type=event_type,
            event_time_ms=1_700_000_000_000 + i,
            shelf_id=f"shelf-{shelves[i]}",
            item_id=f"item-{items[i]}",
            listened_seconds=float(i % 97),
        )
        if i % 10 == 0:  # some producers send the JSON mapping
            producer.send(
                topic,
                json.dumps(
                    {
                        "eventId": event.event_id,
                        "userId": user,
                        "type": event_type,
                        "eventTimeMs": str(event.event_time_ms),
                        "shelfId": event.shelf_id,
                        "itemId": event.item_id,
                        "listenedSeconds": event.listened_seconds,
                    }
                ).encode(),
                key=user.encode(),
                headers=JSON_HEADERS,
            )
        else:
            producer.send(topic, event.SerializeToString(), key=user.encode())
        expected.users.add(user)
        expected.counts[(user, f"events.{event_type}.count")] += 1
        if event_type in ("play", "card_click"):
            expected.shelf[(user, event.shelf_id)] += 1
        if event_type in ("play", "card_click", "sticker_sent"):
            expected.item[event.item_id] += 1
    producer.flush(60)
    return expected
