"""Histories as the server sees them: the index's build-time histories plus events recorded since.

Recorded events are written to the ``InteractionStore`` first (durable), then added here, so
the very next Recommend sees them. At start-up the store's events newer than the index's
high-water mark are replayed, so a restart loses nothing and nothing counts twice.
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from tastebud.index.histories import History, UserHistories
from tastebud.index.items import ItemStore
from tastebud.ingest.interaction_store import IMPRESSION, InteractionStore, StoredInteraction


class LiveHistories:
    """Thread-safe view of every user's history, build-time and live."""

    def __init__(self, base: UserHistories, items: ItemStore, store: InteractionStore | None,
                 since_seq: int = 0) -> None:
        self._base = base
        self._items = items
        self._store = store
        self._lock = threading.Lock()
        self._recent: dict[str, list[tuple[int, float, float]]] = {}
        if store is not None:
            self._add(store.all_since(since_seq))

    def _add(self, rows: Sequence[StoredInteraction]) -> None:
        with self._lock:
            for r in rows:
                if r.event == IMPRESSION:  # shown, not watched: never part of a history
                    continue
                row = self._items.row_of(r.item_id)
                if row is not None:  # events for items no longer in the catalog are kept in the store only
                    self._recent.setdefault(r.user_id, []).append((row, r.timestamp, r.weight))

    def record(self, rows: Sequence[StoredInteraction]) -> int:
        """Durably store, then expose, new events (all item ids already validated)."""
        count = self._store.append(rows) if self._store is not None else len(rows)
        self._add(rows)
        return count

    @property
    def store(self) -> InteractionStore | None:
        return self._store

    def known(self, user_id: str) -> bool:
        with self._lock:
            return user_id in self._recent or len(self._base.get(user_id)) > 0

    def user_ids(self) -> list[str]:
        """Build-time users in their order, then users first seen since, in order of arrival."""
        with self._lock:
            recent = list(self._recent)
        base = self._base.user_ids
        known = set(base)
        return base + [u for u in recent if u not in known]

    def forget(self, user_id: str) -> int:
        """Drop the user's history here (build-time and live); returns how many items it held."""
        with self._lock:
            held = len(self._base.get(user_id)) + len(self._recent.pop(user_id, ()))
            self._base = self._base.without(user_id)
        return held

    def get(self, user_id: str) -> History:
        base = self._base.get(user_id)
        with self._lock:
            recent = list(self._recent.get(user_id, ()))
        if not recent:
            return base
        items, ts, w = zip(*recent)
        live = History(np.array(items, np.int64), np.array(ts, np.float64), np.array(w, np.float32))
        return base.extended(live)
