import pytest
from google.protobuf import json_format

from tastemaker.features import keys
from tastemaker.features.events import EventRejected, decode_event
from tastemaker.messaging.ports import CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE
from tastemaker.v1 import records_pb2

JSON = {CONTENT_TYPE_HEADER: JSON_CONTENT_TYPE.encode()}


def _valid(**changes: object) -> records_pb2.UserEvent:
    event = records_pb2.UserEvent(
        event_id="e1", user_id="u1", type="play", shelf_id="s1", item_id="c1", event_time_ms=1_700_000_000_000
    )
    for name, value in changes.items():
        setattr(event, name, value)
    return event


def test_protobuf_and_json_mapping_decode_to_the_same_event() -> None:
    event = _valid()
    assert decode_event(event.SerializeToString(), {}) == event
    assert decode_event(json_format.MessageToJson(event).encode(), JSON) == event


def test_json_with_snake_case_names_is_accepted() -> None:
    line = b'{"event_id": "e2", "user_id": "u", "type": "skip", "event_time_ms": 5}'
    assert decode_event(line, JSON).type == "skip"


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"\xff\x00 garbage", {}, "undecodable protobuf"),
        (b"{not json", JSON, "undecodable application/json"),
        (b'{"eventId": "e", "userId": "u", "type": "play", "bogus": 1}', JSON, "undecodable"),
        (_valid(event_id="").SerializeToString(), {}, "`event_id` is required"),
        (_valid(user_id="").SerializeToString(), {}, "`user_id` is required"),
        (_valid(type="teleport").SerializeToString(), {}, "`type` must be one of"),
        (_valid(event_time_ms=0).SerializeToString(), {}, "`event_time_ms` must be positive"),
        (_valid(type="card_click", shelf_id="", item_id="").SerializeToString(), {}, "needs `item_id` or `shelf_id`"),
        (_valid(user_id="u" * 300).SerializeToString(), {}, "longer than 256"),
        (_valid(item_id="a\x1fb").SerializeToString(), {}, "`item_id` may not contain control characters"),
        (_valid(shelf_id="s\n").SerializeToString(), {}, "`shelf_id` may not contain control characters"),
        (_valid(listened_seconds=float("nan")).SerializeToString(), {}, "`listened_seconds` must be finite"),
        (_valid(value=float("inf")).SerializeToString(), {}, "`value` must be finite"),
        (
            b'{"eventId": "e", "userId": "u", "type": "play", "itemId": "t", "eventTimeMs": "5", "trackLengthSeconds": '
            b'"-Infinity"}',
            JSON,
            "`track_length_seconds` must be finite",
        ),  # fmt: skip
    ],
)
def test_bad_records_are_rejected_with_a_reason(value: bytes, headers: dict[str, bytes], reason: str) -> None:
    with pytest.raises(EventRejected, match=reason):
        decode_event(value, headers)


def test_keys_keep_an_entity_in_one_cluster_slot() -> None:
    assert keys.user_features("tm", "u1") == "tm:user:{u1}:features"
    assert keys.recent_items("tm", "u1", "recent.played") == "tm:user:{u1}:recent:recent.played"
    assert keys.item_features("tm", "c1") == "tm:item:{c1}:features"
    assert keys.decision("tm", "d1").split(":")[2] == keys.decision_outcomes("tm", "d1").split(":")[2] == "{d1}"
