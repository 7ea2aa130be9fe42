"""Exactly-once through a Redis Cluster failover: 100,000 events (1% malformed) into a real 6-node
cluster; mid-stream the master holding part of the users' features is SIGKILLed (its replica is
promoted; the old node comes back as a replica) and later the stream processor is SIGKILLed too.
With the replication fence on (TASTEMAKER_REDIS_WAIT_REPLICAS=1) every counter equals the recount
and the DLQ holds each bad record once. RankHome keeps answering through a failover."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tastemaker.features import keys
from tastemaker.features.topics import Topics
from tastemaker.messaging import make_producer
from tastemaker.services.bootstrap import build_serving, prepare_topics
from tastemaker.services.config import Settings
from tastemaker.v1 import api_pb2, api_pb2_grpc
from tests.conftest import _isolated
from tests.support.event_stream import produce_stream
from tests.support.processors import N_EVENTS, assert_exact, committed, start_processor, wait_until_drained
from tests.support.redis_cluster import LocalCluster

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster_settings(kafka_bootstrap: str, redis_cluster: LocalCluster) -> Iterator[Settings]:
    yield from _isolated(kafka_bootstrap, redis_cluster.url, redis_wait_replicas=1)


def _victim(cluster: LocalCluster, settings: Settings, users: list[str]) -> str:
    """A user whose features live on a master that holds none of the dead-letter ledger's keys."""
    topic = Topics(settings.topic_prefix).events
    ledger = cluster.master_port_of(keys.dead_letter_watermark(settings.redis_namespace, topic))
    for user in users:
        key = keys.user_features(settings.redis_namespace, user)
        if cluster.master_port_of(key) != ledger:
            return key
    raise AssertionError("every user lives with the ledger")


def _wait_committed(settings: Settings, target: float, processor: object, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if committed(settings) >= target:
            return
        assert processor.poll() is None, "the processor died"  # type: ignore[attr-defined]
        time.sleep(0.2)
    raise AssertionError(f"the processor did not reach {target:.0f} committed events in {timeout_s} s")


def test_a_master_failover_and_a_processor_sigkill_lose_and_double_nothing(
    cluster_settings: Settings, redis_cluster: LocalCluster, tmp_path: Path
) -> None:
    settings = cluster_settings
    prepare_topics(settings)
    producer = make_producer("confluent", settings.kafka_bootstrap)
    expected = produce_stream(producer, Topics(settings.topic_prefix).events, N_EVENTS, malformed_share=0.01, seed=5)
    producer.close()
    log = tmp_path / "processor.log"
    processor = start_processor(settings, log)
    try:
        _wait_committed(settings, 0.25 * N_EVENTS, processor)
        port = redis_cluster.kill_master_of(_victim(redis_cluster, settings, sorted(expected.users)))
        redis_cluster.restart(port)  # back as the replica of the promoted master: WAIT can succeed again
        _wait_committed(settings, 0.55 * N_EVENTS, processor)
        processor.kill()  # SIGKILL: no commit, no clean leave
        processor.wait()
        processor = start_processor(settings, log)
        wait_until_drained(settings)
    finally:
        processor.terminate()
        processor.wait(30)
    assert_exact(settings, expected)


def test_rank_home_answers_through_a_failover_and_personalises_again(
    cluster_settings: Settings, redis_cluster: LocalCluster
) -> None:
    """During the failover RankHome answers from the no-features fallback (its policy says so);
    once the cluster has healed, answers are personalised again. Counts answered vs failed."""
    settings = cluster_settings.with_(feature_breaker_probe_s=0.2)
    prepare_topics(settings)
    serving = build_serving(settings, seed=0)
    serving.server.start()
    user = "failover-user"
    answered, failed, fallback = 0, 0, 0
    stop = threading.Event()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{serving.server.port}") as channel:
            rank = api_pb2_grpc.HomeRankingStub(channel).RankHome
            assert not rank(api_pb2.RankHomeRequest(user_id=user), timeout=10).policy.endswith("/no-features")

            def load() -> None:
                nonlocal answered, failed, fallback
                while not stop.is_set():
                    try:
                        response = rank(api_pb2.RankHomeRequest(user_id=user), timeout=10)
                        answered += 1
                        fallback += response.policy.endswith("/no-features")
                    except grpc.RpcError:
                        failed += 1
                    time.sleep(0.005)

            thread = threading.Thread(target=load)
            thread.start()
            time.sleep(0.5)
            port = redis_cluster.kill_master_of(keys.user_features(settings.redis_namespace, user))
            time.sleep(1.0)
            stop.set()
            thread.join(30)
            redis_cluster.restart(port)

            def personalised() -> bool:
                response = rank(api_pb2.RankHomeRequest(user_id=user), timeout=10)
                return not response.policy.endswith("/no-features")

            deadline = time.monotonic() + 30
            while not personalised():
                assert time.monotonic() < deadline, "answers never became personalised again"
                time.sleep(0.3)
    finally:
        serving.stop(grace_s=1)
    print(f"\nduring the failover: {answered} answered ({fallback} without features), {failed} failed")
    assert failed == 0
    assert answered > 50


def test_the_fence_waits_for_replicas_and_refuses_without_them(
    cluster_settings: Settings, redis_cluster: LocalCluster, redis_url: str
) -> None:
    """On the cluster every master has a replica: the fence passes for keys on all three masters.
    The single test Redis has none: the same fence refuses, naming the server."""
    from tastemaker.features.redis_connect import Fence, NotReplicated, connect

    client = connect(cluster_settings.redis_url)
    written = [keys.user_features(cluster_settings.redis_namespace, f"u{i}") for i in range(30)]
    assert len({redis_cluster.master_port_of(k) for k in written}) == 3
    client.set(written[0], b"x")
    Fence(replicas=1, timeout_ms=2000)(client, written)
    with pytest.raises(NotReplicated, match="0 of 1 replicas of the Redis server"):
        Fence(replicas=1, timeout_ms=50)(connect(redis_url), ["any-key"])
    Fence(replicas=0)(connect(redis_url), ["any-key"])  # off: nothing asked, nothing refused
