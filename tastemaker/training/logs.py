"""Rewarded-decision logs: read from `tastemaker.rewarded` or from a JSON-lines export, and write
the export (one `RewardedDecision` per line, in the protobuf JSON mapping)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from google.protobuf import json_format

from tastemaker.messaging.codec import decode
from tastemaker.messaging.kafka_python import read_topic_to_end
from tastemaker.v1 import records_pb2


class LogFormatError(ValueError):
    pass


def read_jsonl(path: Path) -> list[records_pb2.RewardedDecision]:
    out = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                out.append(json_format.Parse(line, records_pb2.RewardedDecision()))
            except json_format.ParseError as exc:
                raise LogFormatError(f"{path}:{number}: not a RewardedDecision: {exc}") from exc
    return out


def write_jsonl(decisions: Iterable[records_pb2.RewardedDecision], path: Path) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for decision in decisions:
            out.write(json_format.MessageToJson(decision, indent=None) + "\n")
            count += 1
    return count


def read_topic(bootstrap_servers: str, topic: str) -> list[records_pb2.RewardedDecision]:
    return [
        decode(record.value, record.headers, records_pb2.RewardedDecision())
        for record in read_topic_to_end(bootstrap_servers, topic)
    ]
