"""How fast the home bandit learns and swaps models, on the embedded broker and Redis:

- online update rate: rewarded decisions (and the shelf and card rows they teach) applied per
  second by one `LinearLearner` (Kafka consume + exactly-once Redis update), next to raw
  consumption of the same topic by the same client in the same run, for both Kafka adapters
  (confluent-kafka is what `deploy/` runs); each clock starts at the first record received, so the
  consumer group's join is not counted;
- linear-model pickup: how long a serving process's refresh (one Redis round trip) takes, and the
  refresh interval that bounds when every process serves the new posterior;
- reward-model swap: the time to load each kind of artifact (what a process pays to switch).

    make bench   # or: python -m tests.benchmarks.bench_learning --decisions 20000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import redis

from tastemaker.features.learner import LinearLearner
from tastemaker.features.linear_store import LinearStateStore, SharedLinearStates
from tastemaker.messaging import KAFKA_CLIENTS, make_consumer, make_producer
from tastemaker.messaging.codec import PROTOBUF_HEADERS
from tastemaker.messaging.kafka_python import ensure_topics
from tastemaker.models.artifacts import load_reward_model
from tastemaker.services.embedded import EmbeddedStack
from tests.support.rewarded import random_rewarded

#: what one learner must keep up with (rewarded decisions per second per process)
TARGET = 20_000


def _raw_rate(client: str, bootstrap: str, topic: str, count: int) -> float:
    consumer = make_consumer(client, bootstrap, [topic], f"raw-{uuid.uuid4().hex[:6]}")
    seen, start = 0, 0.0
    while seen < count:
        records = consumer.poll(1.0)
        if records and not start:
            start = time.perf_counter()
        seen += len(records)
    rate = count / (time.perf_counter() - start)
    consumer.close()
    return rate


def _learner_rate(
    client: str, bootstrap: str, redis_url: str, topic: str, count: int
) -> tuple[float, float, LinearStateStore]:
    """(decisions/s, rows/s, the posterior it wrote) of one learner from its first record to the last."""
    store = LinearStateStore(redis.Redis.from_url(redis_url), namespace=f"bench-{uuid.uuid4().hex[:6]}")
    learner = LinearLearner(
        make_consumer(client, bootstrap, [topic], f"learn-{uuid.uuid4().hex[:6]}"),
        store,
        make_producer(client, bootstrap),
        f"{topic}.dlq",
    )
    while not learner.consume_once(1.0):
        pass  # the group's join
    first, rows = learner.stats.decisions, learner.stats.rows_applied
    start = time.perf_counter()
    while learner.stats.decisions < count:
        learner.consume_once(1.0)
    seconds = time.perf_counter() - start
    learner.close()
    return (count - first) / seconds, (learner.stats.rows_applied - rows) / seconds, store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument(
        "--json", type=Path, metavar="OUT", help="also write the measured rates as JSON (for capacity.py)"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with EmbeddedStack() as stack:
        topic = f"bench-rewarded-{uuid.uuid4().hex[:6]}"
        ensure_topics(stack.kafka_bootstrap, [topic, f"{topic}.dlq"])
        producer = make_producer("confluent", stack.kafka_bootstrap)
        for i in range(args.decisions):
            producer.send(
                topic, random_rewarded(i, rng).SerializeToString(), key=str(i).encode(), headers=PROTOBUF_HEADERS
            )
        producer.flush()
        producer.close()
        rates = {}
        for kind in KAFKA_CLIENTS:
            raw = _raw_rate(kind, stack.kafka_bootstrap, topic, args.decisions)
            rate, rows_rate, store = _learner_rate(kind, stack.kafka_bootstrap, stack.redis_url, topic, args.decisions)
            rates[kind] = (raw, rate, rows_rate)
        shared = SharedLinearStates(store, refresh_s=0.0)
        refresh = []
        for _ in range(200):
            t0 = time.perf_counter()
            shared.maybe_refresh()
            refresh.append(time.perf_counter() - t0)
    print(
        f"\nOnline learning: {args.decisions:,} rewarded decisions, one learner process, clocks from the first record"
    )
    print(f"{'client':<18}{'raw records/s':>15}{'decisions/s':>13}{'× raw':>7}{'rows/s':>11}{'× target':>10}")
    for kind, (raw, rate, rows_rate) in rates.items():
        print(f"{kind:<18}{raw:>15,.0f}{rate:>13,.0f}{rate / raw:>7.2f}{rows_rate:>11,.0f}{rate / TARGET:>9.2f}×")
    print(f"(target: {TARGET:,} rewarded decisions/s per process)")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        measured = {
            k: {"raw_per_s": raw, "decisions_per_s": rate, "rows_per_s": rows} for k, (raw, rate, rows) in rates.items()
        }
        args.json.write_text(json.dumps(measured, indent=2))
    print(f"serving refresh of the posterior: p50 {np.percentile(refresh, 50) * 1e3:.2f} ms, "
          f"p99 {np.percentile(refresh, 99) * 1e3:.2f} ms; every process serves an update within the "
          f"refresh interval ({SharedLinearStates(store).refresh_s:.0f} s) plus that")  # fmt: skip

    from tastemaker.bandits.simulator import SimulatedWorld
    from tastemaker.services.requests import HomeRequest
    from tastemaker.training.modeling.reward_training import train_reward_model
    from tastemaker.v1 import records_pb2
    from tests.support.simulated import home_service

    world, logs = SimulatedWorld(seed=1), []
    service = home_service(world)
    for i in range(500):
        decision = service.rank(HomeRequest(f"user-{i % 40}", {}, (), 0, 0))
        clicks = world.respond(
            decision.user_id, [(s.shelf_id, [c.card_id for c in s.cards]) for s in decision.shown], rng
        )
        outcomes = [
            records_pb2.Outcome(decision_id=decision.decision_id, item_id=c.card_id, reward=1.0) for c in clicks
        ]
        logs.append(records_pb2.RewardedDecision(decision=decision, outcomes=outcomes))
    print("\nReward-model swap: loading an artifact (checksums verified), best of 5")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("logistic", "dnn", "gbt"):
            trained = train_reward_model(kind, logs, Path(tmp) / kind, epochs=1)
            best = float("inf")
            for _ in range(5):
                t0 = time.perf_counter()
                load_reward_model(trained.directory)
                best = min(best, time.perf_counter() - t0)
            print(f"{kind:<10}{best * 1e3:>8.1f} ms")


if __name__ == "__main__":
    main()
