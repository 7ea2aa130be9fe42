"""The stream processor against its floor, per Kafka client, in one run on one broker:

- events/s of one processor (Redis writes included) vs raw consumption of the same topic by
  the same client library, and their ratio; beside them a ceiling: raw consumption that also
  decodes and validates each record (what any per-record Python processor must do at least);
- Redis round trips per batch;
- freshness: produce → visible in Redis, p50/p99, at 50% of the processor's measured rate;
- feature-read latency for 1 and for 100 users;
- the processor's rate and the read latency on a 6-node Redis Cluster (loopback), without and with
  the replication fence (TASTEMAKER_REDIS_WAIT_REPLICAS=1), beside the one Redis.

    make bench            # or: python -m tests.benchmarks.bench_features --events 50000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import redis

from tastemaker.features import keys
from tastemaker.features.dead_letters import DeadLetterLedger
from tastemaker.features.events import EventRejected, decode_event
from tastemaker.features.feature_writer import FeatureWriter
from tastemaker.features.processor import StreamProcessor
from tastemaker.features.redis_connect import connect
from tastemaker.features.store import FeatureStore
from tastemaker.messaging import KAFKA_CLIENTS, make_consumer, make_producer
from tastemaker.messaging.kafka_python import ensure_topics, read_topic_to_end
from tastemaker.services.embedded import EmbeddedStack
from tastemaker.v1 import records_pb2
from tests.support.event_stream import produce_stream


def _processor(
    client: str,
    bootstrap: str,
    redis_url: str,
    topic: str,
    namespace: str,
    max_batch: int = 2000,
    wait_replicas: int = 0,
) -> StreamProcessor:
    connection = connect(redis_url)
    ledger = DeadLetterLedger(
        connection, namespace, make_producer(client, bootstrap), f"{topic}.dlq", topic,
        scan_dlq=lambda: read_topic_to_end(bootstrap, f"{topic}.dlq"),
    )  # fmt: skip
    consumer = make_consumer(client, bootstrap, [topic], f"bench-{uuid.uuid4().hex[:8]}")
    store = FeatureWriter(connection, namespace=namespace, wait_replicas=wait_replicas)
    return StreamProcessor(consumer, store, ledger, max_batch=max_batch)


def _raw_rate(client: str, bootstrap: str, topic: str, n: int, max_batch: int, decode: bool = False) -> float:
    """Records/s of a bare consumer from its first record; with `decode`, it also decodes and
    validates every record (rejects included): the ceiling of a processor that handles records one
    by one in Python."""
    consumer = make_consumer(client, bootstrap, [topic], f"raw-{uuid.uuid4().hex[:8]}")
    seen, started = 0, 0.0
    while seen < n:
        records = consumer.poll(0.5, max_batch)
        if records and not started:
            started = time.perf_counter()
        for record in records if decode else ():
            with contextlib.suppress(EventRejected):
                decode_event(record.value, record.headers)
        seen += len(records)
    rate = n / (time.perf_counter() - started)
    consumer.close()
    return rate


def _processor_rate(processor: StreamProcessor, n: int) -> float:
    started = 0.0
    while processor.stats.consumed < n:
        if processor.process_once() and not started:
            started = time.perf_counter()
    return n / (time.perf_counter() - started)


def _freshness(client: str, bootstrap: str, redis_url: str, topic: str, rate: float, seconds: float) -> np.ndarray:
    namespace = f"fresh-{uuid.uuid4().hex[:6]}"
    processor = _processor(client, bootstrap, redis_url, topic, namespace)
    stop = threading.Event()
    worker = threading.Thread(target=processor.run, args=(stop,), daemon=True)
    worker.start()
    time.sleep(4.0)  # let the group join before the clock starts
    producer = make_producer(client, bootstrap)
    connection = redis.Redis.from_url(redis_url)
    latencies = []
    interval = 1.0 / rate
    started = time.perf_counter()
    i = 0
    while time.perf_counter() - started < seconds:
        user = f"fresh-{i}"
        event = records_pb2.UserEvent(event_id=str(i), user_id=user, type="play", item_id="t", event_time_ms=i + 1)
        sent_at = time.perf_counter()
        producer.send(topic, event.SerializeToString(), key=user.encode())
        if i % 25 == 0:  # sample: wait until this event's counter is visible
            producer.flush()
            while not connection.hexists(keys.user_features(namespace, user), "events.play.count"):
                time.sleep(0.0005)
            latencies.append(time.perf_counter() - sent_at)
        i += 1
        time.sleep(max(0.0, started + i * interval - time.perf_counter()))
    stop.set()
    worker.join(10)
    processor.close()
    producer.close()
    return np.array(latencies)


def _feature_bytes(redis_url: str, namespace: str, users: list[str]) -> float:
    """Mean bytes Redis holds per user's feature hash (`MEMORY USAGE`, every field sampled)."""
    connection = redis.Redis.from_url(redis_url)
    sizes = [connection.memory_usage(keys.user_features(namespace, user), samples=0) or 0 for user in users]
    return float(np.mean(sizes))


def _read_latency(redis_url: str, namespace: str, users: list[str], reps: int = 300) -> dict[str, float]:
    store = FeatureStore(connect(redis_url), namespace=namespace)
    out = {}
    for label, batch in (("1_user", users[:1]), ("100_users", users[:100])):
        times = np.empty(reps)
        for r in range(reps):
            t = time.perf_counter()
            store.read_many(batch)
            times[r] = time.perf_counter() - t
        out[f"{label}_p50_ms"] = float(np.percentile(times, 50) * 1e3)
        out[f"{label}_p99_ms"] = float(np.percentile(times, 99) * 1e3)
    return out


def _ranking_reads(redis_url: str, reps: int = 200) -> dict[str, float]:
    """What the home ranker pays to read a user for a 20 × 20 request: the whole hash
    (`read(...).for_ranking`) against only the candidates' fields (`read_for_ranking`), for a user
    whose history is just those cards and for one with 5,000 other cards too."""
    from tastemaker.features.events import EVENT_TYPES
    from tastemaker.features.folding import Provenance
    from tastemaker.v1 import records_pb2

    store = FeatureStore(redis.Redis.from_url(redis_url), namespace=f"bench-rank-{uuid.uuid4().hex[:6]}")
    types = tuple(sorted(EVENT_TYPES))
    shelves = [f"shelf-{s}" for s in range(20)]
    cards = [f"s{s}-card-{c}" for s in range(20) for c in range(20)]
    out = {}
    for others in (0, 5000):
        user = f"history-{others}"
        events = [
            records_pb2.UserEvent(
                event_id=f"{user}-{i}", user_id=user, type="card_click", event_time_ms=1_700_000_000_000 + i,
                shelf_id=shelves[i % 20], item_id=cards[i] if i < len(cards) else f"old-card-{i}",
            )
            for i in range(len(cards) + others)
        ]  # fmt: skip
        FeatureWriter(store._redis, namespace=store._namespace).apply(
            [(e, Provenance("bench", 0, i)) for i, e in enumerate(events)]
        )
        for label, read in (
            ("whole_hash", lambda u=user: store.read(u).for_ranking(types, shelves, cards)),
            ("candidates_only", lambda u=user: store.read_for_ranking(u, types, shelves, cards)),
        ):
            read()
            times = np.empty(reps)
            for r in range(reps):
                t = time.perf_counter()
                read()
                times[r] = time.perf_counter() - t
            out[f"{others}_other_cards_{label}_p50_ms"] = float(np.percentile(times, 50) * 1e3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--freshness-seconds", type=float, default=5.0)
    parser.add_argument(
        "--max-batch", type=int, default=2000, help="records per poll, for the processor and the raw consumer alike"
    )
    parser.add_argument(
        "--json", type=Path, metavar="OUT", help="also write the measured rates as JSON (for capacity.py)"
    )
    args = parser.parse_args()
    result: dict[str, object] = {"events": args.events, "max_batch": args.max_batch}
    with EmbeddedStack() as stack:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        ensure_topics(stack.kafka_bootstrap, [topic, f"{topic}.dlq", f"{topic}.fresh"])
        producer = make_producer("confluent", stack.kafka_bootstrap)
        expected = produce_stream(producer, topic, args.events, malformed_share=0.01, seed=1)
        producer.close()
        sample = read_topic_to_end(stack.kafka_bootstrap, topic, timeout_s=30)[:5000]
        result["event_bytes"] = float(np.mean([len(r.value) for r in sample]))
        for client in KAFKA_CLIENTS:
            raw = _raw_rate(client, stack.kafka_bootstrap, topic, args.events, args.max_batch)
            ceiling = _raw_rate(client, stack.kafka_bootstrap, topic, args.events, args.max_batch, decode=True)
            namespace = f"bench-{client}"
            processor = _processor(client, stack.kafka_bootstrap, stack.redis_url, topic, namespace, args.max_batch)
            processed = _processor_rate(processor, args.events)
            round_trips = processor._store.round_trips / max(1, processor.stats.batches)
            processor.close()
            fresh = _freshness(
                client, stack.kafka_bootstrap, stack.redis_url, f"{topic}.fresh", processed / 2, args.freshness_seconds
            )
            result[client] = {
                "raw_consume_per_s": raw,
                "raw_and_decode_per_s": ceiling,
                "processor_events_per_s": processed,
                "ratio_to_raw": processed / raw,
                "ceiling_ratio_to_raw": ceiling / raw,
                "redis_round_trips_per_batch": round_trips,
                "freshness_at_half_rate_p50_ms": float(np.percentile(fresh, 50) * 1e3),
                "freshness_at_half_rate_p99_ms": float(np.percentile(fresh, 99) * 1e3),
                "feature_read": _read_latency(stack.redis_url, namespace, sorted(expected.users)),
                "feature_bytes_per_user": _feature_bytes(stack.redis_url, namespace, sorted(expected.users)),
            }
        result["ranking_read_20x20"] = _ranking_reads(stack.redis_url)
        result["redis_cluster"] = _cluster_rows(stack.kafka_bootstrap, topic, args.events, args.max_batch, expected)
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    print(f"\nstream processor vs raw consumption, {args.events:,} events, same run (target ≥ 0.5× raw):")
    header = f"{'client':<16}{'raw/s':>10}{'raw+decode/s':>14}{'processor/s':>13}"
    print(f"{header}{'processor × raw':>17}{'ceiling × raw':>15}")
    for client in KAFKA_CLIENTS:
        row = result[client]
        print(
            f"{client:<16}{row['raw_consume_per_s']:>10,.0f}{row['raw_and_decode_per_s']:>14,.0f}"  # type: ignore[index]
            f"{row['processor_events_per_s']:>13,.0f}{row['ratio_to_raw']:>16.2f}×{row['ceiling_ratio_to_raw']:>14.2f}×"  # type: ignore[index]
        )
    single = result["confluent"]
    print(f"\nstream processor (confluent-kafka), {args.events:,} events, same run:")
    print(f"{'redis':<28}{'events/s':>10}{'× one Redis':>13}{'read 1 user p50 ms':>20}")
    rows = {"one Redis": (single["processor_events_per_s"], single["feature_read"]["1_user_p50_ms"])}  # type: ignore[index]
    for name, row in result["redis_cluster"].items():  # type: ignore[union-attr]
        rows[name] = (row["processor_events_per_s"], row["feature_read"]["1_user_p50_ms"])
    base = rows["one Redis"][0]
    for name, (rate, read) in rows.items():
        print(f"{name:<28}{rate:>10.0f}{rate / base:>12.2f}×{read:>20.2f}")


def _cluster_rows(bootstrap: str, topic: str, n: int, max_batch: int, expected: object) -> dict[str, object]:
    """The same processor and reads on a 6-node Redis Cluster (3 masters, 3 replicas, loopback),
    without and with the replication fence."""
    import tempfile
    from pathlib import Path

    from tests.support.redis_cluster import LocalCluster

    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="bench-cluster-"))).start()
    out: dict[str, object] = {}
    try:
        client = "confluent"
        for name, replicas in (("cluster (3 masters)", 0), ("cluster + WAIT 1 replica", 1)):
            namespace = f"bench-cluster-{replicas}"
            processor = _processor(client, bootstrap, cluster.url, topic, namespace, max_batch, replicas)
            rate = _processor_rate(processor, n)
            processor.close()
            users = sorted(expected.users)  # type: ignore[attr-defined]
            out[name] = {"processor_events_per_s": rate, "feature_read": _read_latency(cluster.url, namespace, users)}
    finally:
        cluster.stop()
    return out


if __name__ == "__main__":
    main()
