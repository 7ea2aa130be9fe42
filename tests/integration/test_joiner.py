"""The reward joiner against real Redis and the real broker, with a controlled clock."""

from __future__ import annotations

import uuid

import pytest

from tastemaker.features.joiner import RewardJoiner
from tastemaker.features.redis_connect import connect
from tastemaker.features.topics import Topics
from tastemaker.messaging.kafka_python import KafkaPythonConsumer, KafkaPythonProducer
from tastemaker.records.feature_vector import home_names
from tastemaker.records.layout import LAYOUT_PACKED, pack
from tastemaker.records.log_files import read_topic
from tastemaker.services.bootstrap import fence_of, prepare_topics
from tastemaker.services.config import Settings
from tastemaker.v1 import records_pb2
from tests.integration.helpers import records_on, wait_for

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def _decision(served_at_ms: int, window_ms: int = 1000) -> records_pb2.DecisionLog:
    return records_pb2.DecisionLog(
        decision_id=uuid.uuid4().hex,
        user_id="u",
        surface="home",
        served_at_ms=served_at_ms,
        reward_window_ms=window_ms,
        shown=[records_pb2.LoggedShelf(shelf_id="s1", propensity=1.0, cards=[records_pb2.LoggedCard(card_id="c1")])],
    )


def _outcome(decision_id: str, item_id: str, reward: float = 1.0) -> records_pb2.Outcome:
    return records_pb2.Outcome(outcome_id=uuid.uuid4().hex, decision_id=decision_id, item_id=item_id, reward=reward)


def _joiner(settings: Settings, clock: Clock) -> RewardJoiner:
    topics = Topics(settings.topic_prefix)
    consumer = KafkaPythonConsumer(settings.kafka_bootstrap, [topics.decisions, topics.outcomes], f"{uuid.uuid4()}")
    return RewardJoiner(
        consumer,
        connect(settings.redis_url),
        KafkaPythonProducer(settings.kafka_bootstrap),
        topics,
        namespace=settings.redis_namespace,
        clock_ms=clock,
        fence=fence_of(settings),  # on the cluster: replicas hold each batch before its commit
    )


def _consume_until(joiner: RewardJoiner, decisions: int, outcomes: int) -> None:
    def caught_up() -> bool:
        joiner.consume_once(timeout_s=0.5)
        return joiner.stats.decisions >= decisions and joiner.stats.outcomes + joiner.stats.rejected >= outcomes

    wait_for(caught_up, what=f"{decisions} decisions and {outcomes} outcomes consumed")


def test_join_window_default_reward_late_and_unshown_outcomes(any_settings: Settings) -> None:
    settings = any_settings
    prepare_topics(settings)
    topics = Topics(settings.topic_prefix)
    clock = Clock(1_000_000)
    joiner = _joiner(settings, clock)
    producer = KafkaPythonProducer(settings.kafka_bootstrap)
    rewarded_one, silent = _decision(1_000_000), _decision(1_000_000)
    for d in (rewarded_one, silent):
        producer.send(topics.decisions, d.SerializeToString(), key=d.decision_id.encode())
    good = _outcome(rewarded_one.decision_id, "c1", 2.0)
    producer.send(topics.outcomes, good.SerializeToString())
    producer.send(topics.outcomes, good.SerializeToString())  # a redelivered duplicate counts once
    producer.send(topics.outcomes, _outcome(rewarded_one.decision_id, "never-shown").SerializeToString())
    producer.flush()
    try:
        _consume_until(joiner, decisions=2, outcomes=3)
        assert joiner.close_due() == 0  # the window is still open
        clock.now_ms += 1001
        assert joiner.close_due() == 2
        late = _outcome(rewarded_one.decision_id, "c1")
        producer.send(topics.outcomes, late.SerializeToString())
        producer.flush()
        _consume_until(joiner, decisions=2, outcomes=4)

        by_id = {r.decision.decision_id: r for r in read_topic(settings.kafka_bootstrap, topics.rewarded)}
        assert by_id[rewarded_one.decision_id].reward == 2.0
        assert [o.item_id for o in by_id[rewarded_one.decision_id].outcomes] == ["c1"]
        assert by_id[silent.decision_id].defaulted and by_id[silent.decision_id].reward == 0.0

        letters = wait_for(
            lambda: (found := records_on(settings.kafka_bootstrap, topics.events_dlq)) and len(found) >= 2 and found,
            what="two dead letters",
        )
        reasons = sorted(records_pb2.DeadLetter.FromString(r.value).reason for r in letters)
        assert any("late outcome" in r for r in reasons)
        assert any("'never-shown'" in r for r in reasons)
        assert joiner.stats.late == 1  # the metric tastemaker_joiner_late_total
    finally:
        joiner.close()
        producer.close()


def test_a_packed_decision_joins_and_a_corrupt_one_is_dead_lettered(settings: Settings) -> None:
    """Serving publishes packed decisions (layout 2): the joiner matches outcomes to the cards they
    show without unpacking, passes the packed bytes on, and refuses a corrupt one with the reason."""
    prepare_topics(settings)
    topics = Topics(settings.topic_prefix)
    clock = Clock(7_000_000)
    joiner = _joiner(settings, clock)
    producer = KafkaPythonProducer(settings.kafka_bootstrap)
    written = _decision(7_000_000)
    written.candidates.add(shelf_id="s1", card_ids=["c1", "c2"])
    written.feature_names.extend(home_names(["s1"], ["c1", "c2"]))
    written.feature_values.extend([0.0] * len(written.feature_names))
    written.shelf_candidates.item_ids.append("s1")
    written.shelf_candidates.scores.append(0.5)
    written.shown[0].card_candidates.item_ids.extend(["c1", "c2"])
    written.shown[0].card_candidates.scores.extend([0.25, 0.0])
    written.shown[0].cards[0].score = 0.25
    packed = pack(written)
    assert packed.layout == LAYOUT_PACKED
    corrupt = records_pb2.DecisionLog()
    corrupt.CopyFrom(packed)
    corrupt.decision_id = uuid.uuid4().hex
    corrupt.packed.shown_shelves[0] = 7
    for d in (packed, corrupt):
        producer.send(topics.decisions, d.SerializeToString(), key=d.decision_id.encode())
    producer.send(topics.outcomes, _outcome(packed.decision_id, "c1", 1.0).SerializeToString())
    producer.flush()
    try:
        _consume_until(joiner, decisions=1, outcomes=1)
        wait_for(
            lambda: joiner.consume_once(0.2) >= 0 and joiner.stats.rejected >= 1, what="the corrupt decision refused"
        )
        clock.now_ms += 5000
        assert joiner.close_due() == 1
        [joined] = read_topic(settings.kafka_bootstrap, topics.rewarded)  # read_topic unpacks
        assert joined.decision == written and joined.reward == 1.0 and [o.item_id for o in joined.outcomes] == ["c1"]
        letters = wait_for(lambda: records_on(settings.kafka_bootstrap, topics.events_dlq), what="a dead letter")
        reason = records_pb2.DeadLetter.FromString(letters[0].value).reason
        assert "undecodable packed decision" in reason and corrupt.decision_id in reason
    finally:
        joiner.close()
        producer.close()


def test_restarted_joiner_keeps_pending_decisions(any_settings: Settings) -> None:
    settings = any_settings
    """Pending state lives in Redis: a new joiner process closes the window the old one opened."""
    prepare_topics(settings)
    topics = Topics(settings.topic_prefix)
    clock = Clock(5_000_000)
    first = _joiner(settings, clock)
    producer = KafkaPythonProducer(settings.kafka_bootstrap)
    decision = _decision(5_000_000)
    producer.send(topics.decisions, decision.SerializeToString())
    producer.send(topics.outcomes, _outcome(decision.decision_id, "s1", 1.5).SerializeToString())
    producer.flush()
    _consume_until(first, decisions=1, outcomes=1)
    first.close()

    second = _joiner(settings, clock)
    try:
        clock.now_ms += 5000
        assert second.close_due() == 1
        [joined] = read_topic(settings.kafka_bootstrap, topics.rewarded)
        assert joined.decision.decision_id == decision.decision_id and joined.reward == 1.5
    finally:
        second.close()
        producer.close()


def test_rewards_outside_the_range_are_dead_lettered_and_duplicates_count_once(settings: Settings) -> None:
    """Two outcomes of 1e308 would join to +inf and stop the learner: each is outside the valid
    range and dead-lettered; 50 copies of one outcome (one outcome id) join as one reward."""
    prepare_topics(settings)
    topics = Topics(settings.topic_prefix)
    clock = Clock(1_000_000)
    joiner = _joiner(settings, clock)
    producer = KafkaPythonProducer(settings.kafka_bootstrap)
    poisoned, repeated = _decision(clock.now_ms), _decision(clock.now_ms)
    for decision in (poisoned, repeated):
        producer.send(topics.decisions, decision.SerializeToString(), key=decision.decision_id.encode())
    for _ in range(2):
        producer.send(topics.outcomes, _outcome(poisoned.decision_id, "c1", reward=1e308).SerializeToString())
    once = _outcome(repeated.decision_id, "c1", reward=1.0)
    for _ in range(50):
        producer.send(topics.outcomes, once.SerializeToString())
    producer.flush()
    try:
        _consume_until(joiner, decisions=2, outcomes=52)
        clock.now_ms += 5_000
        assert joiner.close_due() == 2
    finally:
        joiner.close()
    rewarded = {r.decision.decision_id: r for r in read_topic(settings.kafka_bootstrap, topics.rewarded)}
    assert rewarded[poisoned.decision_id].reward == 0.0 and rewarded[poisoned.decision_id].defaulted
    assert rewarded[repeated.decision_id].reward == 1.0 and len(rewarded[repeated.decision_id].outcomes) == 1
    letters = [
        records_pb2.DeadLetter.FromString(r.value) for r in records_on(settings.kafka_bootstrap, topics.events_dlq)
    ]
    assert len(letters) == 2 and all("outside the valid range" in letter.reason for letter in letters)
