"""The compose stack without Docker: every tastemaker service of deploy/compose.yaml runs as a local
process with the command and environment the file gives it (Tansu standing in for Kafka, the test
Redis for Redis, free ports for what would be each container's own). Events, RankHome calls and
outcomes go in; the loop must close — features move, rewarded decisions appear — and every
process answers /metrics. If the compose file drifts from the CLI or the settings, this goes red."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
import redis
import yaml

from tastemaker.cli import main
from tastemaker.features.store import FeatureStore
from tastemaker.features.topics import Topics
from tastemaker.services.config import Settings
from tastemaker.services.embedded import free_port, free_ports
from tastemaker.v1 import api_pb2, api_pb2_grpc, records_pb2
from tests.integration.helpers import records_on, wait_for

pytestmark = pytest.mark.integration

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"


#: the stack's shared keys volume, mounted here in every container that reads the decision key
KEYS = "/var/lib/tastemaker/keys"


def _one_shots(disk: Path) -> list[tuple[str, list[str]]]:
    """(name, argv) of the services that run once before the others (`restart: "no"`: keygen), the
    shared keys volume a folder of `disk`."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    return [
        (
            name,
            [
                sys.executable,
                "-m",
                "tastemaker.cli",
                *(a.replace(KEYS, str(disk / "keys")) for a in service["command"]),
            ],
        )
        for name, service in services.items()
        if str(service.get("image", "")).startswith("tastemaker-") and service.get("restart") == "no"
    ]


def _processes(settings: Settings, disk: Path) -> list[tuple[str, list[str], dict[str, str], list[int], int]]:
    """(name, argv, environment, metrics ports, gRPC port or 0) for each process the stack runs
    (`serve --workers N` is N servers on one port, worker i with metrics on PORT + i)."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    out = []
    for name, service in services.items():
        if not str(service.get("image", "")).startswith("tastemaker-") or service.get("restart") == "no":
            continue
        for replica in range(service.get("deploy", {}).get("replicas", 1)):
            env = {k: str(v).replace(KEYS, str(disk / "keys")) for k, v in service["environment"].items()}
            # what differs between containers and local processes: addresses, ports, isolation
            command = service["command"]
            workers = int(command[command.index("--workers") + 1]) if "--workers" in command else 1
            metrics_port, grpc_port = free_ports(workers), free_port() if "TASTEMAKER_GRPC_PORT" in env else 0
            env.update(
                TASTEMAKER_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
                TASTEMAKER_REDIS_URL=settings.redis_url,
                TASTEMAKER_TOPIC_PREFIX=settings.topic_prefix,
                TASTEMAKER_REDIS_NAMESPACE=settings.redis_namespace,
                TASTEMAKER_METRICS_PORT=str(metrics_port),
                TASTEMAKER_REWARD_WINDOW_S="1",
                TASTEMAKER_LOG_LEVEL="WARNING",
            )
            if grpc_port:
                env["TASTEMAKER_GRPC_PORT"] = str(grpc_port)
            if "TASTEMAKER_SPOOL_PATH" in env:  # each container's own disk
                env["TASTEMAKER_SPOOL_PATH"] = str(disk / f"{name}-{replica}" / "spool.db")
            argv = [sys.executable, "-m", "tastemaker.cli", *service["command"]]
            ports = [metrics_port + i for i in range(workers)]
            out.append((f"{name}-{replica}", argv, env, ports, grpc_port))
    return out


def _scrape(port: int) -> str | None:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return None


def test_the_compose_stack_closes_the_loop_as_local_processes(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    processes = _processes(settings, tmp_path)
    assert sorted(p[0] for p in processes) == [
        "features-0", "joiner-0", "learner-0", "propensity-check-0", "serve-0", "serve-1"
    ]  # fmt: skip
    base = {k: v for k, v in os.environ.items() if not k.startswith("TASTEMAKER_")}
    # keygen first, as compose orders it: the decision key every replica and the joiner read
    assert [name for name, _ in _one_shots(tmp_path)] == ["keygen"]
    for name, argv in _one_shots(tmp_path):
        assert subprocess.run(argv, env=base, timeout=60).returncode == 0, name
    key = (tmp_path / "keys" / "decision-key").read_text().strip()
    signed = [name for name, _, env, _, _ in processes if env.get("TASTEMAKER_DECISION_KEY_FILE")]
    assert len(key) == 64 and sorted(signed) == ["joiner-0", "serve-0", "serve-1"], signed
    running = {name: subprocess.Popen(argv, env={**base, **env}) for name, argv, env, _, _ in processes}
    try:
        for name, _, _, metrics_ports, _ in processes:
            for port in metrics_ports:
                wait_for(lambda port=port: _scrape(port), timeout_s=90, what=f"{name}'s /metrics on {port}")
            assert running[name].poll() is None, f"{name} exited with {running[name].returncode}"

        # events in: the stream processor moves the user's features
        for key, value in (("TASTEMAKER_KAFKA_BOOTSTRAP", settings.kafka_bootstrap),
                           ("TASTEMAKER_TOPIC_PREFIX", settings.topic_prefix)):  # fmt: skip
            monkeypatch.setenv(key, value)
        events = tmp_path / "events.jsonl"
        events.write_text(
            "\n".join(
                json.dumps({"event_id": f"smoke-{i}", "user_id": "smoke-user", "type": "card_click",
                            "shelf_id": "shelf-01", "item_id": "card-01-02", "event_time_ms": int(time.time() * 1000)})
                for i in range(5)
            ) + "\n"
        )  # fmt: skip
        assert main(["events", "produce", str(events)]) == 0
        store = FeatureStore(redis.Redis.from_url(settings.redis_url), namespace=settings.redis_namespace)
        wait_for(
            lambda: store.read("smoke-user").keyed.get("card.engagement", {}).get("card-01-02") == 5,
            timeout_s=60,
            what="the processor applying the events",
        )

        # RankHome on both replicas, an outcome for each decision
        decisions = []
        for _, _, _, _, grpc_port in (p for p in processes if p[4]):
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                home = api_pb2_grpc.HomeRankingStub(channel)
                feedback = api_pb2_grpc.FeedbackStub(channel)
                for i in range(5):
                    response = home.RankHome(api_pb2.RankHomeRequest(user_id=f"smoke-{i}", max_shelves=3), timeout=10)
                    card = response.shelves[0].cards[0].card_id
                    feedback.ReportOutcome(
                        api_pb2.ReportOutcomeRequest(decision_id=response.decision_id, item_id=card, reward=1.0),
                        timeout=10,
                    )
                    decisions.append(response.decision_id)

        # the joiner closes the loop: every decision comes back rewarded, with its outcome
        rewarded_topic = Topics(settings.topic_prefix).rewarded

        def rewarded() -> dict[str, records_pb2.RewardedDecision] | None:
            found = {}
            for record in records_on(settings.kafka_bootstrap, rewarded_topic):
                message = records_pb2.RewardedDecision.FromString(record.value)
                found[message.decision.decision_id] = message
            return found if set(decisions) <= set(found) else None

        found = wait_for(rewarded, timeout_s=90, what="every decision rewarded by the joiner")
        assert all(found[d].reward == 1.0 and not found[d].defaulted for d in decisions)

        # and every process reports what it did
        metrics = {name: "\n".join(_scrape(p) or "" for p in ports) for name, _, _, ports, _ in processes}
        assert sum(
            float(line.rsplit(" ", 1)[1])
            for name in ("serve-0", "serve-1")
            for line in metrics[name].splitlines()
            if line.startswith("tastemaker_decisions_total{")
        ) == len(decisions)  # every worker of every replica scraped
        assert "tastemaker_features_events_total" in metrics["features-0"]
        assert "tastemaker_joiner_rewarded_total" in metrics["joiner-0"]
        assert "tastemaker_learner_decisions_total" in metrics["learner-0"]
        assert "tastemaker_propensity_check_decisions_seen_total" in metrics["propensity-check-0"]
    finally:
        for process in running.values():
            process.send_signal(signal.SIGTERM)
        codes = {name: process.wait(60) for name, process in running.items()}
    assert set(codes.values()) == {0}, codes
