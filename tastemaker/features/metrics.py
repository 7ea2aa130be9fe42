"""Prometheus metrics of the stream workers, served on `--metrics-port` / TASTEMAKER_METRICS_PORT
(off by default): the processor's events, lag and rate; the joiner's and the learner's counters."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tastemaker.features.processor import ProcessorStats


def serve_registry(registry: CollectorRegistry, port: int, host: str = "127.0.0.1") -> None:
    """`/metrics` of `registry` on host:port, in a background thread; the error names the address."""
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        raise OSError(e.errno, f"cannot serve metrics on {host}:{port}: {e.strerror}") from e


class StatsCollector(Collector):
    """Every integer field of a worker's stats dataclass as a counter `tastemaker_<worker>_<field>_total`,
    and each named gauge, read at scrape time."""

    def __init__(
        self,
        worker: str,
        stats: Callable[[], object],
        help_text: dict[str, str],
        gauges: dict[str, tuple[str, Callable[[], float]]] | None = None,
    ) -> None:
        self._worker = worker
        self._stats = stats
        self._help = help_text
        self._gauges = gauges or {}

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        for field in dataclasses.fields(stats):  # type: ignore[arg-type]
            value = getattr(stats, field.name)
            name = f"tastemaker_{self._worker}_{field.name}"
            yield CounterMetricFamily(name, self._help.get(field.name, field.name.replace("_", " ")), value=value)
        for name, (text, read) in self._gauges.items():
            yield GaugeMetricFamily(f"tastemaker_{self._worker}_{name}", text, value=read())


def worker_registry(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


class ProcessorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ["outcome"]
        self._events = Counter(
            "tastemaker_features_events", "Records consumed from tastemaker.events, by outcome", labels,
            registry=self.registry,
        )  # fmt: skip
        self._lag = Gauge("tastemaker_features_consumer_lag", "Records not yet consumed", registry=self.registry)
        self._rate = Gauge("tastemaker_features_events_per_second", "Recent consume rate", registry=self.registry)
        self._failures = Counter(
            "tastemaker_features_failed_batches",
            "Batches that failed (Redis or the broker away) and were rewound for redelivery",
            registry=self.registry,
        )
        self._seen = ProcessorStats()

    def update(self, stats: ProcessorStats) -> None:
        for outcome in ("applied", "duplicates", "rejected"):
            delta = getattr(stats, outcome) - getattr(self._seen, outcome)
            if delta > 0:
                self._events.labels(outcome).inc(delta)
        if stats.failures > self._seen.failures:
            self._failures.inc(stats.failures - self._seen.failures)
        self._seen = ProcessorStats(**vars(stats))
        self._lag.set(stats.lag)
        self._rate.set(stats.events_per_s)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        serve_registry(self.registry, port, host)
