"""What a device sends back: its suggestion lists and the stickers sent from them, as one
`Feedback.ReportDeviceDecisions` request (`services/device_decisions.py` takes them in). A device
keeps its lists until an upload is acknowledged and may send a batch again: the server counts each
device decision id once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tastemaker.device.runtime import DeviceDecision
from tastemaker.v1 import api_pb2

#: the server's limit on decisions a call (`services/limits.py: MAX_DEVICE_DECISIONS`)
MAX_BATCH = 500


@dataclass
class Shown:
    """A list the device showed, and what the user sent from it: (sticker id, sent at ms)."""

    decision: DeviceDecision
    sends: list[tuple[str, int]] = field(default_factory=list)


def as_upload(shown: Shown) -> api_pb2.DeviceDecision:
    d = shown.decision
    return api_pb2.DeviceDecision(
        device_decision_id=d.decision_id,
        served_at_ms=d.served_at_ms,
        model_version=d.model_version,
        policy=d.policy,
        epsilon=d.epsilon,
        message=d.message,
        partial=d.partial,
        language=d.language,
        candidate_ids=list(d.candidate_ids),
        candidate_scores=list(d.candidate_scores),
        ranking_propensity=d.ranking_propensity,
        suggestions=[
            api_pb2.StickerSuggestion(sticker_id=s.sticker_id, score=s.score, propensity=s.propensity)
            for s in d.suggestions
        ],
        sends=[api_pb2.DeviceSend(sticker_id=sticker_id, sent_at_ms=at_ms) for sticker_id, at_ms in shown.sends],
    )


def upload_requests(user_id: str, shown: Sequence[Shown]) -> list[api_pb2.ReportDeviceDecisionsRequest]:
    """The lists in batches of at most MAX_BATCH."""
    return [
        api_pb2.ReportDeviceDecisionsRequest(
            user_id=user_id, decisions=[as_upload(s) for s in shown[i : i + MAX_BATCH]]
        )
        for i in range(0, len(shown), MAX_BATCH)
    ]
