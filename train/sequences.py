"""Training data for the retrieval model: each user's item rows, oldest first.

Built from the same ``InteractionLog`` the index is built from, with repeated (user, item)
events kept once at their first time, as the evaluation protocol counts them. The
fingerprint is a sha256 over exactly these arrays, so a cache keyed by it can never hand a
model trained on other interactions (say, with held-out events) to this build.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import numpy.typing as npt

from tastebud.ingest.model import InteractionLog


@dataclass(frozen=True, slots=True)
class Sequences:
    """Per user (sorted ids), a slice of ``items`` (int64 item rows) in time order."""

    user_ids: list[str]
    offsets: npt.NDArray[np.int64]
    items: npt.NDArray[np.int64]
    n_items: int

    def __len__(self) -> int:
        return len(self.user_ids)

    def of(self, user: int) -> npt.NDArray[np.int64]:
        return self.items[self.offsets[user]:self.offsets[user + 1]]

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(np.int64(self.n_items).tobytes())
        digest.update("\x00".join(self.user_ids).encode())
        digest.update(self.offsets.tobytes())
        digest.update(self.items.tobytes())
        return digest.hexdigest()


def build_sequences(log: InteractionLog, item_ids: Sequence[str]) -> Sequences:
    """Sequences of every user of ``log``: first occurrence of each item, by (time, item id)."""
    row_of = {item_id: row for row, item_id in enumerate(item_ids)}
    rows = np.fromiter((row_of[i] for i in log.item_ids.tolist()), dtype=np.int64, count=len(log))
    # log is sorted by (user, timestamp, item id): the first occurrence is the earliest event.
    order = np.lexsort((log.item_ids, log.timestamps, log.user_ids))
    users, rows_sorted = log.user_ids[order], rows[order]
    # (user, item) as one integer: a string key "user\0row" collides, since numpy strings drop
    # the trailing NUL of "user\0" ("a1"+"2" == "a"+"12").
    pair = np.unique(users, return_inverse=True)[1].astype(np.int64) * max(len(item_ids), 1) + rows_sorted
    _, first = np.unique(pair, return_index=True)
    keep = np.sort(first)
    users, rows_sorted = users[keep], rows_sorted[keep]
    unique, starts = np.unique(users, return_index=True)
    offsets = np.append(starts, len(users)).astype(np.int64)
    return Sequences([str(u) for u in unique], offsets, rows_sorted.astype(np.int64), len(item_ids))


def without_items(seqs: Sequences, items: npt.NDArray[np.bool_]) -> Sequences:
    """``seqs`` as if the ``items`` (a mask over item rows) had never been interacted with."""
    keep = ~items[seqs.items]
    kept_before = np.concatenate([[0], np.cumsum(keep)]).astype(np.int64)
    return Sequences(seqs.user_ids, kept_before[seqs.offsets], seqs.items[keep], seqs.n_items)
