"""The linear strategies learn online: rewarded decisions on a real broker → the shared posterior in
a real Redis, exactly once across redelivery, picked up by serving; bad records are dead-lettered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import redis

from tastemaker.features.learner import LinearLearner, rows_of
from tastemaker.features.linear_store import LinearStateStore, Rows, SharedLinearStates
from tastemaker.features.redis_connect import connect
from tastemaker.features.topics import Topics
from tastemaker.messaging import make_consumer, make_producer
from tastemaker.messaging.codec import PROTOBUF_HEADERS
from tastemaker.services.bootstrap import build_learner, prepare_topics
from tastemaker.services.config import Settings
from tastemaker.v1 import records_pb2
from tests.integration.helpers import records_on, wait_for
from tests.support.rewarded import random_rewarded

pytestmark = pytest.mark.integration


def _recount(decisions: list[records_pb2.RewardedDecision], level: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.eye(2), np.zeros(2)
    for rewarded in decisions:
        for x, r, _ in rows_of(rewarded)[level]:
            a += np.outer(x, x)
            b += r * x
    return a, b


def _drain(learner: LinearLearner, expected_decisions: int) -> None:
    wait_for(lambda: learner.consume_once(0.5) == 0 and learner.stats.decisions >= expected_decisions or None,
             timeout_s=60, what="the learner to consume everything")  # fmt: skip


def test_learns_exactly_once_and_serving_sees_it(any_settings: Settings) -> None:
    settings = any_settings
    prepare_topics(settings)
    topics = Topics(settings.topic_prefix)
    rng = np.random.default_rng(0)
    decisions = [random_rewarded(i, rng) for i in range(300)]
    producer = make_producer("kafka-python", settings.kafka_bootstrap)
    for i, rewarded in enumerate(decisions):
        producer.send(topics.rewarded, rewarded.SerializeToString(), key=str(i).encode(), headers=PROTOBUF_HEADERS)
        if i == 150:
            producer.send(topics.rewarded, b"\xff not a protobuf", headers=PROTOBUF_HEADERS)
    producer.flush()

    learner = build_learner(settings)
    try:
        _drain(learner, len(decisions))
    finally:
        learner.close()
    store = LinearStateStore(connect(settings.redis_url), settings.redis_namespace)
    loaded = store.load()
    for level in ("shelf", "card"):
        a, b = _recount(decisions, level)
        state, version = loaded[level]
        np.testing.assert_allclose(state.a, a, rtol=1e-9)
        np.testing.assert_allclose(state.b, b, rtol=1e-9, atol=1e-12)
        assert version >= 1
        counted: dict[str, list[float]] = {}
        for rewarded in decisions:
            for _, r, item in rows_of(rewarded)[level]:
                counted.setdefault(item, [0.0, 0.0])
                counted[item][0] += 1
                counted[item][1] += r
        assert set(state.items) == set(counted)
        np.testing.assert_allclose([state.items[i] for i in sorted(counted)], [counted[i] for i in sorted(counted)])
    letters = records_on(settings.kafka_bootstrap, topics.events_dlq)
    assert len(letters) == 1 and records_pb2.DeadLetter.FromString(letters[0].value).stage == "learner"

    # the whole topic again, as after a crash before any commit: nothing is counted twice
    replay = LinearLearner(
        make_consumer("kafka-python", settings.kafka_bootstrap, [topics.rewarded], f"{settings.topic_prefix}.replay"),
        store,
        make_producer("kafka-python", settings.kafka_bootstrap),
        topics.events_dlq,
    )
    try:
        _drain(replay, len(decisions))
    finally:
        replay.close()
    assert replay.stats.rows_applied == 0
    np.testing.assert_allclose(store.load()["card"][0].a, _recount(decisions, "card")[0], rtol=1e-9)

    shared = SharedLinearStates(store, refresh_s=0.0)
    shared.maybe_refresh()
    np.testing.assert_allclose(shared.states["shelf"].theta(), loaded["shelf"][0].theta())


def test_forgetting_in_redis_equals_one_discounted_update_per_decision(redis_url: str) -> None:
    """Batches of rewarded decisions applied with γ = 0.95 give the sums of LinearState(forget=0.95)
    updated once per decision, in offset order; a redelivered batch changes nothing."""
    import uuid

    from tastemaker.bandits.strategies import LinearState

    rng = np.random.default_rng(5)
    decisions = [random_rewarded(i, rng) for i in range(60)]
    store = LinearStateStore(redis.Redis.from_url(redis_url), f"forget-{uuid.uuid4().hex[:6]}", forget=0.95)
    expected = LinearState(2, 1.0, forget=0.95)
    batches = [decisions[:7], decisions[7:8], decisions[8:40], decisions[40:]]
    offset = 0
    for batch in batches:
        parts, offsets = [], []
        for rewarded in batch:
            taught = rows_of(rewarded)["card"]
            parts.append(taught)
            offsets += [offset] * len(taught)
            expected.update(taught.x, taught.reward, taught.items)
            offset += 1
        rows = Rows.concat(parts, 2)
        assert store.apply("card", "t", 0, np.array(offsets), rows) == len(rows)
        assert (
            store.apply("card", "t", 0, np.array(offsets), rows) == 0
        )  # redelivered: nothing twice, nothing forgotten twice
    state, _ = store.load()["card"]
    np.testing.assert_allclose(state.a, expected.a, rtol=1e-12)
    np.testing.assert_allclose(state.b, expected.b, rtol=1e-12, atol=1e-12)
    # each card's own term, discounted lazily in Redis, equals the eager discount of every update
    assert set(state.items) == set(expected.items)
    np.testing.assert_allclose(
        [state.items[i] for i in sorted(state.items)], [expected.items[i] for i in sorted(state.items)], rtol=1e-12
    )
    with pytest.raises(ValueError, match="forget"):
        LinearStateStore(redis.Redis.from_url(redis_url), forget=0.0)


def test_a_record_it_cannot_apply_is_dead_lettered_and_learning_goes_on(settings: Settings) -> None:
    """A rewarded decision with reward +inf (two outcomes of 1e308 summed, before the joiner's range
    check) used to stop the learner for good on Redis' 'value is NaN or Infinity'."""
    prepare_topics(settings)
    topics = Topics(settings.topic_prefix)
    rng = np.random.default_rng(1)
    decisions = [random_rewarded(i, rng) for i in range(40)]
    poisoned = random_rewarded(99, rng)
    poisoned.outcomes.add(decision_id=poisoned.decision.decision_id, item_id=poisoned.decision.shown[0].shelf_id,
                          reward=float("inf"))  # fmt: skip
    producer = make_producer("kafka-python", settings.kafka_bootstrap)
    for i, rewarded in enumerate([*decisions[:20], poisoned, *decisions[20:]]):
        producer.send(topics.rewarded, rewarded.SerializeToString(), key=str(i).encode(), headers=PROTOBUF_HEADERS)
    producer.flush()
    learner = build_learner(settings)
    try:
        _drain(learner, len(decisions))
    finally:
        learner.close()
    state, _ = LinearStateStore(connect(settings.redis_url), settings.redis_namespace).load()["card"]
    np.testing.assert_allclose(state.a, _recount(decisions, "card")[0], rtol=1e-9)
    assert np.isfinite(state.b).all()
    letters = [
        records_pb2.DeadLetter.FromString(r.value) for r in records_on(settings.kafka_bootstrap, topics.events_dlq)
    ]
    assert len(letters) == 1 and letters[0].stage == "learner" and "non-finite" in letters[0].reason


def test_sticker_sends_teach_the_sticker_rerank_exactly_once(settings: Settings) -> None:
    """Rewarded sticker decisions → the "sticker" posterior (its own width), every shown suggestion
    one row, the same sums after the whole topic is read again; serving's refresh sees them."""
    from tastemaker.bandits.sticker_rerank import LEVEL, RERANK_DIM
    from tastemaker.features.learner import sticker_rows_of
    from tastemaker.services.bootstrap import sticker_linear_store

    settings = settings.with_(sticker_forget=1.0, sticker_rerank="learned")
    prepare_topics(settings)
    topics = Topics(settings.topic_prefix)
    rng = np.random.default_rng(1)
    decisions = []
    for i in range(120):
        ids = [f"s{j}" for j in rng.choice(30, size=8, replace=False)]
        values = [*rng.normal(size=8), *rng.integers(0, 4, 8)]
        decision = records_pb2.DecisionLog(decision_id=f"st{i}", surface="stickers", served_at_ms=i,
                                           feature_values=values)  # fmt: skip
        row = decision.shown.add(shelf_id="stickers", position=0, propensity=1.0)
        row.card_candidates.item_ids.extend(ids)
        for position, sticker in enumerate(ids[:3]):
            row.cards.add(card_id=sticker, position=position, propensity=0.3)
        sent = [records_pb2.Outcome(decision_id=f"st{i}", item_id=ids[0], reward=1.0)] if rng.random() < 0.4 else []
        decisions.append(records_pb2.RewardedDecision(decision=decision, outcomes=sent, reward=float(len(sent))))
    producer = make_producer("kafka-python", settings.kafka_bootstrap)
    for rewarded in decisions:
        producer.send(topics.rewarded, rewarded.SerializeToString(), headers=PROTOBUF_HEADERS)
    producer.flush()
    a, b = np.eye(RERANK_DIM), np.zeros(RERANK_DIM)
    for rewarded in decisions:
        for x, r, _ in sticker_rows_of(rewarded):
            a, b = a + np.outer(x, x), b + r * x
    for group in ("learner", "replay"):
        learner = LinearLearner(
            make_consumer(
                "kafka-python", settings.kafka_bootstrap, [topics.rewarded], f"{settings.topic_prefix}.{group}"
            ),
            LinearStateStore(connect(settings.redis_url), settings.redis_namespace),
            make_producer("kafka-python", settings.kafka_bootstrap),
            topics.events_dlq,
            sticker_linear_store(settings, connect(settings.redis_url)),
        )
        try:
            _drain(learner, len(decisions))
        finally:
            learner.close()
        assert learner.stats.rows_applied == (3 * len(decisions) if group == "learner" else 0)
    shared = SharedLinearStates(sticker_linear_store(settings, connect(settings.redis_url)), 0.0, [LEVEL])
    shared.maybe_refresh()
    np.testing.assert_allclose(shared.states[LEVEL].a, a, rtol=1e-9)
    np.testing.assert_allclose(shared.states[LEVEL].b, b, rtol=1e-9, atol=1e-12)
    assert sum(n for n, _ in shared.states[LEVEL].items.values()) == 3 * len(decisions)


def test_two_learners_in_one_group_one_sigkilled_mid_stream_count_nothing_twice(
    settings: Settings, tmp_path: Path
) -> None:
    """Two `tastemaker learner run` processes share the rewarded topic's partitions; one is SIGKILLed
    mid-stream and the other takes its partitions over: the posterior equals the recount of every
    decision, each once (the per-partition watermark makes a redelivered batch a no-op)."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    from tastemaker.messaging import group_lag
    from tastemaker.services.bootstrap import consumer_group
    from tests.support.processors import processor_env

    prepare_topics(settings)
    topics = Topics(settings.topic_prefix)
    rng = np.random.default_rng(5)
    decisions = [random_rewarded(i, rng) for i in range(3000)]
    group = consumer_group(settings, "learner")

    def produce() -> None:  # a stream that goes on while one learner dies: 100 decisions every 0.2 s
        producer = make_producer("confluent", settings.kafka_bootstrap)
        for i, rewarded in enumerate(decisions):
            producer.send(topics.rewarded, rewarded.SerializeToString(), key=str(i).encode(), headers=PROTOBUF_HEADERS)
            if i % 100 == 99:
                producer.flush()
                time.sleep(0.2)
        producer.flush()
        producer.close()

    def committed() -> int:
        return sum(group_lag(settings.kafka_bootstrap, group, topics.rewarded)["committed"].values())

    def learner(name: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{name}.log").open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "tastemaker.cli", "learner", "run"],
                env={**processor_env(settings), "TASTEMAKER_LOG_LEVEL": "INFO"}, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    first, second = learner("first"), learner("second")
    stream = threading.Thread(target=produce)
    try:
        for name in ("first", "second"):
            log = tmp_path / f"{name}.log"
            wait_for(lambda: "linear learner started" in log.read_text() or None, timeout_s=60, what=name)  # noqa: B023
        time.sleep(3.0)  # both in the group
        stream.start()
        wait_for(lambda: committed() > 300, timeout_s=90, what="the learners to start committing")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        stream.join(60)
        wait_for(lambda: committed() == len(decisions), timeout_s=120, what="the survivor to learn everything")
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
    loaded = LinearStateStore(connect(settings.redis_url), settings.redis_namespace).load()
    for level in ("shelf", "card"):
        a, b = _recount(decisions, level)
        np.testing.assert_allclose(loaded[level][0].a, a, rtol=1e-9)
        np.testing.assert_allclose(loaded[level][0].b, b, rtol=1e-9, atol=1e-12)


def _explained(rewarded: records_pb2.RewardedDecision, i: int) -> records_pb2.RewardedDecision:
    """`random_rewarded` with a context, the caller's candidate features and shelves shown under explanations."""
    decision = rewarded.decision
    decision.context["hour"] = ("morning", "night")[i % 2]
    decision.feature_names.extend(["count:play"])
    decision.feature_values.extend([float(i % 4)])
    for shelf in decision.shown:
        candidate = decision.candidates.add(shelf_id=shelf.shelf_id, card_ids=[c.card_id for c in shelf.cards])
        candidate.features["freshness"] = (i % 5) / 5
        candidate.card_features[shelf.cards[0].card_id].values["editorial"] = 1.0
        if i % 3:
            variants = ["because-you-played", "new-release"]
            candidate.explanation_ids.extend(variants)
            shelf.explanation_id = variants[i % 2]
            shelf.explanation_propensity = 0.5
            shelf.explanation_candidates.item_ids.extend(variants)
            shelf.explanation_candidates.scores.extend([0.1, 0.2])
    return rewarded


def test_context_features_learned_exactly_once_and_shared_by_replicas(settings: Settings) -> None:
    """TASTEMAKER_LINEAR_FEATURES=context: the learner learns every level (shelf, card, explanation)
    on `OnlineFeatures` of what each decision logged, into a posterior of its own width and key,
    exactly once across a replay of the whole topic; two serving replicas load the same model."""
    from dataclasses import replace

    from tastemaker.bandits.online_features import OnlineFeatures
    from tastemaker.services.bootstrap import home_linear_store

    settings = replace(settings, linear_features="context", linear_width=14)
    online = OnlineFeatures(14)
    prepare_topics(settings)
    topics = Topics(settings.topic_prefix)
    rng = np.random.default_rng(3)
    decisions = [_explained(random_rewarded(i, rng), i) for i in range(120)]
    producer = make_producer("kafka-python", settings.kafka_bootstrap)
    for i, rewarded in enumerate(decisions):
        producer.send(topics.rewarded, rewarded.SerializeToString(), key=str(i).encode(), headers=PROTOBUF_HEADERS)
    producer.flush()
    learner = build_learner(settings)
    try:
        _drain(learner, len(decisions))
    finally:
        learner.close()
    store = home_linear_store(settings, connect(settings.redis_url))
    assert store.dim == online.dim
    loaded = store.load()
    for level in ("shelf", "card", "explanation"):
        a, b = np.eye(online.dim), np.zeros(online.dim)
        for rewarded in decisions:
            rows = rows_of(rewarded, online)[level]
            a += rows.x.T @ rows.x
            b += rows.x.T @ rows.reward
        np.testing.assert_allclose(loaded[level][0].a, a, rtol=1e-9)
        np.testing.assert_allclose(loaded[level][0].b, b, rtol=1e-9, atol=1e-12)
    assert set(loaded["explanation"][0].items) == {"because-you-played", "new-release"}
    # the engagement-only posterior (its own key) is untouched
    assert LinearStateStore(connect(settings.redis_url), settings.redis_namespace).load()["shelf"][1] == 0

    replay = LinearLearner(
        make_consumer("kafka-python", settings.kafka_bootstrap, [topics.rewarded], f"{settings.topic_prefix}.ctx"),
        store, make_producer("kafka-python", settings.kafka_bootstrap), topics.events_dlq, online=online,
    )  # fmt: skip
    try:
        _drain(replay, len(decisions))
    finally:
        replay.close()
    assert replay.stats.rows_applied == 0
    replicas = [SharedLinearStates(home_linear_store(settings, connect(settings.redis_url)), 0.0) for _ in range(2)]
    for replica in replicas:
        replica.maybe_refresh()
    np.testing.assert_allclose(replicas[0].states["card"].theta(), replicas[1].states["card"].theta())
    np.testing.assert_allclose(replicas[0].states["card"].theta(), loaded["card"][0].theta())
