"""Serving metrics over a real port after real calls, and the Grafana dashboard checked against
the metric names the processes actually expose."""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tastemaker.cli.streams import JOINER_HELP, LEARNER_HELP
from tastemaker.features.joiner import JoinerStats
from tastemaker.features.learner import LearnerStats
from tastemaker.features.metrics import ProcessorMetrics, StatsCollector, worker_registry
from tastemaker.features.processor import ProcessorStats
from tastemaker.services.bootstrap import Serving, Workers
from tastemaker.services.embedded import free_port
from tastemaker.services.metrics import ServingCollector, serve_metrics
from tastemaker.training.lifecycle.propensity_watch import PropensityWatch
from tastemaker.v1 import api_pb2, api_pb2_grpc

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "tastemaker.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{labels} in the scrape")


def test_rpc_latency_codes_decisions_and_propensities_are_scraped(serving: Serving, channel: grpc.Channel) -> None:
    port = free_port()
    serve_metrics(serving, port)
    home = api_pb2_grpc.HomeRankingStub(channel)
    for i in range(3):
        home.RankHome(api_pb2.RankHomeRequest(user_id=f"m{i}", max_shelves=4, max_cards_per_shelf=3), timeout=10)
    with pytest.raises(grpc.RpcError):
        home.RankHome(api_pb2.RankHomeRequest(user_id=""), timeout=10)
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert _sample(text, "tastemaker_rpcs_total", method="RankHome", code="OK") == 3
    assert _sample(text, "tastemaker_rpcs_total", method="RankHome", code="INVALID_ARGUMENT") == 1
    assert _sample(text, "tastemaker_rpc_duration_seconds_count", method="RankHome") == 4
    assert _sample(text, "tastemaker_rpc_duration_seconds_bucket", method="RankHome", le="+Inf") == 4
    decisions = _sample(text, "tastemaker_decisions_total", surface="home", policy="epsilon-greedy")
    assert decisions == 3
    slots = _sample(text, "tastemaker_shown_slots_total", surface="home")
    assert slots == 3 * (4 + 4 * 3)  # every shown shelf and card
    assert _sample(text, "tastemaker_logged_propensity_count", surface="home") == slots
    assert 0 < _sample(text, "tastemaker_explored_slots_total", surface="home") <= slots
    assert _sample(text, "tastemaker_outcomes_refused_total") == 0


class _NoRecords:
    def poll(self, timeout_s: float, max_records: int = 500) -> list[object]:
        return []


def _exposed_names(serving: Serving) -> set[str]:
    """Every sample name each process kind exposes (the serving process, the three workers and the
    live propensity check)."""
    workers = Workers(threading.Event())
    workers.restarts["joiner"] = 1  # labelled series appear once they have a sample
    registries = [worker_registry(ServingCollector(serving, workers))]
    processor = ProcessorMetrics()
    processor.update(ProcessorStats(applied=2, duplicates=1, rejected=1))
    registries.append(processor.registry)
    joiner = StatsCollector("joiner", JoinerStats, JOINER_HELP, {"pending": ("p", lambda: 0)})
    registries.append(worker_registry(joiner))
    registries.append(worker_registry(StatsCollector("learner", LearnerStats, LEARNER_HELP)))
    registries.append(worker_registry(PropensityWatch(_NoRecords())))
    names: set[str] = set()
    for registry in registries:
        assert isinstance(registry, CollectorRegistry)
        for line in generate_latest(registry).decode().splitlines():
            if line and not line.startswith("#"):
                names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_the_dashboard_queries_only_metrics_that_exist(serving: Serving, channel: grpc.Channel) -> None:
    home = api_pb2_grpc.HomeRankingStub(channel)
    home.RankHome(api_pb2.RankHomeRequest(user_id="dash"), timeout=10)  # labelled series appear once used
    names = _exposed_names(serving)
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queried = {name for expr in expressions for name in _selected_metrics(expr)}
    assert len(queried) >= 20
    assert queried <= names, sorted(queried - names)
    covered = {name.removesuffix("_total") for name in queried}
    wanted = {
        "tastemaker_rpcs", "tastemaker_rpc_duration_seconds_bucket", "tastemaker_decisions",
        "tastemaker_publish_queue_depth", "tastemaker_features_consumer_lag", "tastemaker_joiner_pending",
    }  # fmt: skip
    assert wanted <= covered, sorted(wanted - covered)


def _selected_metrics(expr: str) -> set[str]:
    """The metric names a PromQL expression selects, from a real PromQL parser's syntax tree (an
    expression that does not parse fails here)."""
    import promql_parser

    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        for child in ("expr", "lhs", "rhs", "vector_selector", "param"):
            value = getattr(node, child, None)
            if value is not None and not isinstance(value, (str, int, float)):
                visit(value)
        for arg in getattr(node, "args", None) or []:
            visit(arg)

    visit(promql_parser.parse(expr))
    return names


def test_every_alert_parses_names_exposed_metrics_and_says_what_to_do(serving: Serving, channel: grpc.Channel) -> None:
    """deploy/prometheus/alerts.yml: each rule's PromQL parses, selects only metrics a real process
    exposes, has a severity Alertmanager can route and a summary and description for whoever is
    paged; prometheus.yml loads the file where compose mounts it."""
    import yaml

    home = api_pb2_grpc.HomeRankingStub(channel)
    home.RankHome(api_pb2.RankHomeRequest(user_id="alerts"), timeout=10)  # labelled series appear once used
    names = _exposed_names(serving)
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    assert len(rules) >= 6 and len({r["alert"] for r in rules}) == len(rules)
    selected: set[str] = set()
    for rule in rules:
        metrics = _selected_metrics(rule["expr"])
        assert metrics and metrics <= names, (rule["alert"], sorted(metrics - names))
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert rule["annotations"]["summary"] and len(rule["annotations"]["description"]) > 80, rule["alert"]
        selected |= metrics
    assert {"tastemaker_propensity_check_passed", "tastemaker_published_records_total"} <= selected
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in compose["services"]["prometheus"]["volumes"]
