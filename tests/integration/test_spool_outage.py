"""No decision log or outcome lost while Kafka is down. With the default configuration (the spool in
the state directory): the broker away for 60 s under three callers' load. With TASTEMAKER_SPOOL_PATH:
a real `tastemaker serve` under steady RankHome + ReportOutcome load; its own Tansu broker is
SIGKILLed for 30 s, the load goes on (answered from the spool), the server is SIGKILLed too while
records wait, the broker comes back, the server restarts on the same spool: every decision answered after
the broker died appears on tastemaker.decisions exactly once, every accepted outcome on
tastemaker.outcomes exactly once. (The test broker keeps records in memory, so what it held before
its death is gone with it; what was only ever in the spool is what this test is about.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest

from tastemaker.features.topics import Topics
from tastemaker.services.bootstrap import prepare_topics
from tastemaker.services.config import Settings
from tastemaker.services.embedded import free_port, start_broker
from tastemaker.v1 import api_pb2, api_pb2_grpc, records_pb2
from tests.integration.helpers import records_on, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


class Load:
    def __init__(self, address: str) -> None:
        self.address = address
        self.decisions: list[tuple[float, str]] = []  # (answered at, decision id)
        self.outcomes: list[tuple[float, str]] = []  # (accepted at, outcome id)
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                with grpc.insecure_channel(self.address) as channel:
                    response = api_pb2_grpc.HomeRankingStub(channel).RankHome(
                        api_pb2.RankHomeRequest(user_id=f"spool-{n % 20}", max_shelves=2), timeout=5
                    )
                    self.decisions.append((time.time(), response.decision_id))
                    card = response.shelves[0].cards[0].card_id
                    reply = api_pb2_grpc.FeedbackStub(channel).ReportOutcome(
                        api_pb2.ReportOutcomeRequest(decision_id=response.decision_id, item_id=card, reward=1.0),
                        timeout=5,
                    )
                    self.outcomes.append((time.time(), reply.outcome_id))
            except grpc.RpcError as exc:  # only while the server itself is down
                self.failures.append(exc.code().name)  # type: ignore[attr-defined]
                time.sleep(0.05)
            time.sleep(0.01)


def _server(settings: Settings, port: int, spool: Path | None, state: Path | None = None) -> subprocess.Popen[bytes]:
    """`tastemaker serve` on `port`; `spool` None: the default configuration (no TASTEMAKER_SPOOL_PATH),
    with its state directory at `state`."""
    env = {
        **os.environ,
        "TASTEMAKER_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TASTEMAKER_REDIS_URL": settings.redis_url,
        "TASTEMAKER_REDIS_NAMESPACE": settings.redis_namespace,
        "TASTEMAKER_TOPIC_PREFIX": settings.topic_prefix,
        "TASTEMAKER_GRPC_PORT": str(port),
        "TASTEMAKER_LOG_LEVEL": "WARNING",
    }
    env.pop("TASTEMAKER_SPOOL_PATH", None)
    if spool is not None:
        env["TASTEMAKER_SPOOL_PATH"] = str(spool)
    if state is not None:
        env["TASTEMAKER_STATE_DIR"] = str(state)
    return subprocess.Popen([sys.executable, "-m", "tastemaker.cli", "serve"], env=env)


def test_a_broker_outage_and_a_server_sigkill_lose_and_duplicate_nothing(settings: Settings, tmp_path: Path) -> None:
    broker = start_broker(log_dir=tmp_path)
    broker_port = broker.port
    settings = settings.with_(kafka_bootstrap=f"127.0.0.1:{broker_port}")
    prepare_topics(settings)
    port, spool = free_port(), tmp_path / "spool.db"
    server = _server(settings, port, spool)
    load = Load(f"127.0.0.1:{port}")
    thread = threading.Thread(target=load.run)
    try:
        thread.start()
        wait_for(lambda: len(load.decisions) > 20, timeout_s=60, what="load on the server")
        broker.process.send_signal(signal.SIGKILL)
        broker.process.wait()
        outage_began = time.time()
        answered_before = len(load.decisions)
        wait_for(lambda: len(load.decisions) > answered_before + 100, timeout_s=60, what="answers during the outage")
        time.sleep(max(0.0, outage_began + 15 - time.time()))
        server.send_signal(signal.SIGKILL)  # while its records wait in the spool
        server.wait()
        time.sleep(max(0.0, outage_began + 30 - time.time()))  # the broker stays away 30 s in all
        broker = start_broker(port=broker_port, log_dir=tmp_path)  # back, empty (memory storage)
        prepare_topics(settings)
        server = _server(settings, port, spool)
        answered_again = len(load.decisions)
        wait_for(lambda: len(load.decisions) > answered_again + 50, timeout_s=60, what="answers after the restart")
    finally:
        load.stop.set()
        if thread.is_alive():
            thread.join(30)
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    topics = Topics(settings.topic_prefix)
    try:
        logged = Counter(
            records_pb2.DecisionLog.FromString(r.value).decision_id
            for r in records_on(settings.kafka_bootstrap, topics.decisions)
        )
        reported = Counter(
            records_pb2.Outcome.FromString(r.value).outcome_id
            for r in records_on(settings.kafka_bootstrap, topics.outcomes)
        )
    finally:
        broker.stop()
    since_outage = [d for at, d in load.decisions if at > outage_began]
    accepted = [o for at, o in load.outcomes if at > outage_began]
    assert len(since_outage) > 150
    missing = [d for d in since_outage if logged[d] == 0]
    assert not missing, f"{len(missing)} of {len(since_outage)} decisions answered since the outage were never logged"
    assert all(logged[d] == 1 for d in since_outage), Counter(logged[d] for d in since_outage)
    assert all(reported[o] == 1 for o in accepted), Counter(reported[o] for o in accepted)
    assert set(load.failures) <= {"UNAVAILABLE"}, Counter(load.failures)  # only while the server was down


def test_the_default_configuration_loses_nothing_in_a_minute_long_outage(settings: Settings, tmp_path: Path) -> None:
    """No TASTEMAKER_SPOOL_PATH: the broker SIGKILLed for 60 s under load from three callers, then back:
    the records waited in the state directory's spool, and every decision answered since the broker
    died reaches tastemaker.decisions exactly once, every accepted outcome tastemaker.outcomes once."""
    broker = start_broker(log_dir=tmp_path)
    broker_port = broker.port
    settings = settings.with_(kafka_bootstrap=f"127.0.0.1:{broker_port}")
    prepare_topics(settings)
    topics = Topics(settings.topic_prefix)
    port, state = free_port(), tmp_path / "state"
    server = _server(settings, port, None, state)
    loads = [Load(f"127.0.0.1:{port}") for _ in range(3)]
    threads = [threading.Thread(target=load.run) for load in loads]
    answered = lambda: sum(len(load.decisions) for load in loads)  # noqa: E731
    logged: Counter[str] = Counter()
    try:
        for thread in threads:
            thread.start()
        wait_for(lambda: answered() > 30, timeout_s=60, what="load on the server")
        broker.process.send_signal(signal.SIGKILL)
        broker.process.wait()
        outage_began = time.time()
        time.sleep(60)
        assert (state / f"spool-{port}.db").is_file(), "the default configuration must spool to disk"
        broker = start_broker(port=broker_port, log_dir=tmp_path)  # back, empty (memory storage)
        prepare_topics(settings)
        answered_again = answered()
        wait_for(lambda: answered() > answered_again + 50, timeout_s=60, what="answers after the broker's return")
        for load in loads:
            load.stop.set()
        for thread in threads:
            thread.join(30)
        since_outage = [d for load in loads for at, d in load.decisions if at > outage_began]

        def all_logged() -> bool:
            logged.clear()
            logged.update(
                records_pb2.DecisionLog.FromString(r.value).decision_id
                for r in records_on(settings.kafka_bootstrap, topics.decisions)
            )
            return all(logged[d] for d in since_outage)

        wait_for(all_logged, timeout_s=240, what="the spool to drain onto tastemaker.decisions")
    finally:
        for load in loads:
            load.stop.set()
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    try:
        reported = Counter(
            records_pb2.Outcome.FromString(r.value).outcome_id
            for r in records_on(settings.kafka_bootstrap, topics.outcomes)
        )
    finally:
        broker.stop()
    accepted = [o for load in loads for at, o in load.outcomes if at > outage_began]
    assert len(since_outage) > 300
    assert all(logged[d] == 1 for d in since_outage), Counter(logged[d] for d in since_outage)
    assert all(reported[o] == 1 for o in accepted), Counter(reported[o] for o in accepted)
    failures = [f for load in loads for f in load.failures]
    assert set(failures) <= {"UNAVAILABLE"} and len(failures) < len(since_outage) / 10, Counter(failures)
