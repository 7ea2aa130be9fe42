"""Operational status of the stream processors: what each publishes to Redis (the group's lag is
`tastemaker.messaging.group_lag`)."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from tastemaker.features import keys


def processor_statuses(client: redis.Redis, namespace: str) -> dict[str, dict[str, Any]]:
    now_ms = int(time.time() * 1000)
    out = {}
    for name, raw in client.hgetall(keys.processor_status(namespace)).items():
        status = json.loads(raw)
        status["age_s"] = (now_ms - status.get("updated_at_ms", now_ms)) / 1000.0
        out[keys.text(name)] = status
    return out
