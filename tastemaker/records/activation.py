"""Deferred activation (Personalizer's name for it): a decision ranked with `defer_activation`
counts only once the app says the user saw it (`Feedback.Activate`, an `Outcome` with
`activation` set on `tastemaker.outcomes`). The joiner marks the rewarded decision `activated`;
every reader that learns or estimates keeps only the decisions that count."""

from __future__ import annotations

from collections.abc import Iterable

from tastemaker.v1 import records_pb2

#: the event type of an activation on `tastemaker.outcomes`
ACTIVATION = "activation"


def counted(rewarded: records_pb2.RewardedDecision) -> bool:
    """Whether a rewarded decision enters learning, evaluation and retraining: every ordinary
    decision, and a deferred one only once activated."""
    return not rewarded.decision.deferred or rewarded.activated


def activated_only(decisions: Iterable[records_pb2.RewardedDecision]) -> list[records_pb2.RewardedDecision]:
    """The decisions that count (`counted`), in order."""
    return [d for d in decisions if counted(d)]
