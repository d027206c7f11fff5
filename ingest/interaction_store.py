"""The live interaction store: events recorded through the API, durable before the call returns.

SQLite in WAL mode with ``synchronous=FULL``: each ``append`` is one transaction, fsynced on
commit, so a recorded event survives a crash or a restart. The server keeps recent events here
between builds; ``tastebud build`` reads them back (``since`` a build's high-water mark) so the
next index includes them. One connection per store, guarded by a lock: calls come from the
server's worker threads.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from tastebud.ingest.model import Dataset, LoadReport, sorted_interaction_log

STORE_NAME = "interactions.sqlite"
"""The store's file name inside an index root, where build and serve both look by default."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS interactions (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id   TEXT NOT NULL,
    item_id   TEXT NOT NULL,
    timestamp REAL NOT NULL,
    event     TEXT NOT NULL DEFAULT '',
    weight    REAL NOT NULL DEFAULT 1.0
);
CREATE INDEX IF NOT EXISTS interactions_by_user ON interactions (user_id, seq);
"""


@dataclass(frozen=True, slots=True)
class StoredInteraction:
    """One recorded event; ``seq`` orders events across the whole store."""

    user_id: str
    item_id: str
    timestamp: float
    event: str = ""
    weight: float = 1.0
    seq: int = 0


class InteractionStore:
    """Append-only event log with per-user reads and deletion (forgetting a user)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append(self, rows: Iterable[StoredInteraction]) -> int:
        """Store every row in one transaction; durable when this returns. Returns the count."""
        values = [(r.user_id, r.item_id, float(r.timestamp), r.event, float(r.weight)) for r in rows]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO interactions (user_id, item_id, timestamp, event, weight) VALUES (?, ?, ?, ?, ?)",
                    values)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(values)

    def history(self, user_id: str, since_seq: int = 0) -> list[StoredInteraction]:
        """The user's events with seq > since_seq, in recording order."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT user_id, item_id, timestamp, event, weight, seq FROM interactions "
                "WHERE user_id = ? AND seq > ? ORDER BY seq", (user_id, since_seq))
            return [StoredInteraction(*row) for row in cursor.fetchall()]

    def all_since(self, since_seq: int = 0) -> list[StoredInteraction]:
        """Every event with seq > since_seq, in recording order (what a rebuild reads)."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT user_id, item_id, timestamp, event, weight, seq FROM interactions "
                "WHERE seq > ? ORDER BY seq", (since_seq,))
            return [StoredInteraction(*row) for row in cursor.fetchall()]

    def users_since(self, since_seq: int = 0) -> set[str]:
        """Users with events after since_seq."""
        with self._lock:
            cursor = self._db.execute("SELECT DISTINCT user_id FROM interactions WHERE seq > ?", (since_seq,))
            return {row[0] for row in cursor.fetchall()}

    def high_water(self) -> int:
        """The largest seq stored so far (0 when empty)."""
        with self._lock:
            (value,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM interactions").fetchone()
        return int(value)

    def forget(self, user_id: str) -> int:
        """Delete every event of a user; returns how many were deleted."""
        with self._lock:
            cursor = self._db.execute("DELETE FROM interactions WHERE user_id = ?", (user_id,))
            return cursor.rowcount


def with_recorded(dataset: Dataset, rows: Sequence[StoredInteraction]) -> Dataset:
    """``dataset`` plus recorded events whose items are in its catalog (others counted as skipped)."""
    known = set(dataset.catalog.item_ids)
    kept = [r for r in rows if r.item_id in known]
    skipped = dict(dataset.report.skipped)
    if len(kept) < len(rows):
        skipped["recorded event for an item not in the catalog"] = len(rows) - len(kept)
    if not kept:
        return Dataset(dataset.catalog, dataset.interactions, LoadReport(
            dataset.report.items_read, dataset.report.interactions_read, skipped))
    log_ = dataset.interactions
    interactions = sorted_interaction_log(
        np.concatenate([log_.user_ids, np.array([r.user_id for r in kept], dtype=np.str_)]),
        np.concatenate([log_.item_ids, np.array([r.item_id for r in kept], dtype=np.str_)]),
        np.concatenate([log_.timestamps, np.array([r.timestamp for r in kept], dtype=np.float64)]),
        np.concatenate([log_.weights, np.array([r.weight for r in kept], dtype=np.float32)]),
        np.concatenate([log_.events, np.array([r.event for r in kept], dtype=np.str_)]),
        np.concatenate([log_.ratings, np.full(len(kept), np.nan, dtype=np.float32)]),
    )
    report = LoadReport(dataset.report.items_read, dataset.report.interactions_read + len(kept), skipped)
    return Dataset(dataset.catalog, interactions, report)
