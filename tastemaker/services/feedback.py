"""Feedback: outcomes reported by apps, logged to `tastemaker.outcomes` for the reward joiner.

A reward must be finite and inside the configured range (`TASTEMAKER_REWARD_MIN`/`_MAX`), and
identical reports count once: the outcome id is derived from the decision, the item, the event
type and the caller's idempotency key, and the joiner keeps one outcome per id.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tastemaker.messaging.codec import PROTOBUF_HEADERS
from tastemaker.records.ids import DecisionIds
from tastemaker.services.errors import Refused
from tastemaker.services.limits import DEFAULT_REWARD_RANGE
from tastemaker.services.requests import outcome_id
from tastemaker.services.security import current_client
from tastemaker.v1 import api_pb2, records_pb2


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

    def report_outcome(self, outcome: records_pb2.Outcome) -> str:
        """ReportOutcome and Activate (`requests.parse_report_outcome`, `parse_activate`): refuse a
        forged, foreign or expired decision id, else publish the outcome; returns its outcome id."""
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


def report_outcome_response(outcome_id: str) -> api_pb2.ReportOutcomeResponse:
    return api_pb2.ReportOutcomeResponse(outcome_id=outcome_id)


def activate_response(outcome_id: str) -> api_pb2.ActivateResponse:
    return api_pb2.ActivateResponse()
