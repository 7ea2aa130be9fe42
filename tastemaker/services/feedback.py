"""Feedback: outcomes reported by apps, logged to `tastemaker.outcomes` for the reward joiner.

A reward must be finite and inside the configured range (`TASTEMAKER_REWARD_MIN`/`_MAX`), and
identical reports count once: the outcome id is derived from the decision, the item, the event
type and the caller's idempotency key, and the joiner keeps one outcome per id.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable

from tastemaker.features.activation import ACTIVATION
from tastemaker.features.decision_ids import DecisionIds
from tastemaker.messaging.codec import PROTOBUF_HEADERS
from tastemaker.services.errors import InvalidArgument, Refused
from tastemaker.services.limits import MAX_EVENT_TYPE_LENGTH, check_id
from tastemaker.services.security import current_client
from tastemaker.v1 import api_pb2, records_pb2

#: the default valid reward range; configure with TASTEMAKER_REWARD_MIN / TASTEMAKER_REWARD_MAX
DEFAULT_REWARD_RANGE = (-1000.0, 1000.0)


def outcome_id(decision_id: str, item_id: str, event_type: str, idempotency_key: str = "") -> str:
    """The same for identical reports, so the joiner counts them once."""
    parts = "\x1f".join((decision_id, item_id, event_type, idempotency_key)).encode()
    return hashlib.blake2b(parts, digest_size=16).hexdigest()


def parse_report_outcome(
    request: api_pb2.ReportOutcomeRequest, reward_range: tuple[float, float] = DEFAULT_REWARD_RANGE
) -> records_pb2.Outcome:
    check_id("decision_id", request.decision_id)
    check_id("item_id", request.item_id)
    check_id("idempotency_key", request.idempotency_key, required=False)
    low, high = reward_range
    if not (math.isfinite(request.reward) and low <= request.reward <= high):
        raise InvalidArgument("reward", f"must be a finite number in [{low:g}, {high:g}], got {request.reward}")
    if len(request.event_type) > MAX_EVENT_TYPE_LENGTH:
        raise InvalidArgument("event_type", f"is longer than {MAX_EVENT_TYPE_LENGTH} characters")
    event_type = request.event_type or "unspecified"
    return records_pb2.Outcome(
        outcome_id=outcome_id(request.decision_id, request.item_id, event_type, request.idempotency_key),
        decision_id=request.decision_id,
        item_id=request.item_id,
        reward=request.reward,
        event_type=event_type,
    )


class FeedbackService:
    def __init__(
        self,
        publish: Callable[[str, bytes, bytes | None, dict[str, bytes] | None], bool],
        outcomes_topic: str,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        reward_range: tuple[float, float] = DEFAULT_REWARD_RANGE,
        decision_ids: DecisionIds | None = None,
    ) -> None:
        self._publish = publish
        #: forged, foreign and expired decision ids are refused before anything is published
        self._decision_ids = decision_ids or DecisionIds()
        self._topic = outcomes_topic
        self._clock_ms = clock_ms
        self.reward_range = reward_range
        self.outcomes_reported = 0
        self.refused = 0

    def parse(self, request: api_pb2.ReportOutcomeRequest) -> records_pb2.Outcome:
        return parse_report_outcome(request, self.reward_range)

    def activate(self, request: api_pb2.ActivateRequest) -> str:
        """Deferred activation: log that the decision was seen (an `Outcome` with `activation`
        set, which the joiner turns into `RewardedDecision.activated`); returns its outcome id.
        Repeated calls have one outcome id, so they count once."""
        check_id("decision_id", request.decision_id)
        return self.report(
            records_pb2.Outcome(
                outcome_id=outcome_id(request.decision_id, "", ACTIVATION),
                decision_id=request.decision_id,
                event_type=ACTIVATION,
                activation=True,
            )
        )

    def report(self, outcome: records_pb2.Outcome) -> str:
        client = current_client.get()
        why = self._decision_ids.check(outcome.decision_id, client, self._clock_ms())
        if why is not None:
            self.refused += 1
            raise Refused("decision_id", why, expired="window" in why)
        outcome.client_id = client
        outcome.outcome_id = outcome.outcome_id or outcome_id(outcome.decision_id, outcome.item_id, outcome.event_type)
        outcome.reported_at_ms = self._clock_ms()
        self._publish(
            self._topic,
            outcome.SerializeToString(),
            outcome.decision_id.encode(),
            PROTOBUF_HEADERS,
        )
        self.outcomes_reported += 1
        return outcome.outcome_id
