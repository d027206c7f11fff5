"""Exact merging of per-shard top-k lists into one global top-k.

Pure numpy, no I/O. Ties are broken by the smaller global id, so a sharded search returns
exactly the list one brute-force search over all items returns (``brute_force_topk``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import numpy.typing as npt

MISSING_ID = -1


def topk_positions(scores: npt.NDArray[np.float32], ids: npt.NDArray[np.int64], k: int) -> npt.NDArray[np.int64]:
    """Per row, positions of the k best (score desc, id asc) candidates; -1 ids never win.

    ``scores``/``ids`` are [q, m]; returns int64[q, k], padded with -1 when fewer are valid.
    Positions let callers carry payloads (vectors) along with the merged ids.
    """
    q, _ = scores.shape
    out = np.full((q, k), -1, dtype=np.int64)
    for row in range(q):
        valid = ids[row] != MISSING_ID
        order = np.lexsort((ids[row], -scores[row]))
        order = order[valid[order]][:k]
        out[row, : len(order)] = order
    return out


def take_positions(values: npt.NDArray, positions: npt.NDArray[np.int64], fill: float | int) -> npt.NDArray:
    """``values[row, positions[row]]`` for [q, m, ...] values, with ``fill`` where positions are -1."""
    if values.shape[1] == 0:  # no candidates at all (an empty shard): every position is padding
        return np.full(positions.shape + values.shape[2:], fill, dtype=values.dtype)
    taken = np.take_along_axis(values, np.maximum(positions, 0).reshape(positions.shape + (1,) * (values.ndim - 2)),
                               axis=1)
    mask = (positions < 0).reshape(positions.shape + (1,) * (values.ndim - 2))
    return np.where(mask, fill, taken)


def topk_rows(scores: npt.NDArray[np.float32], ids: npt.NDArray[np.int64], k: int
              ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Per row, the k best (score desc, id asc) candidates as ([q, k] scores, [q, k] ids),
    padded with (-inf, -1) when fewer are valid."""
    positions = topk_positions(scores, ids, k)
    return (take_positions(scores, positions, -np.inf).astype(np.float32),
            take_positions(ids, positions, MISSING_ID).astype(np.int64))


def merge_topk(shard_scores: Sequence[npt.NDArray[np.float32]], shard_ids: Sequence[npt.NDArray[np.int64]],
               k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Merge shards' results (each [q, k_s], ids global, -1 padded) into the global [q, k]."""
    if not shard_scores:
        raise ValueError("merge_topk needs at least one shard's results")
    return topk_rows(np.concatenate(shard_scores, axis=1), np.concatenate(shard_ids, axis=1), k)


def brute_force_topk(queries: npt.NDArray[np.float32], vectors: npt.NDArray[np.float32], k: int,
                     allowed: npt.NDArray[np.bool_] | None = None
                     ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Reference exact inner-product top-k over all rows of ``vectors`` (ids = row numbers)."""
    scores = queries @ vectors.T
    ids = np.broadcast_to(np.arange(len(vectors), dtype=np.int64), scores.shape).copy()
    if allowed is not None:
        ids[:, ~allowed] = MISSING_ID
    return topk_rows(scores.astype(np.float32), ids, k)
