"""Prometheus metrics of a stream processor, served on `--metrics-port` (off by default)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from tastemaker.features.processor import ProcessorStats


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
        self._seen = ProcessorStats()

    def update(self, stats: ProcessorStats) -> None:
        for outcome in ("applied", "duplicates", "rejected"):
            delta = getattr(stats, outcome) - getattr(self._seen, outcome)
            if delta > 0:
                self._events.labels(outcome).inc(delta)
        self._seen = ProcessorStats(**vars(stats))
        self._lag.set(stats.lag)
        self._rate.set(stats.events_per_s)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as e:
            raise OSError(e.errno, f"cannot serve metrics on {host}:{port}: {e.strerror}") from e
