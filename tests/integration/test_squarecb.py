"""SquareCB through the real gRPC port and broker: pages explore the first row by inverse-gap
weighting, and every logged propensity is what SquareCB's closed form gives when re-run from the
decision log (the replay the off-policy evaluation does)."""

from __future__ import annotations

import grpc
import pytest

from tastemaker.features.topics import Topics
from tastemaker.records.layout import unpack
from tastemaker.services.bootstrap import build_serving, prepare_topics
from tastemaker.services.config import Settings
from tastemaker.training.evaluation.evaluate import evaluate
from tastemaker.v1 import api_pb2, api_pb2_grpc, records_pb2
from tests.integration.helpers import records_on, wait_for

pytestmark = pytest.mark.integration


def test_squarecb_serves_and_logs_propensities_its_closed_form_reproduces(settings: Settings) -> None:
    settings = settings.with_(strategy="squarecb", squarecb_gamma=4.0)
    prepare_topics(settings)
    serving = build_serving(settings, seed=0)
    serving.server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
            rank = api_pb2_grpc.HomeRankingStub(channel).RankHome
            pages = [
                rank(api_pb2.RankHomeRequest(user_id="sq", max_shelves=3, max_cards_per_shelf=3)) for _ in range(150)
            ]
        serving.publisher.flush()
    finally:
        serving.stop(grace_s=1)
    assert all(p.policy == "squarecb" for p in pages)
    assert len({p.shelves[0].shelf_id for p in pages}) > 1  # the first row explores
    ids = {p.decision_id for p in pages}
    logged = wait_for(
        lambda: (
            (
                found := [
                    unpack(records_pb2.DecisionLog.FromString(r.value))
                    for r in records_on(settings.kafka_bootstrap, Topics(settings.topic_prefix).decisions)
                ]
            )
            and {d.decision_id for d in found} >= ids
            and [d for d in found if d.decision_id in ids]
        ),
        what="the 150 decision logs",
    )
    assert {d.exploration.strategy for d in logged} == {"squarecb"}
    assert {d.exploration.parameters["gamma"] for d in logged} == {4.0}
    assert {d.exploration.propensity_method for d in logged} == {"closed-form"}
    report = evaluate([records_pb2.RewardedDecision(decision=d) for d in logged], ["logging", "greedy"])
    assert report["max_logged_propensity_error"] < 1e-12  # re-run from the log: the same propensities
    assert "cascade-ipw" in report["policies"]["logging"]["estimates"]
