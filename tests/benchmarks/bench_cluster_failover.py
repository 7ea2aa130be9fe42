"""What the replication fence buys and costs on a Redis Cluster: the failover run of
tests/integration/test_cluster_failover.py (100,000 events, 1% malformed; a master SIGKILLed at 25%
of the stream and restarted as a replica; the processor SIGKILLed at 55%), once with
TASTEMAKER_REDIS_WAIT_REPLICAS=1 and once with it off, each on a fresh 6-node cluster. Reports the
counter updates lost (recount − stored, summed where positive), those applied twice (where
negative) and the time the stream took.

    python -m tests.benchmarks.bench_cluster_failover [--runs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tastemaker.features import keys
from tastemaker.features.redis_connect import connect
from tastemaker.features.store import FeatureStore
from tastemaker.features.topics import Topics
from tastemaker.messaging import make_producer
from tastemaker.services.bootstrap import prepare_topics
from tastemaker.services.config import Settings
from tastemaker.services.embedded import EmbeddedStack
from tests.support.event_stream import TYPES, Expected, produce_stream
from tests.support.processors import N_EVENTS, committed, start_processor, wait_until_drained
from tests.support.redis_cluster import LocalCluster


def _difference(settings: Settings, expected: Expected) -> tuple[int, int]:
    """(updates lost, updates applied twice) over every counter the recount knows."""
    store = FeatureStore(connect(settings.redis_url), namespace=settings.redis_namespace)
    lost = doubled = 0
    users = sorted(expected.users)
    for user, features in zip(users, store.read_many(users), strict=True):
        for event_type in TYPES:
            gap = expected.counts[(user, f"events.{event_type}.count")] - features.event_count(event_type)
            lost, doubled = lost + max(gap, 0), doubled + max(-gap, 0)
    for item, want in expected.item.items():
        gap = want - store.read_item(item)["item.engagement.count"]
        lost, doubled = lost + max(gap, 0), doubled + max(-gap, 0)
    return lost, doubled


def _run(kafka_bootstrap: str, replicas: int, seed: int) -> tuple[int, int, float]:
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="bench-cluster-"))).start()
    try:
        tag = f"bench-{replicas}-{seed}-{int(time.time())}"
        settings = Settings(
            kafka_bootstrap=kafka_bootstrap, redis_url=cluster.url, topic_prefix=f"{tag}.tastemaker",
            redis_namespace=tag, redis_wait_replicas=replicas,
        )  # fmt: skip
        prepare_topics(settings)
        producer = make_producer("confluent", kafka_bootstrap)
        expected = produce_stream(producer, Topics(settings.topic_prefix).events, N_EVENTS, 0.01, seed=seed)
        producer.close()
        log = Path(tempfile.mkdtemp()) / "processor.log"
        start = time.perf_counter()
        processor = start_processor(settings, log)
        while committed(settings) < 0.25 * N_EVENTS:
            time.sleep(0.1)
        victim = keys.user_features(settings.redis_namespace, sorted(expected.users)[0])
        cluster.restart(cluster.kill_master_of(victim))
        while committed(settings) < 0.55 * N_EVENTS:
            time.sleep(0.1)
        processor.kill()
        processor.wait()
        processor = start_processor(settings, log)
        wait_until_drained(settings)
        took = time.perf_counter() - start
        processor.terminate()
        processor.wait(30)
        lost, doubled = _difference(settings, expected)
        return lost, doubled, took
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="failover runs per setting (default 3)")
    args = parser.parse_args()
    rows = []
    with EmbeddedStack(redis_url="redis://unused") as stack:
        for replicas in (1, 0):
            for run in range(args.runs):
                lost, doubled, took = _run(stack.kafka_bootstrap, replicas, seed=run)
                rows.append((replicas, run, lost, doubled, took))
                print(f"WAIT {'on ' if replicas else 'off'} run {run}: lost {lost}, doubled {doubled}, {took:.1f} s")
    print(f"\nRedis Cluster failover, {N_EVENTS:,} events, master SIGKILLed at 25%, processor at 55%")
    print(f"{'fence':<22}{'runs':>6}{'lost updates':>14}{'doubled':>9}{'mean s':>8}")
    for replicas in (1, 0):
        mine = [r for r in rows if r[0] == replicas]
        name = "WAIT 1 replica" if replicas else "off (no WAIT)"
        print(f"{name:<22}{len(mine):>6}{sum(r[2] for r in mine):>14}{sum(r[3] for r in mine):>9}"
              f"{sum(r[4] for r in mine) / len(mine):>8.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
