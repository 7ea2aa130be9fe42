"""Feedback: outcomes reported by apps, logged to `tastemaker.outcomes` for the reward joiner."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable

from tastemaker.messaging.codec import PROTOBUF_HEADERS
from tastemaker.services.errors import InvalidArgument
from tastemaker.v1 import api_pb2, records_pb2

MAX_ID_LENGTH = 256


def parse_report_outcome(request: api_pb2.ReportOutcomeRequest) -> records_pb2.Outcome:
    for field in ("decision_id", "item_id"):
        value = getattr(request, field)
        if not value:
            raise InvalidArgument(field, "is required")
        if len(value) > MAX_ID_LENGTH:
            raise InvalidArgument(field, f"is longer than {MAX_ID_LENGTH} characters")
    if not math.isfinite(request.reward):
        raise InvalidArgument("reward", f"must be a finite number, got {request.reward}")
    if len(request.event_type) > MAX_ID_LENGTH:
        raise InvalidArgument("event_type", f"is longer than {MAX_ID_LENGTH} characters")
    return records_pb2.Outcome(
        decision_id=request.decision_id,
        item_id=request.item_id,
        reward=request.reward,
        event_type=request.event_type or "unspecified",
    )


class FeedbackService:
    def __init__(
        self,
        publish: Callable[[str, bytes, bytes | None, dict[str, bytes] | None], bool],
        outcomes_topic: str,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._publish = publish
        self._topic = outcomes_topic
        self._clock_ms = clock_ms
        self.outcomes_reported = 0

    def report(self, outcome: records_pb2.Outcome) -> str:
        outcome.outcome_id = outcome.outcome_id or uuid.uuid4().hex
        outcome.reported_at_ms = self._clock_ms()
        self._publish(
            self._topic,
            outcome.SerializeToString(),
            outcome.decision_id.encode(),
            PROTOBUF_HEADERS,
        )
        self.outcomes_reported += 1
        return outcome.outcome_id
