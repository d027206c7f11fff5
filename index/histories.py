"""Users' histories at build time, as compressed rows (CSR): one slice of arrays per user.

Rows hold item rows (global ids), timestamps and weights, oldest first. Stored as
``users.parquet`` with one row per user and list columns, so it stays readable by any tool.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from tastebud.errors import IndexIntegrityError


@dataclass(frozen=True, slots=True)
class History:
    """One user's events, oldest first."""

    items: npt.NDArray[np.int64]
    timestamps: npt.NDArray[np.float64]
    weights: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.items)

    @staticmethod
    def empty() -> "History":
        return History(np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.float32))

    def extended(self, other: "History") -> "History":
        """This history followed by ``other``, re-sorted by time (stable: ties keep order)."""
        items = np.concatenate([self.items, other.items])
        ts = np.concatenate([self.timestamps, other.timestamps])
        w = np.concatenate([self.weights, other.weights])
        order = np.argsort(ts, kind="stable")
        return History(items[order], ts[order], w[order])


class UserHistories:
    """Histories of every user known at build time."""

    def __init__(self, user_ids: Sequence[str], offsets: npt.NDArray[np.int64], items: npt.NDArray[np.int64],
                 timestamps: npt.NDArray[np.float64], weights: npt.NDArray[np.float32]) -> None:
        if len(offsets) != len(user_ids) + 1:
            raise IndexIntegrityError("user histories: offsets do not match users")
        self.user_ids = list(user_ids)
        self._offsets = offsets
        self._items = items
        self._timestamps = timestamps
        self._weights = weights
        self._row = {u: i for i, u in enumerate(self.user_ids)}

    def __len__(self) -> int:
        return len(self.user_ids)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._row

    @property
    def n_events(self) -> int:
        return len(self._items)

    def get(self, user_id: str) -> History:
        """The user's history; empty for an unknown user."""
        row = self._row.get(user_id)
        if row is None:
            return History.empty()
        lo, hi = self._offsets[row], self._offsets[row + 1]
        return History(self._items[lo:hi], self._timestamps[lo:hi], self._weights[lo:hi])

    def without(self, user_id: str) -> "UserHistories":
        """These histories minus one user's (forgetting a user)."""
        row = self._row.get(user_id)
        if row is None:
            return self
        lo, hi = self._offsets[row], self._offsets[row + 1]
        keep = np.r_[0:lo, hi:len(self._items)]
        offsets = np.concatenate([self._offsets[:row], self._offsets[row + 1:] - (hi - lo)])
        return UserHistories(self.user_ids[:row] + self.user_ids[row + 1:], offsets.astype(np.int64),
                             self._items[keep], self._timestamps[keep], self._weights[keep])

    @classmethod
    def from_events(cls, user_ids: npt.NDArray[np.str_], items: npt.NDArray[np.int64],
                    timestamps: npt.NDArray[np.float64], weights: npt.NDArray[np.float32]) -> "UserHistories":
        """Group events by user (users sorted, each user's events by time, then item)."""
        order = np.lexsort((items, timestamps, user_ids))
        users_sorted = user_ids[order]
        unique, starts = np.unique(users_sorted, return_index=True)
        offsets = np.append(starts, len(order)).astype(np.int64)
        return cls([str(u) for u in unique], offsets, items[order].astype(np.int64),
                   timestamps[order].astype(np.float64), weights[order].astype(np.float32))

    def write(self, path: Path) -> None:
        o = self._offsets
        splits = lambda a: [a[o[i]:o[i + 1]].tolist() for i in range(len(self.user_ids))]  # noqa: E731
        table = pa.table({
            "user_id": pa.array(self.user_ids, pa.string()),
            "items": pa.array(splits(self._items), pa.list_(pa.int64())),
            "timestamps": pa.array(splits(self._timestamps), pa.list_(pa.float64())),
            "weights": pa.array(splits(self._weights), pa.list_(pa.float32())),
        })
        pq.write_table(table, path)

    @classmethod
    def read(cls, path: Path) -> "UserHistories":
        table = pq.read_table(path)
        items_col = table.column("items").combine_chunks()
        offsets = items_col.offsets.to_numpy().astype(np.int64)
        flat = lambda name: table.column(name).combine_chunks().flatten().to_numpy()  # noqa: E731
        return cls(table.column("user_id").to_pylist(), offsets - offsets[0], flat("items").astype(np.int64),
                   flat("timestamps").astype(np.float64), flat("weights").astype(np.float32))
