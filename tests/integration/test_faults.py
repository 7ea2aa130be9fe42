"""Faults an operator meets (issue #15), each against real processes: the broker killed and
restarted, Redis hung, a worker thread dying, SIGTERM during shutdown work, the embedded broker
filling memory, reflection clients of either version, and new users under the linear strategies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2

from tastemaker.features.topics import Topics
from tastemaker.services.bootstrap import Serving, Workers, build_serving, prepare_topics
from tastemaker.services.config import Settings
from tastemaker.services.embedded import free_port, start_broker, start_redis
from tastemaker.v1 import api_pb2, api_pb2_grpc
from tests.integration.helpers import records_on, wait_for

pytestmark = pytest.mark.integration


def _rank(channel: grpc.Channel, user: str = "u", **fields: object) -> api_pb2.RankHomeResponse:
    return api_pb2_grpc.HomeRankingStub(channel).RankHome(api_pb2.RankHomeRequest(user_id=user, **fields), timeout=10)


def _logged_ids(settings: Settings) -> set[str]:
    topic = Topics(settings.topic_prefix).decisions
    return {r.key.decode() for r in records_on(settings.kafka_bootstrap, topic) if r.key}


def test_decision_logs_survive_a_broker_kill_and_restart(settings: Settings) -> None:
    """kafka-python (the default client) used to stay in a fatal producer state after the broker
    came back, losing every later decision log while no counter moved."""
    port = free_port()
    broker = start_broker(port)
    settings = settings.with_(kafka_bootstrap=f"127.0.0.1:{port}", kafka_client="kafka-python")
    prepare_topics(settings)
    serving = build_serving(settings, seed=0)
    serving.server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
            before = {_rank(channel).decision_id for _ in range(5)}
            wait_for(lambda: before <= _logged_ids(settings), what="the first logs")
            broker.process.kill()
            broker.process.wait()
            during = {_rank(channel).decision_id for _ in range(5)}  # served while the broker is gone
            broker.stop()
            broker = start_broker(port)  # memory storage: it comes back empty
            prepare_topics(settings)
            after = {_rank(channel).decision_id for _ in range(5)}
            wait_for(lambda: (during | after) <= _logged_ids(settings), timeout_s=90, what="logs after the restart")
        assert serving.publisher.stats.failed_attempts >= 1  # counted, and sent again
        assert serving.publisher.stats.dropped == 0 and serving.publisher.stats.lost == 0
    finally:
        serving.stop(grace_s=1)
        broker.stop()


@pytest.fixture
def own_redis(settings: Settings) -> Iterator[tuple[Settings, subprocess.Popen[bytes]]]:
    child = start_redis()
    try:
        yield settings.with_(redis_url=f"redis://127.0.0.1:{child.port}/0"), child.process
    finally:
        child.process.send_signal(signal.SIGCONT)
        child.stop()


def test_a_hung_redis_trips_the_breaker_and_ranking_recovers(
    own_redis: tuple[Settings, subprocess.Popen[bytes]],
) -> None:
    """With Redis stopped (SIGSTOP: connections hang) only the first few reads wait for their
    budget; then the breaker serves the fallback at once, and a probe brings personalisation back."""
    settings, redis_process = own_redis
    prepare_topics(settings)
    serving = build_serving(settings.with_(feature_breaker_probe_s=0.2), seed=0)
    serving.server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
            assert not _rank(channel).policy.endswith("/no-features")
            redis_process.send_signal(signal.SIGSTOP)
            policies = [_rank(channel).policy for _ in range(30)]
            assert all(p == "epsilon-greedy/no-features" for p in policies)
            assert serving.home.feature_failures == settings.feature_breaker_failures
            assert serving.breaker.is_open and serving.breaker.short_circuited >= 30 - settings.feature_breaker_failures
            redis_process.send_signal(signal.SIGCONT)
            wait_for(lambda: not _rank(channel).policy.endswith("/no-features"), what="personalised answers again")
            assert serving.breaker.opened == 1
    finally:
        serving.stop(grace_s=1)


def test_a_worker_that_dies_is_restarted_and_counted() -> None:
    runs: list[int] = []

    def flaky(stop: threading.Event) -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("boom")
        stop.wait()

    workers = Workers()
    workers.start("flaky", flaky)
    try:
        wait_for(lambda: len(runs) >= 3, timeout_s=10, what="two restarts")
        assert workers.restarts == {"flaky": 2}
    finally:
        assert workers.stop(timeout_s=5)


def test_shutdown_never_outlives_its_grace_period() -> None:
    """Whatever the main thread is stuck in after SIGTERM, the process exits within the grace."""
    code = (
        "import os, signal, threading, time\n"
        "from tastemaker.cli.up import install_stop_signals\n"
        "stop = threading.Event(); install_stop_signals(stop, 0.5)\n"
        "os.kill(os.getpid(), signal.SIGTERM); stop.wait()\n"
        "time.sleep(120)  # a shutdown step that hangs\n"
    )
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert process.returncode == 1
    assert "not stopped 0 s after SIGTERM" in process.stderr or "not stopped 1 s after SIGTERM" in process.stderr


def test_up_stops_cleanly_when_the_embedded_broker_reaches_its_memory_cap(tmp_path: os.PathLike[str]) -> None:
    env = {**os.environ, "TASTEMAKER_EMBEDDED_BROKER_MAX_MB": "1"}
    for name in ("TASTEMAKER_KAFKA_BOOTSTRAP", "TASTEMAKER_REDIS_URL"):
        env.pop(name, None)
    report = f"{tmp_path}/r.json"
    process = subprocess.run(
        [sys.executable, "-m", "tastemaker.cli", "up", "--demo", "--port", "0", "--duration", "120",
         "--report-json", report],
        capture_output=True, text=True, timeout=110, env=env,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-2000:]
    assert "the embedded broker holds" in process.stderr and "TASTEMAKER_EMBEDDED_BROKER_MAX_MB=1" in process.stderr
    assert os.path.exists(report)


def test_reflection_answers_v1_and_v1alpha_clients(settings: Settings) -> None:
    prepare_topics(settings)
    serving = build_serving(settings, seed=0)
    serving.server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
            for version in ("v1", "v1alpha"):
                call = channel.stream_stream(
                    f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                    request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                    response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
                )
                (answer,) = list(call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
                names = {s.name for s in answer.list_services_response.service}
                assert {"tastemaker.v1.HomeRanking", "grpc.reflection.v1.ServerReflection"} <= names
    finally:
        serving.stop(grace_s=1)


def test_help_names_the_grpc_host_variable() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tastemaker.cli", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "TASTEMAKER_GRPC_HOST" in out


@pytest.mark.parametrize("strategy", ["linucb", "thompson"])
def test_linear_strategies_explore_candidates_that_tie(settings: Settings, strategy: str) -> None:
    """A user with no history, 6 shelves × 5 cards, 3 × 3 asked: every shelf and every card gets
    shown (they used to be the first 3 shelves and 9 cards, each with propensity 1)."""
    prepare_topics(settings)
    serving: Serving = build_serving(settings.with_(strategy=strategy), seed=0)
    serving.server.start()
    candidates = [api_pb2.Shelf(shelf_id=f"s{i}", card_ids=[f"s{i}c{j}" for j in range(5)]) for i in range(6)]
    try:
        with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
            pages = [
                _rank(channel, "new-user", candidates=candidates, max_shelves=3, max_cards_per_shelf=3)
                for _ in range(200)
            ]
    finally:
        serving.stop(grace_s=1)
    assert {s.shelf_id for p in pages for s in p.shelves} == {f"s{i}" for i in range(6)}
    assert len({c.card_id for p in pages for s in p.shelves for c in s.cards}) == 30
    propensities = [s.propensity for p in pages for s in p.shelves]
    assert max(propensities) < 0.5  # no longer certain: every tied shelf shares the rows
    if strategy == "linucb":  # closed form: each of 6 tied shelves is at each row with probability 1/6
        assert propensities == pytest.approx([1 / 6] * len(propensities))


def test_serving_metrics_count_decisions_and_bad_requests(settings: Settings) -> None:
    import urllib.request

    from tastemaker.services.metrics import serve_metrics

    prepare_topics(settings)
    serving = build_serving(settings, seed=0)
    serving.server.start()
    port = free_port()
    serve_metrics(serving, port)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
            for _ in range(3):
                _rank(channel)
            with pytest.raises(grpc.RpcError):
                _rank(channel, user="")
        serving.publisher.flush()
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        serving.stop(grace_s=1)
    assert "tastemaker_decisions_served_total 3.0" in text
    assert "tastemaker_bad_requests_total 1.0" in text
    assert 'tastemaker_published_records_total{outcome="published"} 3.0' in text
    assert "tastemaker_feature_breaker_open 0.0" in text


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_a_record_no_broker_takes_is_refused_counted_and_the_rest_goes_on(settings: Settings, client: str) -> None:
    from tastemaker.messaging import make_producer
    from tastemaker.services.publisher import BackgroundPublisher

    prepare_topics(settings)
    topic = Topics(settings.topic_prefix).outcomes
    publisher = BackgroundPublisher(make_producer(client, settings.kafka_bootstrap))
    publisher.publish(topic, b"x" * (2 * 1024 * 1024), key=b"huge")
    publisher.publish(topic, b"small", key=b"small")
    publisher.flush(timeout_s=30)
    publisher.close()
    assert publisher.stats.refused == 1 and publisher.stats.published == 1
    assert [r.key for r in records_on(settings.kafka_bootstrap, topic)] == [b"small"]


def test_the_joiner_publishes_what_came_due_while_the_broker_was_down(settings: Settings) -> None:
    """A decision whose reward window closes while the broker is down: the joiner's publish fails
    (kafka-python's producer then stays in a fatal state), its producer is replaced, and the
    rewarded record reaches the restarted broker."""
    import uuid

    from tastemaker.messaging import make_producer
    from tastemaker.messaging.codec import PROTOBUF_HEADERS
    from tastemaker.records.log_files import read_topic
    from tastemaker.services.bootstrap import build_joiner
    from tastemaker.v1 import records_pb2

    port = free_port()
    broker = start_broker(port)
    settings = settings.with_(kafka_bootstrap=f"127.0.0.1:{port}")
    topics = Topics(settings.topic_prefix)

    def send_pair(window_ms: int) -> str:
        producer = make_producer("kafka-python", settings.kafka_bootstrap)
        decision_id = uuid.uuid4().hex
        decision = records_pb2.DecisionLog(
            decision_id=decision_id, user_id="u", surface="home", served_at_ms=int(time.time() * 1000),
            reward_window_ms=window_ms, shown=[records_pb2.LoggedShelf(shelf_id="s", propensity=1.0)],
        )  # fmt: skip
        outcome = records_pb2.Outcome(outcome_id=uuid.uuid4().hex, decision_id=decision_id, item_id="s", reward=1.0)
        for topic, message in ((topics.decisions, decision), (topics.outcomes, outcome)):
            producer.send(topic, message.SerializeToString(), key=decision_id.encode(), headers=PROTOBUF_HEADERS)
        producer.flush()
        producer.close()
        return decision_id

    def rewarded_ids() -> set[str]:
        return {
            r.decision.decision_id for r in read_topic(settings.kafka_bootstrap, topics.rewarded) if r.reward == 1.0
        }

    prepare_topics(settings)
    joiner = build_joiner(settings)
    workers = Workers()
    workers.start("reward-joiner", joiner.run)
    try:
        first = send_pair(window_ms=200)
        wait_for(lambda: first in rewarded_ids(), timeout_s=60, what="the first join")
        due_in_the_outage = send_pair(window_ms=2_000)
        wait_for(lambda: joiner.stats.outcomes >= 2, timeout_s=30, what="the joiner to stage the second pair")
        broker.process.kill()
        broker.process.wait()
        time.sleep(4)  # the window closes now: the joiner's publish fails
        broker.stop()
        broker = start_broker(port)  # memory storage: back empty
        prepare_topics(settings)
        wait_for(
            lambda: due_in_the_outage in rewarded_ids(), timeout_s=120, what="the join that came due in the outage"
        )
    finally:
        workers.stop(timeout_s=10)
        joiner.close()
        broker.stop()
