"""Deferred activation's rule: an ordinary decision always counts, a deferred one only once activated."""

from __future__ import annotations

from tastemaker.records.activation import activated_only, counted
from tastemaker.v1 import records_pb2


def _rewarded(decision_id: str, deferred: bool, activated: bool) -> records_pb2.RewardedDecision:
    decision = records_pb2.DecisionLog(decision_id=decision_id, surface="home", deferred=deferred)
    return records_pb2.RewardedDecision(decision=decision, activated=activated)


def test_only_deferred_decisions_wait_for_their_activation() -> None:
    logs = [
        _rewarded("ordinary", deferred=False, activated=False),  # every log written before deferral existed
        _rewarded("seen", deferred=True, activated=True),
        _rewarded("unseen", deferred=True, activated=False),
    ]
    assert [counted(r) for r in logs] == [True, True, False]
    assert [r.decision.decision_id for r in activated_only(logs)] == ["ordinary", "seen"]
