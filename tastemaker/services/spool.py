"""A crash-safe, bounded, on-disk queue of records for the publisher (`TASTEMAKER_SPOOL_PATH`):
SQLite in WAL mode, one row per record, appended before `publish` returns (a process killed right
after answering still has the record), read in order, deleted once the broker acknowledged it.
While Kafka is down the spool fills instead of memory; a restarted process sends what the last one
left. When it holds `max_records`, new records are refused and counted (the service keeps serving).

A record acknowledged by the broker but not yet deleted when the process dies is sent again by the
next one; downstream keeps one per decision id (the joiner) and per outcome id."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SpooledRecord:
    row: int
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


class Spool:
    def __init__(self, path: Path, max_records: int = 1_000_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_records = max_records
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # a commit survives the process being killed (not the machine losing power: that is FULL)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS records (row INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
            "key BLOB, value BLOB NOT NULL, headers TEXT NOT NULL)"
        )
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        (self._count,) = self._db.execute("SELECT COUNT(*) FROM records").fetchone()
        self._taken = 0  # the last row handed to the sender

    def __len__(self) -> int:
        return int(self._count)

    def append(self, topic: str, value: bytes, key: bytes | None, headers: dict[str, bytes]) -> bool:
        """Store a record durably; False when the spool is full."""
        encoded = json.dumps({k: v.hex() for k, v in headers.items()})
        with self._ready:
            if self._count >= self.max_records:
                return False
            self._db.execute(
                "INSERT INTO records (topic, key, value, headers) VALUES (?, ?, ?, ?)", (topic, key, value, encoded)
            )
            self._count += 1
            self._ready.notify()
        return True

    def take(self, limit: int, timeout_s: float) -> list[SpooledRecord]:
        """Up to `limit` records after the last taken, in order; waits up to `timeout_s` for one."""
        with self._ready:
            rows = self._select(limit)
            if not rows:
                self._ready.wait(timeout_s)
                rows = self._select(limit)
            if rows:
                self._taken = rows[-1][0]
        return [
            SpooledRecord(row, topic, key, value, {k: bytes.fromhex(v) for k, v in json.loads(headers).items()})
            for row, topic, key, value, headers in rows
        ]

    def _select(self, limit: int) -> list[tuple[int, str, bytes | None, bytes, str]]:
        cursor = self._db.execute(
            "SELECT row, topic, key, value, headers FROM records WHERE row > ? ORDER BY row LIMIT ?",
            (self._taken, limit),
        )
        return list(cursor.fetchall())

    def done(self, through_row: int) -> None:
        """The broker has every record up to `through_row`: forget them."""
        with self._lock:
            deleted = self._db.execute("DELETE FROM records WHERE row <= ?", (through_row,)).rowcount
            self._count -= deleted

    def wake(self) -> None:
        with self._ready:
            self._ready.notify_all()

    def close(self) -> None:
        with self._lock:
            self._db.close()
