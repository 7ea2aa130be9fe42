"""What the serving path records per call for Prometheus (served by `services.metrics`): RPC
latency and status codes, decisions by policy and model version, exploration, logged propensities.
The instruments are not registered anywhere: the serving collector yields them at scrape time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import Metric

#: seconds: from 0.5 ms to 2.5 s, finer where RankHome lives
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: logged P(item at its position): small values are what off-policy estimates pay for
PROPENSITY_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


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
        self.propensity = Histogram(
            "tastemaker_logged_propensity", "Logged propensity of each shown slot, by surface",
            ["surface"], buckets=PROPENSITY_BUCKETS, registry=None,
        )  # fmt: skip

    def observe(self, surface: str, policy: str, model_version: str, propensities: Iterable[float]) -> None:
        self.decisions.labels(surface, policy, model_version).inc()
        histogram = self.propensity.labels(surface)
        shown = explored = 0
        for p in propensities:
            histogram.observe(p)
            shown += 1
            explored += p < 1.0
        self.slots.labels(surface).inc(shown)
        self.explored.labels(surface).inc(explored)

    def collect(self) -> Iterator[Metric]:
        for instrument in (self.decisions, self.explored, self.slots, self.propensity):
            yield from instrument.collect()
