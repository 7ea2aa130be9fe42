"""Deferred activation through the real gRPC port, the real broker and Redis: a decision ranked
with `defer_activation` counts only once `Feedback.Activate` names it; an unactivated one stays in
the log, marked, and evaluation, retraining and the learner leave it out."""

from __future__ import annotations

import grpc
import pytest

from tastemaker.features.topics import Topics
from tastemaker.records.activation import ACTIVATION
from tastemaker.records.log_files import read_topic
from tastemaker.services.bootstrap import Workers, build_joiner, build_learner, build_serving, prepare_topics
from tastemaker.services.config import Settings
from tastemaker.training.evaluation.evaluate import evaluate, format_report
from tastemaker.v1 import api_pb2, api_pb2_grpc, records_pb2
from tests.integration.helpers import records_on, wait_for

pytestmark = pytest.mark.integration


def test_only_activated_deferred_decisions_count(settings: Settings) -> None:
    settings = settings.with_(reward_window_s=4.0)  # room for the activation to land inside the window
    prepare_topics(settings)
    topics = Topics(settings.topic_prefix)
    serving = build_serving(settings, seed=0)
    joiner, learner = build_joiner(settings), build_learner(settings)
    workers = Workers()
    serving.server.start()
    workers.start("joiner", joiner.run)
    channel = grpc.insecure_channel(f"127.0.0.1:{serving.server.port}")
    home, feedback = api_pb2_grpc.HomeRankingStub(channel), api_pb2_grpc.FeedbackStub(channel)
    try:
        page = {"max_shelves": 2, "max_cards_per_shelf": 2}
        seen = home.RankHome(api_pb2.RankHomeRequest(user_id="dana", defer_activation=True, **page))
        unseen = home.RankHome(api_pb2.RankHomeRequest(user_id="dana", defer_activation=True, **page))
        ordinary = home.RankHome(api_pb2.RankHomeRequest(user_id="dana", **page))
        for _ in range(2):  # a retried activation counts once
            assert (
                feedback.Activate(api_pb2.ActivateRequest(decision_id=seen.decision_id)) == api_pb2.ActivateResponse()
            )
        for response in (seen, unseen, ordinary):
            card = response.shelves[0].cards[0].card_id
            feedback.ReportOutcome(
                api_pb2.ReportOutcomeRequest(
                    decision_id=response.decision_id, item_id=card, reward=1.0, event_type="click"
                )
            )
        with pytest.raises(grpc.RpcError) as refused:
            feedback.Activate(api_pb2.ActivateRequest())
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "decision_id" in (
            refused.value.details() or ""
        )

        ids = {seen.decision_id, unseen.decision_id, ordinary.decision_id}
        rewarded = wait_for(
            lambda: (
                (
                    found := {r.decision.decision_id: r for r in read_topic(settings.kafka_bootstrap, topics.rewarded)}
                ).keys()
                >= ids
                and found
            ),
            what="the three decisions rewarded",
        )
        assert rewarded[seen.decision_id].decision.deferred and rewarded[seen.decision_id].activated
        assert rewarded[unseen.decision_id].decision.deferred and not rewarded[unseen.decision_id].activated
        assert not rewarded[ordinary.decision_id].decision.deferred
        assert all(rewarded[i].reward == 1.0 for i in ids)  # the unseen one's outcome is kept in the log too
        activations = [
            records_pb2.Outcome.FromString(r.value)
            for r in records_on(settings.kafka_bootstrap, topics.outcomes)
            if records_pb2.Outcome.FromString(r.value).activation
        ]
        assert {a.decision_id for a in activations} == {seen.decision_id}
        assert all(a.event_type == ACTIVATION for a in activations) and len({a.outcome_id for a in activations}) == 1
        assert joiner.stats.activations >= 1 and joiner.stats.unactivated == 1

        report = evaluate(list(rewarded.values()), ["logging"])
        assert report["n_decisions"] == 2 and report["n_unactivated"] == 1
        assert "never activated" in format_report(report)
        wait_for(
            lambda: learner.consume_once(0.5) >= 0 and learner.stats.decisions + learner.stats.unactivated >= 3,
            what="the learner to read the three",
        )
        assert learner.stats.unactivated == 1 and learner.stats.decisions == 2
    finally:
        channel.close()
        serving.stop(grace_s=1)
        workers.stop()
        joiner.close()
        learner.close()
