"""Readers for logs people bring: the Open Bandit Dataset's CSV as shipped, and the generic
layout below as CSV or Parquet. Bad rows stop the read with the column and the count of bad
rows; nothing is silently dropped.

The generic layout, one row per shown (decision, position):

| column | required | meaning |
|---|---|---|
| `action` | yes | the shown item's id (any string; non-negative integers are used as indices) |
| `reward` | yes | a finite number |
| `propensity` | yes | the logging policy's probability of this action at this position, in (0, 1] |
| `position` | no (0) | 0-based slot |
| `timestamp_ms` | no | event time, for estimates over time |
| `n_actions` | no | how many actions were candidates (for `uniform-random`); default: distinct actions |
| anything else | no | context, handed to entry-point policies as `log.context[name]` |

The Open Bandit Dataset's layout maps `item_id`, `click`, `propensity_score`, `position` (1-based)
and `timestamp` onto the same fields; `item_context.csv` beside the log gives the number of items.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tastemaker.records.log_files import LogFormatError
from tastemaker.training.evaluation.action_log import ActionLog, row_key, row_text

FORMATS = ("obd", "csv", "parquet")


@dataclass(frozen=True)
class Layout:
    action: str
    reward: str
    propensity: str
    position: str
    position_base: int
    timestamp: str
    n_actions: str | None

    @property
    def required(self) -> tuple[str, ...]:
        return (self.action, self.reward, self.propensity) + ((self.position,) if self.position_base else ())


OBD = Layout("item_id", "click", "propensity_score", "position", 1, "timestamp", None)
GENERIC = Layout("action", "reward", "propensity", "position", 0, "timestamp_ms", "n_actions")


def read_columns(path: Path, fmt: str) -> dict[str, list[str]]:
    """Every column of a CSV or Parquet file as strings (the validation below parses them)."""
    if not path.is_file():
        raise LogFormatError(f"{path}: no such file")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise LogFormatError(f"{path}: not a Parquet file ({exc})") from exc
        return {
            name: ["" if v is None else str(v) for v in table.column(name).to_pylist()] for name in table.column_names
        }
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise LogFormatError(f"{path}: empty file, no header")
            columns: dict[str, list[str]] = {name: [] for name in header}
            for row in reader:
                for name, value in zip(header, row, strict=False):
                    columns[name].append(value)
                for name in header[len(row) :]:
                    columns[name].append("")
    except UnicodeDecodeError as exc:
        raise LogFormatError(f"{path}: not a CSV text file") from exc
    return columns


def _numbers(values: list[str]) -> np.ndarray:
    def number(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return float("nan")

    return np.array([number(v) for v in values], dtype=np.float64)


def _is_index(values: np.ndarray) -> np.ndarray:
    return np.isfinite(values) & (values >= 0) & (values == np.round(values))


def to_action_log(columns: dict[str, list[str]], layout: Layout, source: str, n_actions_hint: int = 0) -> ActionLog:
    missing = [c for c in layout.required if c not in columns]
    if missing:
        raise LogFormatError(f"{source}: missing columns {missing} (have {sorted(columns)[:12]})")
    n = len(columns[layout.action])
    if n == 0:
        raise LogFormatError(f"{source}: no rows")
    raw_actions = columns[layout.action]
    action_numbers = _numbers(raw_actions)
    reward = _numbers(columns[layout.reward])
    propensity = _numbers(columns[layout.propensity])
    position_numbers = _numbers(columns[layout.position]) if layout.position in columns else np.zeros(n)
    checks: dict[str, tuple[np.ndarray, str]] = {
        layout.action: (np.array([not v.strip() for v in raw_actions]), "a non-empty id"),
        layout.reward: (~np.isfinite(reward), "a finite number"),
        layout.propensity: (~((propensity > 0) & (propensity <= 1)), "in (0, 1]"),
        layout.position: (
            ~_is_index(position_numbers - layout.position_base),
            f"an integer from {layout.position_base}",
        ),
    }
    if layout.position_base:  # the OBD's item ids are indices
        checks[layout.action] = (~_is_index(action_numbers), "a non-negative integer")
    problems = [
        f"{int(bad.sum())} rows with `{column}` not {rule} (first at data row {int(np.argmax(bad)) + 1})"
        for column, (bad, rule) in checks.items()
        if bad.any()
    ]
    if problems:
        raise LogFormatError(f"{source}: {'; '.join(problems)} — nothing was evaluated")

    if np.all(_is_index(action_numbers)):
        action = action_numbers.astype(int)
        ids = tuple(str(i) for i in range(int(action.max()) + 1))
    else:
        ids = tuple(sorted(set(raw_actions)))
        index = {a: i for i, a in enumerate(ids)}
        action = np.array([index[a] for a in raw_actions], dtype=int)
    n_actions = max(len(ids), n_actions_hint)
    if layout.n_actions and layout.n_actions in columns:
        declared = _numbers(columns[layout.n_actions])
        bad = ~_is_index(declared) | (declared < 1)
        if bad.any():
            raise LogFormatError(
                f"{source}: {int(bad.sum())} rows with `{layout.n_actions}` not a positive integer"
                " — nothing was evaluated"
            )
        n_actions = max(n_actions, int(declared.max()))
    if n_actions > len(ids):
        ids = ids + tuple(f"#{i}" for i in range(len(ids), n_actions))
    timestamp = None
    if layout.timestamp in columns:
        timestamp = _timestamps(columns[layout.timestamp])
    known = {layout.action, layout.reward, layout.propensity, layout.position, layout.timestamp, layout.n_actions}
    context = {name: np.asarray(values) for name, values in columns.items() if name not in known and name}
    position = (position_numbers - layout.position_base).astype(int)
    names = list(columns)
    seen: dict[str, int] = {}
    hashes = np.empty(n, dtype=np.int64)
    for i in range(n):
        text = row_text([columns[c][i] for c in names])
        hashes[i] = row_key(text, seen.get(text, 0))
        seen[text] = seen.get(text, 0) + 1
    return ActionLog(
        action, position, reward, propensity, n_actions, int(position.max()) + 1, ids, timestamp, context, hashes
    )


def _timestamps(values: list[str]) -> np.ndarray | None:
    numbers = _numbers(values)
    if np.all(np.isfinite(numbers)):
        return numbers
    try:
        return np.array([np.datetime64(v.replace("+00:00", ""), "ms").astype(np.int64) for v in values], dtype=float)
    except ValueError:
        return None  # an unreadable time column only loses the over-time plot


def read_action_log(path: Path, fmt: str) -> ActionLog:
    """Read a log in one of FORMATS."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if fmt == "obd":
        hint = 0
        item_context = path.parent / "item_context.csv"
        if item_context.is_file():
            with item_context.open(newline="") as handle:
                hint = sum(1 for _ in csv.DictReader(handle))
        return to_action_log(read_columns(path, "csv"), OBD, str(path), hint)
    return to_action_log(read_columns(path, fmt), GENERIC, str(path))
