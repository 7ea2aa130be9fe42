"""Property-based fuzzing (Hypothesis) of every Kafka record decoder: whatever bytes and headers
arrive — random, truncated, JSON with extreme numbers, NaN/inf, control characters, lone
surrogates escaped in JSON — a decoder either returns a message or raises its one documented
error (which the workers turn into a dead letter with the reason). Never anything else.
Derandomised, so every run tries the same cases; found cases are kept as @example."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tastemaker.features.events import EventRejected, decode_event, validate_event
from tastemaker.messaging.codec import JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE, UndecodableRecord, decode
from tastemaker.v1 import records_pb2

FUZZ = settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADERS = st.sampled_from(
    [{}, {"content-type": PROTOBUF_CONTENT_TYPE.encode()}, {"content-type": JSON_CONTENT_TYPE.encode()},
     {"content-type": b"\xff\xfe"}, {"content-type": b"text/plain"}]
)  # fmt: skip
MESSAGES = [records_pb2.UserEvent, records_pb2.Outcome, records_pb2.DecisionLog, records_pb2.RewardedDecision]

#: JSON values that stress a decoder: huge and tiny numbers, NaN/inf spelled every way, controls
WEIRD = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-0", "\x00", "\u202e", "\ud800", "\x7f" * 3]),
    st.text(max_size=50),
    st.booleans(),
    st.none(),
)
FIELDS = st.sampled_from(
    ["eventId", "userId", "type", "eventTimeMs", "listenedSeconds", "reward", "decisionId", "itemId",
     "shown", "featureValues", "outcomes", "decision", "unknownField", "event_time_ms"]
)  # fmt: skip


def _json_bytes(document: dict[str, object]) -> bytes:
    # lone surrogates survive as \ud800 escapes: the parser must refuse them, not crash
    return json.dumps(document, allow_nan=True).encode()


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: m.DESCRIPTOR.name)
@FUZZ
@given(value=st.binary(max_size=512), headers=HEADERS)
@example(value=b"\x0a\xff", headers={})  # a truncated length-delimited field
@example(value=b'{"userId": "\\ud800"}', headers={"content-type": JSON_CONTENT_TYPE.encode()})
def test_random_bytes_decode_or_are_refused(message: type, value: bytes, headers: dict[str, bytes]) -> None:
    try:
        decode(value, headers, message())
    except UndecodableRecord as exc:
        assert str(exc)  # the dead letter's reason


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: m.DESCRIPTOR.name)
@FUZZ
@given(document=st.dictionaries(FIELDS, WEIRD, max_size=6))
@example(document={"eventTimeMs": 2**80})
@example(document={"reward": float("nan")})
@example(document={"userId": "\ud800"})
def test_weird_json_decodes_or_is_refused(message: type, document: dict[str, object]) -> None:
    try:
        decode(_json_bytes(document), {"content-type": JSON_CONTENT_TYPE.encode()}, message())
    except UndecodableRecord as exc:
        assert message.DESCRIPTOR.name in str(exc)


@FUZZ
@given(value=st.binary(max_size=256), headers=HEADERS, document=st.dictionaries(FIELDS, WEIRD, max_size=6))
@example(value=b"", headers={}, document={"eventTimeMs": -1, "userId": "", "type": "play"})
def test_an_event_is_decoded_and_validated_or_rejected_with_a_reason(
    value: bytes, headers: dict[str, bytes], document: dict[str, object]
) -> None:
    for raw, heads in ((value, headers), (_json_bytes(document), {"content-type": JSON_CONTENT_TYPE.encode()})):
        try:
            validate_event(decode_event(raw, heads))
        except (EventRejected, UndecodableRecord) as exc:
            assert str(exc)
