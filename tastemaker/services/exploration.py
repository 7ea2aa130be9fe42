"""How a strategy explored, as the decision log records it (the protobuf side of `bandits.strategies`)."""

from __future__ import annotations

from tastemaker.bandits.strategies import Floored, Strategy
from tastemaker.v1 import records_pb2


def exploration_log(strategy: Strategy, n: int, k: int) -> records_pb2.Exploration:
    """How `strategy` explored a ranking of k of n candidates, as the decision log records it; the
    floor is read off the strategy itself (`Floored`), so a floored strategy is never logged as
    unfloored (the propensity check caught that once: a strategy built floored, logged with 0)."""
    info = strategy.info(n, k)
    floor = strategy.floor if isinstance(strategy, Floored) else 0.0
    return records_pb2.Exploration(
        strategy=strategy.name,
        epsilon=strategy.parameters().get("epsilon", 0.0),
        propensity_method=info.method,
        monte_carlo_samples=info.samples,
        propensity_error_bound=info.error_bound,
        propensity_floor=floor,
        parameters=strategy.parameters(),
    )
