"""What the serving path records per call for Prometheus (served by `services.metrics`): RPC
latency and status codes, decisions by policy and model version, exploration, logged propensities.
The instruments are not registered anywhere: the serving collector yields them at scrape time."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import numpy as np
from prometheus_client import Counter, Histogram
from prometheus_client.core import HistogramMetricFamily, Metric

#: seconds: from 0.5 ms to 2.5 s, finer where RankHome lives
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: logged P(item at its position): small values are what off-policy estimates pay for
PROPENSITY_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
_EDGES = np.array(PROPENSITY_BUCKETS)


class RpcMetrics:
    def __init__(self) -> None:
        self.duration = Histogram(
            "tastemaker_rpc_duration_seconds", "Server-side time of a unary RPC, by method",
            ["method"], buckets=LATENCY_BUCKETS, registry=None,
        )  # fmt: skip
        self.calls = Counter(
            "tastemaker_rpcs", "Unary RPCs answered, by method and status code", ["method", "code"], registry=None
        )

    def observe(self, method: str, code: str, seconds: float) -> None:
        name = method.rsplit("/", 1)[-1]
        self.duration.labels(name).observe(seconds)
        self.calls.labels(name, code).inc()

    def collect(self) -> Iterator[Metric]:
        yield from self.duration.collect()
        yield from self.calls.collect()


class DecisionMetrics:
    def __init__(self) -> None:
        self.decisions = Counter(
            "tastemaker_decisions", "Decisions logged, by surface, policy and model version",
            ["surface", "policy", "model_version"], registry=None,
        )  # fmt: skip
        self.explored = Counter(
            "tastemaker_explored_slots", "Shown slots whose logged propensity is below 1 (the strategy could have "
            "shown something else there), by surface", ["surface"], registry=None,
        )  # fmt: skip
        self.slots = Counter("tastemaker_shown_slots", "Shown slots, by surface", ["surface"], registry=None)
        # a page shows ~100 slots: their propensities are binned in one numpy pass per decision
        # (one Histogram.observe each cost ~0.7 µs, 78 µs a page, on the request path)
        self._lock = threading.Lock()
        self._bins: dict[str, np.ndarray] = {}  # surface → count per bucket (+Inf last)
        self._sums: dict[str, float] = {}

    def observe(self, surface: str, policy: str, model_version: str, propensities: Sequence[float]) -> None:
        self.decisions.labels(surface, policy, model_version).inc()
        values = np.asarray(propensities, dtype=np.float64)
        counts = np.bincount(np.searchsorted(_EDGES, values, side="left"), minlength=len(_EDGES) + 1)
        with self._lock:
            self._bins[surface] = self._bins.get(surface, 0) + counts
            self._sums[surface] = self._sums.get(surface, 0.0) + float(values.sum())
        self.slots.labels(surface).inc(len(values))
        self.explored.labels(surface).inc(int((values < 1.0).sum()))

    def collect(self) -> Iterator[Metric]:
        for instrument in (self.decisions, self.explored, self.slots):
            yield from instrument.collect()
        family = HistogramMetricFamily(
            "tastemaker_logged_propensity", "Logged propensity of each shown slot, by surface", labels=["surface"]
        )
        with self._lock:
            binned = {surface: (counts.copy(), self._sums[surface]) for surface, counts in self._bins.items()}
        for surface, (counts, total) in binned.items():
            cumulative = np.cumsum(counts)
            buckets = [(repr(edge), float(c)) for edge, c in zip(PROPENSITY_BUCKETS, cumulative[:-1], strict=True)]
            family.add_metric([surface], [*buckets, ("+Inf", float(cumulative[-1]))], total)
        yield family
