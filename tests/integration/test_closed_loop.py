"""The whole loop over a real port, real Redis and the real broker: events → features →
RankHome → decision log → ReportOutcome → joined reward on tastemaker.rewarded → estimate."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import numpy as np
import pytest
import redis
from google.protobuf import json_format

from tastemaker.bandits.strategies import Candidates, EpsilonGreedy
from tastemaker.features.store import FeatureStore
from tastemaker.features.topics import Topics
from tastemaker.messaging.kafka_python import KafkaPythonProducer
from tastemaker.messaging.ports import CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE
from tastemaker.records.layout import unpack
from tastemaker.records.log_files import read_topic
from tastemaker.services.bootstrap import (
    Serving,
    Workers,
    build_joiner,
    build_serving,
    build_stream_processor,
    prepare_topics,
)
from tastemaker.services.config import Settings
from tastemaker.training.evaluation.evaluate import evaluate
from tastemaker.v1 import api_pb2, api_pb2_grpc, records_pb2
from tests.integration.helpers import records_on, wait_for

pytestmark = pytest.mark.integration


@dataclass
class Running:
    settings: Settings
    serving: Serving
    channel: grpc.Channel
    topics: Topics

    @property
    def home(self) -> api_pb2_grpc.HomeRankingStub:
        return api_pb2_grpc.HomeRankingStub(self.channel)

    @property
    def feedback(self) -> api_pb2_grpc.FeedbackStub:
        return api_pb2_grpc.FeedbackStub(self.channel)


@pytest.fixture
def running(settings: Settings) -> Iterator[Running]:
    prepare_topics(settings)
    serving = build_serving(settings, seed=0)
    processor, joiner = build_stream_processor(settings), build_joiner(settings)
    workers = Workers()
    serving.server.start()
    workers.start("processor", processor.run)
    workers.start("joiner", joiner.run)
    channel = grpc.insecure_channel(f"127.0.0.1:{serving.server.port}")
    try:
        yield Running(settings, serving, channel, Topics(settings.topic_prefix))
    finally:
        channel.close()
        serving.stop(grace_s=1)
        workers.stop()
        processor.close()
        joiner.close()


def _event(user_id: str, event_type: str, shelf_id: str = "", item_id: str = "") -> records_pb2.UserEvent:
    return records_pb2.UserEvent(
        event_id=uuid.uuid4().hex,
        user_id=user_id,
        type=event_type,
        shelf_id=shelf_id,
        item_id=item_id,
        event_time_ms=int(time.time() * 1000),
    )


def test_event_to_rewarded_decision(running: Running) -> None:
    settings, topics = running.settings, running.topics
    producer = KafkaPythonProducer(settings.kafka_bootstrap)
    for _ in range(3):
        event = _event("alice", "card_click", shelf_id="shelf-05", item_id="s05-card-07")
        producer.send(topics.events, event.SerializeToString(), key=b"alice")
    as_json = json_format.MessageToJson(_event("alice", "play", shelf_id="shelf-05", item_id="s05-card-07"))
    producer.send(
        topics.events, as_json.encode(), key=b"alice", headers={CONTENT_TYPE_HEADER: JSON_CONTENT_TYPE.encode()}
    )
    producer.send(topics.events, b"\xff\x00 not a record", key=b"mallory")
    producer.flush()

    store = FeatureStore(redis.Redis.from_url(settings.redis_url), namespace=settings.redis_namespace)
    features = wait_for(
        lambda: (f := store.read("alice")).shelf_engagement("shelf-05") == 4 and f,
        what="alice's shelf-05 engagement to reach 4",
    )
    assert features.event_count("card_click") == 3
    assert features.event_count("play") == 1
    assert features.card_engagement("s05-card-07") == 4

    response = running.home.RankHome(api_pb2.RankHomeRequest(user_id="alice", max_shelves=3, max_cards_per_shelf=4))
    assert response.decision_id and response.policy == "epsilon-greedy"
    assert response.model_version == "engagement-linear-v1"
    assert len(response.shelves) == 3 and all(len(s.cards) == 4 for s in response.shelves)
    assert all(0 < s.propensity <= 1 for s in response.shelves)
    assert all(0 < c.propensity <= 1 for s in response.shelves for c in s.cards)
    # shelf-05 is the only shelf alice engaged with: greedy ranks it first
    shelf_ids = [s.shelf_id for s in response.shelves]
    expected = EpsilonGreedy(settings.epsilon).marginals(
        Candidates(tuple("abcdefgh"), np.array([np.log1p(4.0)] + [0.0] * 7)), 3
    )
    for position, shelf in enumerate(response.shelves):
        index = int(shelf.shelf_id.split("-")[1])
        greedy_index = 0 if index == 5 else (index + 1 if index < 5 else index)
        assert shelf.propensity == pytest.approx(expected[greedy_index, position]), shelf_ids

    decision_logs = wait_for(
        lambda: records_on(
            settings.kafka_bootstrap, topics.decisions, lambda r: r.key == response.decision_id.encode()
        ),
        what="the decision log",
    )
    logged = unpack(records_pb2.DecisionLog.FromString(decision_logs[0].value))
    assert logged.exploration.epsilon == pytest.approx(settings.epsilon)
    assert dict(zip(logged.feature_names, logged.feature_values, strict=True))["shelf:shelf-05"] == 4
    assert [s.shelf_id for s in logged.shown] == shelf_ids
    assert len(logged.candidates) == 8 and len(logged.shelf_candidates.scores) == 8

    card = response.shelves[0].cards[0].card_id
    ack = running.feedback.ReportOutcome(
        api_pb2.ReportOutcomeRequest(decision_id=response.decision_id, item_id=card, reward=1.0, event_type="play")
    )
    assert ack.outcome_id

    def rewarded() -> list[records_pb2.RewardedDecision]:
        return [
            r
            for r in read_topic(settings.kafka_bootstrap, topics.rewarded)
            if r.decision.decision_id == response.decision_id
        ]

    joined = wait_for(rewarded, what="the rewarded decision")[0]
    assert joined.reward == 1.0 and not joined.defaulted
    assert [(o.item_id, o.event_type) for o in joined.outcomes] == [(card, "play")]

    dead = wait_for(lambda: records_on(settings.kafka_bootstrap, topics.events_dlq), what="the dead letter")
    letter = records_pb2.DeadLetter.FromString(dead[0].value)
    assert letter.original_value == b"\xff\x00 not a record"
    assert letter.topic == topics.events and letter.reason

    report = evaluate([joined])
    assert report["policies"]["logging"]["estimates"]["ipw"]["value"] == pytest.approx(1.0)


def test_decision_without_outcome_gets_the_default_reward(running: Running) -> None:
    response = running.home.RankHome(api_pb2.RankHomeRequest(user_id="bob"))
    assert len(response.shelves) == 8  # the server default (10) capped by the 8-shelf catalog
    joined = wait_for(
        lambda: [
            r
            for r in read_topic(running.settings.kafka_bootstrap, running.topics.rewarded)
            if r.decision.decision_id == response.decision_id
        ],
        what="the defaulted decision",
    )[0]
    assert joined.defaulted and joined.reward == 0.0 and not joined.outcomes


def test_explicit_candidates_are_ranked(running: Running) -> None:
    request = api_pb2.RankHomeRequest(
        user_id="carol",
        candidates=[
            api_pb2.Shelf(shelf_id="new", card_ids=["a", "b", "c"]),
            api_pb2.Shelf(shelf_id="old", card_ids=["d"]),
        ],
        max_shelves=5,
    )
    response = running.home.RankHome(request)
    assert sorted(s.shelf_id for s in response.shelves) == ["new", "old"]
    assert {c.card_id for s in response.shelves for c in s.cards} == {"a", "b", "c", "d"}
