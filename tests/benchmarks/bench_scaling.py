"""Scaling out the stream workers: 1 and 2 `tastemaker features run` processes (and `tastemaker
learner run` processes) in one consumer group, on a topic of 4 partitions, on the embedded broker
and Redis. The group is joined before the records are produced (replayed from memory by one
confluent-kafka producer), and the clock runs from the first record produced to the last offset
committed; events/s of the group, and per process.

On this 2-core machine the processes share the cores with the broker, Redis and the producer: a
second process can add at most what the cores left idle by the first allow. (`serve --workers 2`
for RankHome: `bench_rank_home`'s worker rows.)

    python -m tests.benchmarks.bench_scaling [--events 100000] [--decisions 40000] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from tastemaker.features.topics import Topics
from tastemaker.messaging import group_lag, make_producer
from tastemaker.messaging.codec import PROTOBUF_HEADERS
from tastemaker.messaging.kafka_python import ensure_topics
from tastemaker.services.embedded import EmbeddedStack
from tests.support.event_stream import produce_stream
from tests.support.rewarded import random_rewarded

PARTITIONS = 4


class _Recorder:
    """A producer that only remembers what it was asked to send (to replay it at full speed)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, dict[str, bytes]]] = []

    def send(self, topic: str, value: bytes, key: bytes | None = None, headers: dict[str, bytes] | None = None) -> None:
        self.sent.append((topic, value, key, headers or {}))

    def flush(self, timeout_s: float = 0.0) -> None:
        pass


def _events(n: int) -> list[tuple[bytes, bytes | None, dict[str, bytes]]]:
    recorder = _Recorder()
    produce_stream(recorder, "events", n, malformed_share=0.01, seed=1)  # type: ignore[arg-type]
    return [(value, key, headers) for _, value, key, headers in recorder.sent]


def _decisions(n: int) -> list[tuple[bytes, bytes | None, dict[str, bytes]]]:
    rng = np.random.default_rng(0)
    return [(random_rewarded(i, rng).SerializeToString(), str(i).encode(), PROTOBUF_HEADERS) for i in range(n)]


def _run_group(
    stack: EmbeddedStack, command: list[str], role: str, topic_of: str, records: list, processes: int, logs: Path
) -> float:
    """Group events/s of `processes` copies of `command` over `records`."""
    prefix = f"scale-{uuid.uuid4().hex[:8]}"
    topics = Topics(prefix)
    ensure_topics(stack.kafka_bootstrap, [getattr(topics, topic_of)], partitions=PARTITIONS)
    env = {
        **os.environ,
        "TASTEMAKER_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "TASTEMAKER_REDIS_URL": stack.redis_url,
        "TASTEMAKER_TOPIC_PREFIX": prefix,
        "TASTEMAKER_REDIS_NAMESPACE": prefix,
        "TASTEMAKER_KAFKA_CLIENT": "confluent",
        "TASTEMAKER_LOG_LEVEL": "INFO",
    }
    children = []
    for i in range(processes):
        log = (logs / f"{prefix}-{i}.log").open("ab")
        children.append(
            subprocess.Popen([sys.executable, "-m", "tastemaker.cli", *command], env=env, stdout=log, stderr=log)
        )
    group = topics.consumer_group(role)
    topic = getattr(topics, topic_of)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            started = sum("started" in (logs / f"{prefix}-{i}.log").read_text() for i in range(processes))
            if started == processes:
                break
            time.sleep(0.2)
        time.sleep(8.0)  # the group settles: every member has its partitions before the clock starts
        producer = make_producer("confluent", stack.kafka_bootstrap)
        start = time.perf_counter()
        for value, key, headers in records:
            producer.send(topic, value, key=key, headers=headers)
        producer.flush()
        while sum(group_lag(stack.kafka_bootstrap, group, topic)["committed"].values()) < len(records):
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        producer.close()
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait(60)
    return len(records) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=40_000)
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the rates as JSON")
    args = parser.parse_args()
    workloads = {
        "stream processors": (["features", "run"], "features", "events", _events(args.events)),
        "learners": (["learner", "run"], "learner", "rewarded", _decisions(args.decisions)),
    }
    result: dict[str, dict[str, float]] = {}
    with EmbeddedStack() as stack, tempfile.TemporaryDirectory() as tmp:
        for name, (command, role, topic_of, records) in workloads.items():
            result[name] = {}
            for processes in (1, 2):
                rate = _run_group(stack, command, role, topic_of, records, processes, Path(tmp))
                result[name][str(processes)] = rate
    print(f"\nScaling out in one consumer group ({PARTITIONS} partitions, confluent-kafka, {os.cpu_count()} cores "
          "shared with the broker, Redis and the producer)")  # fmt: skip
    print(f"{'workers':<20}{'processes':>10}{'group/s':>12}{'per process/s':>15}{'× one':>8}")
    for name, rates in result.items():
        for processes, rate in rates.items():
            print(f"{name:<20}{processes:>10}{rate:>12,.0f}{rate / int(processes):>15,.0f}{rate / rates['1']:>7.2f}×")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
