"""Rewarded-decision logs: read from `tastemaker.rewarded` or from an export, and write the export:
JSON lines (one `RewardedDecision` per line, in the protobuf JSON mapping) or Parquet (one row
per decision: readable columns for analysis, and `record`, the serialised `RewardedDecision`,
from which evaluation re-reads everything exactly)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from tastemaker.messaging import read_topic_to_end
from tastemaker.messaging.codec import decode
from tastemaker.messaging.security import KafkaSecurity
from tastemaker.records.layout import LayoutError, unpack
from tastemaker.v1 import records_pb2


class LogFormatError(ValueError):
    pass


def compact_rows(rewarded: records_pb2.RewardedDecision) -> records_pb2.RewardedDecision:
    """The decision written out (a packed one unpacked, `records.layout`), with its
    shown shelves at rows 0, 1, 2, ... in their logged order (in place).

    Logs written before rows were compacted can hold a pinned shelf at a row past the page's last
    (a pin at row 501 of an 8-row page, shown at row 7); every offline job indexes rows by
    position, so each reader maps them to the rows actually shown, pins included. Kept although
    today's serving never writes such rows: exports of earlier versions stay readable, and a log
    already in order costs one list comparison."""
    try:
        unpack(rewarded.decision)
    except LayoutError as exc:
        raise LogFormatError(str(exc)) from exc
    decision = rewarded.decision
    positions = [shelf.position for shelf in decision.shown]
    if positions == list(range(len(positions))):
        return rewarded
    row_of = {p: row for row, p in enumerate(sorted(positions))}
    shown = sorted(decision.shown, key=lambda shelf: shelf.position)
    copies = [records_pb2.LoggedShelf() for _ in shown]
    for copy, shelf in zip(copies, shown, strict=True):
        copy.CopyFrom(shelf)
        copy.position = row_of[shelf.position]
    decision.ClearField("shown")
    decision.shown.extend(copies)
    shown_at = {shelf.shelf_id: shelf.position for shelf in decision.shown}
    pins = [(shown_at[p.shelf_id], p.shelf_id) for p in decision.pinned_shelves if p.shelf_id in shown_at]
    decision.ClearField("pinned_shelves")
    for row, shelf_id in pins:
        decision.pinned_shelves.add(shelf_id=shelf_id, position=row)
    return rewarded


def read_jsonl(path: Path) -> list[records_pb2.RewardedDecision]:
    out = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                out.append(compact_rows(json_format.Parse(line, records_pb2.RewardedDecision())))
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


def write_parquet(decisions: Iterable[records_pb2.RewardedDecision], path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(decisions)
    columns = {
        "decision_id": [r.decision.decision_id for r in rows],
        "user_id": [r.decision.user_id for r in rows],
        "surface": [r.decision.surface for r in rows],
        "served_at_ms": pa.array([r.decision.served_at_ms for r in rows], pa.int64()),
        "policy": [r.decision.policy for r in rows],
        "model_version": [r.decision.model_version for r in rows],
        "epsilon": pa.array([r.decision.exploration.epsilon for r in rows], pa.float64()),
        "reward": pa.array([r.reward for r in rows], pa.float64()),
        "defaulted": pa.array([r.defaulted for r in rows], pa.bool_()),
        "n_outcomes": pa.array([len(r.outcomes) for r in rows], pa.int32()),
        "n_shown": pa.array([len(r.decision.shown) for r in rows], pa.int32()),
        "ranking_propensity": pa.array([r.decision.ranking_propensity for r in rows], pa.float64()),
        "record": pa.array([r.SerializeToString() for r in rows], pa.binary()),
    }
    pq.write_table(pa.table(columns), path, compression="zstd")
    return len(rows)


def is_rewarded_parquet(path: Path) -> bool:
    import pyarrow.parquet as pq

    try:
        return "record" in pq.read_schema(path).names
    except Exception:  # not Parquet at all: the caller's reader says so
        return False


def read_parquet(path: Path) -> list[records_pb2.RewardedDecision]:
    import pyarrow.parquet as pq

    try:
        records = pq.read_table(path, columns=["record"]).column("record").to_pylist()
    except Exception as exc:
        raise LogFormatError(f"{path}: not a Parquet export of rewarded decisions ({exc})") from exc
    out = []
    for number, raw in enumerate(records, 1):
        if not raw:
            raise LogFormatError(f"{path}: row {number} has an empty `record`")
        message = records_pb2.RewardedDecision()
        try:
            message.ParseFromString(raw)
        except DecodeError as exc:
            raise LogFormatError(f"{path}: row {number}: `record` is not a RewardedDecision ({exc})") from exc
        out.append(compact_rows(message))
    return out


def read_export(path: Path) -> list[records_pb2.RewardedDecision]:
    """A JSON-lines or Parquet export, by its suffix."""
    return read_parquet(path) if path.suffix == ".parquet" else read_jsonl(path)


def write_export(decisions: Iterable[records_pb2.RewardedDecision], path: Path) -> int:
    return write_parquet(decisions, path) if path.suffix == ".parquet" else write_jsonl(decisions, path)


def read_topic(
    bootstrap_servers: str, topic: str, security: KafkaSecurity | None = None
) -> list[records_pb2.RewardedDecision]:
    return [
        compact_rows(decode(record.value, record.headers, records_pb2.RewardedDecision()))
        for record in read_topic_to_end(bootstrap_servers, topic, security=security)
    ]
