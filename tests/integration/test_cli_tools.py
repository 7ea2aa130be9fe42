"""`tastemaker events produce`, `logs export` and `evaluate` against the real broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tastemaker.cli import main
from tastemaker.features.topics import Topics
from tastemaker.messaging.kafka_python import KafkaPythonProducer
from tastemaker.services.bootstrap import prepare_topics
from tastemaker.services.config import Settings
from tastemaker.v1 import records_pb2
from tests.integration.helpers import records_on

pytestmark = pytest.mark.integration


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TASTEMAKER_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    monkeypatch.setenv("TASTEMAKER_TOPIC_PREFIX", settings.topic_prefix)
    prepare_topics(settings)
    return settings


def test_events_produce_sends_every_line(env: Settings, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        json.dumps({"event_id": "e1", "user_id": "u1", "type": "play", "item_id": "c", "event_time_ms": 1})
        + "\n"
        + "this line is not json\n\n"
    )
    assert main(["events", "produce", str(events)]) == 0
    sent = records_on(env.kafka_bootstrap, Topics(env.topic_prefix).events)
    assert sorted(sent, key=lambda r: r.key or b"")[1].key == b"u1" and len(sent) == 2  # the bad line goes too
    assert all(r.headers["content-type"] == b"application/json" for r in sent)


def test_export_then_evaluate_from_the_file(env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    producer = KafkaPythonProducer(env.kafka_bootstrap)
    for i, clicks in enumerate([1.0, 0.0, 2.0]):
        shelf = records_pb2.LoggedShelf(shelf_id="s", position=0, propensity=1.0)
        decision = records_pb2.DecisionLog(
            decision_id=f"d{i}",
            surface="home",
            shown=[shelf],
            shelf_candidates=records_pb2.CandidateScores(item_ids=["s"], scores=[0.0]),
        )
        outcomes = [records_pb2.Outcome(decision_id=f"d{i}", item_id="s", reward=clicks)] if clicks else []
        rewarded = records_pb2.RewardedDecision(decision=decision, outcomes=outcomes, reward=clicks)
        producer.send(Topics(env.topic_prefix).rewarded, rewarded.SerializeToString())
    producer.flush()
    out = tmp_path / "rewarded.jsonl"
    assert main(["logs", "export", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 3
    capsys.readouterr()
    report_path = tmp_path / "report.json"
    assert main(["evaluate", "--logs", str(out), "--json", str(report_path)]) == 0
    printed = capsys.readouterr().out
    assert "logging" in printed and "greedy" in printed
    report = json.loads(report_path.read_text())
    assert report["on_policy_mean_reward"] == pytest.approx(1.0)
    assert report["policies"]["greedy"]["estimates"]["ipw"]["value"] == pytest.approx(1.0)
    parquet = tmp_path / "rewarded.parquet"
    assert main(["logs", "export", "--out", str(parquet)]) == 0
    page = tmp_path / "page.html"
    assert main(["evaluate", "--format", "parquet", "--logs", str(parquet), "--estimators", "ipw,dr",
                 "--report", str(page)]) == 0  # fmt: skip
    twin = json.loads(page.with_suffix(".json").read_text())
    assert twin["policies"]["greedy"]["estimates"]["dr"]["value"] == pytest.approx(1.0)
    assert "<svg" in page.read_text()


def test_features_run_with_two_processes_get_and_status(
    env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.integration.helpers import wait_for

    environ = {
        **os.environ,
        "TASTEMAKER_REDIS_URL": env.redis_url,
        "TASTEMAKER_REDIS_NAMESPACE": env.redis_namespace,
        "TASTEMAKER_LOG_LEVEL": "WARNING",
    }
    from tastemaker.services.embedded import free_ports

    metrics_port = free_ports(2)
    supervisor = subprocess.Popen(
        [
            sys.executable, "-m", "tastemaker.cli", "features", "run", "--processes", "2",
            "--metrics-port", str(metrics_port),
        ],
        env=environ,
    )  # fmt: skip
    try:
        events = tmp_path / "events.jsonl"
        lines = [
            json.dumps(
                {
                    "event_id": f"e{i}",
                    "user_id": "ivy",
                    "type": "play",
                    "item_id": f"t{i % 3}",
                    "shelf_id": "s1",
                    "event_time_ms": 1_700_000_000_000 + i,
                    "listened_seconds": 10,
                    "track_length_seconds": 40,
                }
            )
            for i in range(6)
        ] + [json.dumps({"event_id": "e9", "user_id": "ivy", "type": "skip", "event_time_ms": 1_700_000_000_009})]
        events.write_text("\n".join(lines) + "\n")
        monkeypatch.setenv("TASTEMAKER_REDIS_URL", env.redis_url)
        monkeypatch.setenv("TASTEMAKER_REDIS_NAMESPACE", env.redis_namespace)
        assert main(["events", "produce", str(events)]) == 0

        def features() -> dict | None:
            capsys.readouterr()
            assert main(["features", "get", "--user", "ivy"]) == 0
            got = json.loads(capsys.readouterr().out)
            return got if got["events.skip.count"] == 1 and got["events.play.count"] == 6 else None

        got = wait_for(features, timeout_s=60, what="ivy's features")
        assert got["skip_rate"] == pytest.approx(1 / 7)
        assert got["completion_rate"] == pytest.approx(0.25)
        assert got["recent.played"] == ["t2", "t1", "t0"]
        assert got["shelf.engagement"] == {"s1": 6}

        def two_processors() -> dict | None:
            capsys.readouterr()
            assert main(["features", "status", "--json"]) == 0
            status = json.loads(capsys.readouterr().out)
            consumed = sum(p["consumed"] for p in status["processors"].values())
            return status if len(status["processors"]) == 2 and consumed == 7 else None

        status = wait_for(two_processors, timeout_s=30, what="two processors in the status")
        assert sum(status["group_lag"]["committed"].values()) == 7

        def scraped_applied() -> float | None:
            import urllib.request

            total = 0.0
            for port in (metrics_port, metrics_port + 1):
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                for line in text.splitlines():
                    if line.startswith('tastemaker_features_events_total{outcome="applied"}'):
                        total += float(line.split()[-1])
            return total if total == 7 else None

        wait_for(scraped_applied, timeout_s=30, what="7 applied events in the Prometheus metrics")
    finally:
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(30) == 0
    time.sleep(0.5)
    leftover = subprocess.run(["pgrep", "-f", "features run --processes 1"], capture_output=True, text=True).stdout
    assert not leftover.strip(), "a worker outlived its supervisor"


def test_joiner_and_learner_serve_prometheus_metrics(env: Settings) -> None:
    """`joiner run` (port from TASTEMAKER_METRICS_PORT) and `learner run` (from --metrics-port) answer
    /metrics with their counters and stop cleanly on SIGTERM; a bad port is refused with exit 2."""
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    from tastemaker.services.embedded import free_ports
    from tests.integration.helpers import wait_for

    port = free_ports(2)
    base = {
        **os.environ,
        "TASTEMAKER_REDIS_URL": env.redis_url,
        "TASTEMAKER_REDIS_NAMESPACE": env.redis_namespace,
        "TASTEMAKER_LOG_LEVEL": "WARNING",
    }
    cli = [sys.executable, "-m", "tastemaker.cli"]
    workers = {
        "joiner": subprocess.Popen([*cli, "joiner", "run"], env={**base, "TASTEMAKER_METRICS_PORT": str(port)}),
        "learner": subprocess.Popen([*cli, "learner", "run", "--metrics-port", str(port + 1)], env=base),
    }
    expected = {
        port: ["tastemaker_joiner_decisions_total", "tastemaker_joiner_defaulted_total", "tastemaker_joiner_pending"],
        port + 1: ["tastemaker_learner_rows_applied_total", "tastemaker_learner_skipped_total"],
    }
    try:
        for at, names in expected.items():

            def scraped(at: int = at) -> str | None:
                try:
                    return urllib.request.urlopen(f"http://127.0.0.1:{at}/metrics", timeout=2).read().decode()
                except OSError:
                    return None

            text = wait_for(scraped, timeout_s=60, what=f"/metrics on {at}")
            for name in names:
                assert f"\n{name} " in text, (name, text)
    finally:
        for worker in workers.values():
            worker.send_signal(signal.SIGTERM)
        assert {name: w.wait(30) for name, w in workers.items()} == {"joiner": 0, "learner": 0}
    refused = subprocess.run([*cli, "learner", "run", "--metrics-port", "70000"], env=base, capture_output=True)
    assert refused.returncode == 2 and b"--metrics-port" in refused.stderr
