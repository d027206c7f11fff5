"""The live interaction store: events recorded through the API, durable before the call returns.

SQLite in WAL mode with ``synchronous=FULL``: each ``append`` is one transaction, fsynced on
commit, so a recorded event survives a crash or a restart. The server keeps recent events here
between builds; ``tastebud build`` reads them back (``since`` a build's high-water mark) so the
next index includes them. One connection per store, guarded by a lock: calls come from the
server's worker threads.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from tastebud.errors import InvalidInputError
from tastebud.ingest.model import Dataset, LoadReport, sorted_interaction_log

STORE_NAME = "interactions.sqlite"
"""The store's file name inside an index root, where build and serve both look by default."""

FORGOTTEN_FILE = "forgotten-users.json"
"""Beside the versions in an index root: the salted hashes of forgotten users (never an id), so
a build that cannot see the store (another host, Kubernetes) still leaves them out."""

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
CREATE TABLE IF NOT EXISTS subscriptions (
    user_id    TEXT PRIMARY KEY,
    subscribed INTEGER NOT NULL,
    updated    REAL NOT NULL
);
-- Users who were forgotten, as salted hashes (never the id itself), so that a rebuild from
-- input files that still name them leaves them out.
CREATE TABLE IF NOT EXISTS forgotten (
    user_hash    TEXT PRIMARY KEY,
    forgotten_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

IMPRESSION = "impression"
"""The event kind of "this item was shown to the user": stored, never part of a history."""


@dataclass(frozen=True, slots=True)
class ForgetCounts:
    interactions: int
    impressions: int
    subscription: bool


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
        # Deleted rows are overwritten with zeros, not just unlinked: forgetting is for real.
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(_SCHEMA)
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
            if row is None:
                self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('salt', ?)", (secrets.token_hex(16),))
                row = self._db.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
            self._salt = row[0]

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

    def history(self, user_id: str, since_seq: int = 0, impressions: bool = False) -> list[StoredInteraction]:
        """The user's events with seq > since_seq, in recording order (impressions only if asked)."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT user_id, item_id, timestamp, event, weight, seq FROM interactions "
                "WHERE user_id = ? AND seq > ? AND (? OR event != ?) ORDER BY seq",
                (user_id, since_seq, impressions, IMPRESSION))
            return [StoredInteraction(*row) for row in cursor.fetchall()]

    def all_since(self, since_seq: int = 0) -> list[StoredInteraction]:
        """Every event but impressions with seq > since_seq, in recording order (what a rebuild reads)."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT user_id, item_id, timestamp, event, weight, seq FROM interactions "
                "WHERE seq > ? AND event != ? ORDER BY seq", (since_seq, IMPRESSION))
            return [StoredInteraction(*row) for row in cursor.fetchall()]

    def users_since(self, since_seq: int = 0) -> set[str]:
        """Users with events (not just impressions) after since_seq."""
        with self._lock:
            cursor = self._db.execute("SELECT DISTINCT user_id FROM interactions WHERE seq > ? AND event != ?",
                                      (since_seq, IMPRESSION))
            return {row[0] for row in cursor.fetchall()}

    def shown_since(self, user_id: str, timestamp: float) -> list[str]:
        """Item ids shown to the user (impressions) at or after ``timestamp``."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT DISTINCT item_id FROM interactions WHERE user_id = ? AND event = ? AND timestamp >= ?",
                (user_id, IMPRESSION, timestamp))
            return [row[0] for row in cursor.fetchall()]

    def set_subscription(self, user_id: str, subscribed: bool) -> None:
        with self._lock:
            self._db.execute("INSERT INTO subscriptions (user_id, subscribed, updated) VALUES (?, ?, ?) "
                             "ON CONFLICT (user_id) DO UPDATE SET subscribed = excluded.subscribed, "
                             "updated = excluded.updated", (user_id, int(subscribed), time.time()))

    def subscription(self, user_id: str) -> bool | None:
        """The user's choice, or None when they never made one."""
        with self._lock:
            row = self._db.execute("SELECT subscribed FROM subscriptions WHERE user_id = ?", (user_id,)).fetchone()
        return None if row is None else bool(row[0])

    def high_water(self) -> int:
        """The largest seq stored so far (0 when empty)."""
        with self._lock:
            (value,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM interactions").fetchone()
        return int(value)

    def forget(self, user_id: str, remember_hash: bool = True) -> ForgetCounts:
        """Delete every event, impression and subscription of a user, leave a salted hash so a
        rebuild leaves them out, then rewrite the file and empty the WAL so that no page of
        the database or its write-ahead log still holds their rows."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (impressions,) = self._db.execute("SELECT COUNT(*) FROM interactions WHERE user_id = ? AND event = ?",
                                                  (user_id, IMPRESSION)).fetchone()
                removed = self._db.execute("DELETE FROM interactions WHERE user_id = ?", (user_id,)).rowcount
                subscription = self._db.execute("DELETE FROM subscriptions WHERE user_id = ?", (user_id,)).rowcount
                if remember_hash:
                    self._db.execute("INSERT OR REPLACE INTO forgotten (user_hash, forgotten_at) VALUES (?, ?)",
                                     (salted_hash(self._salt, user_id), time.time()))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return ForgetCounts(removed - impressions, impressions, subscription > 0)

    def forgotten_filter(self) -> "ForgottenUsers":
        with self._lock:
            hashes = {row[0] for row in self._db.execute("SELECT user_hash FROM forgotten")}
        return ForgottenUsers(self._salt, frozenset(hashes))


@dataclass(frozen=True, slots=True)
class ForgottenUsers:
    """Tells whether a user id was forgotten, from the salted hashes alone."""

    salt: str
    hashes: frozenset[str]

    def __contains__(self, user_id: str) -> bool:
        return salted_hash(self.salt, user_id) in self.hashes

    def to_json(self) -> str:
        return json.dumps({"salt": self.salt, "hashes": sorted(self.hashes)}, indent=1) + "\n"

    @classmethod
    def read(cls, path: Path) -> "ForgottenUsers":
        """The file ``to_json`` wrote; a malformed one is an error naming it (forgetting must not fail open)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(str(data["salt"]), frozenset(str(h) for h in data["hashes"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"{path}: unreadable list of forgotten users ({exc})") from exc


def salted_hash(salt: str, user_id: str) -> str:
    return hashlib.sha256(f"{salt}\0{user_id}".encode()).hexdigest()


def without_users(dataset: Dataset, forgotten: ForgottenUsers) -> Dataset:
    """``dataset`` minus every interaction of a forgotten user (input files may still name them)."""
    if not forgotten.hashes:
        return dataset
    log_ = dataset.interactions
    users = np.unique(log_.user_ids)
    gone = [u for u in users.tolist() if u in forgotten]
    if not gone:
        return dataset
    keep = ~np.isin(log_.user_ids, gone)
    interactions = sorted_interaction_log(log_.user_ids[keep], log_.item_ids[keep], log_.timestamps[keep],
                                          log_.weights[keep], log_.events[keep], log_.ratings[keep])
    skipped = dict(dataset.report.skipped)
    skipped["interaction of a forgotten user"] = int((~keep).sum())
    return Dataset(dataset.catalog, interactions,
                   LoadReport(dataset.report.items_read, dataset.report.interactions_read, skipped))


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
