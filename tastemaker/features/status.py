"""Operational status of the stream processors: what each publishes, and the group's lag."""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from tastemaker.features import keys
from tastemaker.messaging.security import KafkaSecurity


def processor_statuses(client: redis.Redis, namespace: str) -> dict[str, dict[str, Any]]:
    now_ms = int(time.time() * 1000)
    out = {}
    for name, raw in client.hgetall(keys.processor_status(namespace)).items():
        status = json.loads(raw)
        status["age_s"] = (now_ms - status.get("updated_at_ms", now_ms)) / 1000.0
        out[keys.text(name)] = status
    return out


def group_lag(
    bootstrap_servers: str, group_id: str, topic: str, security: KafkaSecurity | None = None
) -> dict[str, Any]:
    """Per partition: end offset minus the group's committed offset (all of it when nothing is committed).

    Tansu reports a partition's end offset as its last batch's base offset + 1, so against
    Tansu this under-counts lag by up to one batch; Apache Kafka reports the true end."""
    extra = (security or KafkaSecurity()).kafka_python()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="tastemaker-status", **extra)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, client_id="tastemaker-status", **extra)
    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = consumer.end_offsets(tps) if tps else {}
        committed = admin.list_group_offsets({group_id: tps}).get(group_id, {}) if tps else {}
        per_partition, committed_offsets = {}, {}
        for tp in tps:
            done = committed.get(tp)
            offset = done.offset if done is not None and done.offset >= 0 else 0
            committed_offsets[str(tp.partition)] = offset
            per_partition[str(tp.partition)] = max(0, ends[tp] - offset)
        return {"total": sum(per_partition.values()), "partitions": per_partition, "committed": committed_offsets}
    finally:
        consumer.close()
        admin.close()
