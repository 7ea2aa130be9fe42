"""`tastemaker serve --workers 2`: two processes answer on one port, and a graceful stop under load
loses no request it accepted — every answered decision's log reaches the broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import urllib.request

import grpc
import pytest

from tastemaker.features.topics import Topics
from tastemaker.services.bootstrap import prepare_topics
from tastemaker.services.config import Settings
from tastemaker.services.embedded import free_port, free_ports
from tastemaker.v1 import api_pb2, api_pb2_grpc, records_pb2
from tests.integration.helpers import records_on, wait_for

pytestmark = pytest.mark.integration


def _environ(settings: Settings, metrics_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "TASTEMAKER_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TASTEMAKER_REDIS_URL": settings.redis_url,
        "TASTEMAKER_REDIS_NAMESPACE": settings.redis_namespace,
        "TASTEMAKER_TOPIC_PREFIX": settings.topic_prefix,
        "TASTEMAKER_METRICS_PORT": str(metrics_port),
        "TASTEMAKER_LOG_LEVEL": "WARNING",
    }


def _rank(address: str, user: str) -> str:
    """One RankHome on a new connection (each connection may land on either worker)."""
    with grpc.insecure_channel(address) as channel:
        stub = api_pb2_grpc.HomeRankingStub(channel)
        return str(stub.RankHome(api_pb2.RankHomeRequest(user_id=user, max_shelves=3), timeout=10).decision_id)


def _answered(metrics_port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("tastemaker_rpcs_total{") and 'method="RankHome"' in line and 'code="OK"' in line
    )


def test_two_workers_share_one_port_and_stop_without_losing_a_request(settings: Settings) -> None:
    prepare_topics(settings)
    port, metrics_port = free_port(), free_ports(2)
    address = f"127.0.0.1:{port}"
    cli = [sys.executable, "-m", "tastemaker.cli"]
    parent = subprocess.Popen(
        [*cli, "serve", "--workers", "2", "--port", str(port)], env=_environ(settings, metrics_port)
    )
    answered: list[str] = []
    refused: list[str] = []
    try:

        def both_up() -> bool:
            try:
                return all(_answered(metrics_port + i) >= 0 for i in range(2))
            except OSError:
                return False

        wait_for(both_up, timeout_s=90, what="both workers' metrics")
        wait_for(lambda: _rank(address, "warm-up"), timeout_s=30, what="a first answer")
        for i in range(40):
            answered.append(_rank(address, f"user-{i}"))
        per_worker = [_answered(metrics_port + i) for i in range(2)]
        assert all(n > 0 for n in per_worker), per_worker  # the kernel spread the connections over both
        assert sum(per_worker) == 41

        # a second server on the same port is refused, not silently added to the pool
        intruder = subprocess.run([*cli, "serve", "--workers", "2", "--port", str(port)],
                                  env=_environ(settings, 0), capture_output=True, text=True, timeout=60)  # fmt: skip
        assert intruder.returncode == 1 and "in use" in intruder.stderr, intruder.stderr

        stop = threading.Event()

        def load(tag: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    answered.append(_rank(address, f"load-{tag}-{n}"))
                except grpc.RpcError as exc:
                    # once the stop begins, a new call finds no server (UNAVAILABLE) or is turned away
                    # as it arrives (CANCELLED): either way the caller has no answer and may retry
                    refused.append(exc.code().name)  # type: ignore[attr-defined]

        threads = [threading.Thread(target=load, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(answered) > 120, timeout_s=60, what="load on both workers")
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(60) == 0
        stop.set()
        for thread in threads:
            thread.join(30)
    finally:
        if parent.poll() is None:
            parent.kill()
    logged = {
        records_pb2.DecisionLog.FromString(r.value).decision_id
        for r in records_on(settings.kafka_bootstrap, Topics(settings.topic_prefix).decisions)
    }
    assert set(refused) <= {"UNAVAILABLE", "CANCELLED"}, refused
    missing = [d for d in answered if d not in logged]
    assert not missing, f"{len(missing)} of {len(answered)} answered decisions have no log"
    leftover = subprocess.run(["pgrep", "-f", f"--reuse-port --port {port}"], capture_output=True, text=True).stdout
    assert not leftover.strip(), "a worker outlived its parent"
