"""Prometheus metrics of a serving process (`TASTEMAKER_METRICS_PORT`), read from the live objects
at each scrape: RPC latency and status codes, decisions by policy and model version, exploration
and logged propensities (`serving_metrics`), the decision-log pipeline (queued, published, dropped, lost, failed
attempts, Kafka clients replaced), bad requests, the feature store's breaker, worker restarts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tastemaker.messaging.recovering import RecoveringProducer

if TYPE_CHECKING:
    from tastemaker.services.bootstrap import Serving, Workers


class ServingCollector(Collector):
    def __init__(self, serving: Serving, workers: Workers | None = None) -> None:
        self._serving = serving
        self._workers = workers

    def collect(self) -> Iterator[Metric]:
        serving = self._serving
        yield from serving.server.interceptor.rpcs.collect()
        yield from serving.home.metrics.collect()
        yield CounterMetricFamily(
            "tastemaker_decisions_served", "RankHome decisions answered", value=serving.home.decisions_served
        )
        stats = serving.publisher.stats
        records = CounterMetricFamily(
            "tastemaker_published_records", "Records (decision logs, outcomes) by fate", labels=["outcome"]
        )
        records.add_metric(["published"], stats.published)
        records.add_metric(["dropped_queue_full"], stats.dropped)
        records.add_metric(["lost_at_shutdown"], stats.lost)
        records.add_metric(["refused_too_large"], stats.refused)
        yield records
        yield CounterMetricFamily(
            "tastemaker_publish_failed_attempts", "Batches that failed and were sent again", value=stats.failed_attempts
        )
        yield GaugeMetricFamily(
            "tastemaker_publish_queue_depth", "Records waiting for the broker", value=serving.publisher.queued()
        )
        producer = getattr(serving.publisher, "_producer", None)
        if isinstance(producer, RecoveringProducer):
            yield CounterMetricFamily(
                "tastemaker_kafka_producer_rebuilds", "Kafka clients replaced after a failure", value=producer.rebuilds
            )
        auth = serving.server.security.auth
        if auth is not None:
            yield CounterMetricFamily(
                "tastemaker_auth_refused", "Calls refused UNAUTHENTICATED or PERMISSION_DENIED", value=auth.refused
            )
        yield CounterMetricFamily(
            "tastemaker_outcomes_refused",
            "ReportOutcome calls refused: forged, foreign or expired decision ids",
            value=serving.feedback.refused,
        )
        yield CounterMetricFamily(
            "tastemaker_bad_requests",
            "Requests answered INVALID_ARGUMENT",
            value=serving.server.interceptor.bad_requests.total,
        )
        yield CounterMetricFamily(
            "tastemaker_feature_read_failures",
            "Feature reads that failed or timed out",
            value=serving.home.feature_failures,
        )
        yield GaugeMetricFamily(
            "tastemaker_feature_breaker_open",
            "1 while ranking skips the feature store",
            value=float(serving.breaker.is_open),
        )
        yield CounterMetricFamily(
            "tastemaker_feature_reads_skipped", "Requests served without reading features (breaker open)",
            value=serving.breaker.short_circuited,
        )  # fmt: skip
        if serving.device_decisions is not None:
            device = CounterMetricFamily(
                "tastemaker_device_decisions",
                "Device suggestion lists uploaded (ReportDeviceDecisions), by fate",
                labels=["result"],
            )
            for result in ("accepted", "duplicate", "rejected_too_old", "rejected_foreign", "rejected_malformed"):
                device.add_metric([result], serving.device_decisions.counts[result])
            yield device
        if self._workers is not None:
            restarts = CounterMetricFamily(
                "tastemaker_worker_restarts", "Background loops restarted after dying", labels=["worker"]
            )
            for name, count in self._workers.restarts.items():
                restarts.add_metric([name], count)
            yield restarts


def serve_metrics(
    serving: Serving,
    port: int,
    workers: Workers | None = None,
    host: str = "127.0.0.1",
    extra: Sequence[Collector] = (),
) -> None:
    """Serve the serving process's metrics, and `extra` collectors' (workers running beside it)."""
    registry = CollectorRegistry()
    registry.register(ServingCollector(serving, workers))
    for collector in extra:
        registry.register(collector)
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        raise OSError(e.errno, f"cannot serve metrics on {host}:{port}: {e.strerror}") from e
