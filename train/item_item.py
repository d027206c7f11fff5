"""Item-to-item neighbour tables learned from interactions: the re-ranker's item-kNN and EASE
features read them (``server.features``), and the build stores them with the index.

Row h of a table holds the items most related to item h:
- co-occurrence: cosine of the two items' user sets (item-kNN);
- EASE (Steck 2019): B = I - P / diag(P) with P = (X'X + l2 I)^-1 and diag(B) = 0, the ridge
  regression of each item on all the others. A history's EASE score of j is sum_h B[h, j]. It
  discounts pairs that co-occur only because both items are popular, which cosine does not,
  and it is the strongest item-item model on the issue's benchmark.

Both need a dense item x item matrix: catalogs above ``max_items`` get empty tables (their
features are then 0) rather than exhausting memory.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tastebud.server.features import NeighbourTable

NEIGHBOURS = 100
EASE_L2 = 500.0  # Steck's value for MovieLens 20M, also the evaluation baseline's


def item_gram(sequences_items: list[npt.NDArray[np.int64]], n_items: int) -> npt.NDArray[np.float32]:
    """float32[n, n] = X'X of the binary user x item matrix (repeats count once)."""
    from scipy import sparse

    if not sequences_items:
        return np.zeros((n_items, n_items), dtype=np.float32)
    users = np.concatenate([np.full(len(s), u, dtype=np.int64) for u, s in enumerate(sequences_items)])
    matrix = sparse.csr_matrix((np.ones(len(users), dtype=np.float32), (users, np.concatenate(sequences_items))),
                               shape=(len(sequences_items), n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return np.asarray((matrix.T @ matrix).todense(), dtype=np.float32)


def ease_weights(gram: npt.NDArray[np.float32], l2: float = EASE_L2) -> npt.NDArray[np.float32]:
    """EASE's B from X'X (float32[n, n], overwritten: the peak stays at two n x n matrices); the
    ridge term keeps the system well conditioned."""
    gram[np.diag_indices_from(gram)] += np.float32(l2)
    weights = np.linalg.inv(gram)
    weights /= -np.diag(weights)[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


def cooccurrence_neighbours(sequences_items: list[npt.NDArray[np.int64]], n_items: int,
                            neighbours: int = NEIGHBOURS, max_items: int = 30_000) -> NeighbourTable:
    """Each item's top ``neighbours`` items by cosine of co-occurrence in users' histories."""
    if n_items > max_items or not sequences_items:
        return NeighbourTable.empty(n_items, neighbours)
    counts = item_gram(sequences_items, n_items)
    norms = np.sqrt(np.diag(counts))
    cosine = counts / np.maximum(np.outer(norms, norms), 1e-9)
    np.fill_diagonal(cosine, 0.0)
    return top_per_row(cosine, neighbours)


def ease_neighbours(sequences_items: list[npt.NDArray[np.int64]], n_items: int, neighbours: int = NEIGHBOURS,
                    l2: float = EASE_L2, max_items: int = 10_000) -> NeighbourTable:
    """Each item h's top ``neighbours`` items j by EASE weight B[h, j] (positive weights only).

    The inverse costs O(n^3): 5.7 s at 5,000 items on this project's 2-core machine, so about
    45 s at the 10,000 limit, and a build computes it twice (the re-ranker's signals, the index)."""
    if n_items > max_items or not sequences_items:
        return NeighbourTable.empty(n_items, neighbours)
    return top_per_row(ease_weights(item_gram(sequences_items, n_items), l2), neighbours)


def top_per_row(matrix: npt.NDArray[np.float32], neighbours: int) -> NeighbourTable:
    """The ``neighbours`` largest positive entries of each row, largest first (-1 / 0 padded)."""
    n = len(matrix)
    table = NeighbourTable.empty(n, neighbours)
    top = min(neighbours, n - 1)
    if top <= 0:
        return table
    best = np.argpartition(-matrix, top - 1, axis=1)[:, :top]
    values = np.take_along_axis(matrix, best, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    best, values = np.take_along_axis(best, order, axis=1), np.take_along_axis(values, order, axis=1)
    keep = values > 0
    table.ids[:, :top] = np.where(keep, best, -1)
    table.values[:, :top] = np.where(keep, values, 0.0)
    return table
