"""Vectors for items the model has not learned, from the learned vectors of their neighbours.

The two-tower model gives an item that was never some user's next item (a new release, or one
only ever seen first in a history) its id-free vector [A x_j, c . x_j]: a linear map of its
inputs x_j (the sentence embedding and the catalog columns beside it). Items close in those
inputs (a sequel, the same genres and era, the same director's style) are often watched by the
same people, which a linear map only partly carries. So a new item's searched vector blends
its own vector with the similarity-weighted mean of the learned vectors of its ``neighbours``
nearest items (cosine of the inputs) among the items that have them:

    v_j = (1 - blend) [A x_j, c . x_j] + blend [sum_i w_ji p_i, c . x_j],   w_ji ~ cos(x_j, x_i)

The bias (popularity prior) stays the item's own: a neighbour's audience says little about how
many people a new release will reach. The result is an item vector like any other, so one ANN
search still serves warm and new items together.

Chosen on pseudo-new items of the build's validation split of MovieLens 100K train data
(random draws of 10% of the items, stripped of their interactions, Recall@10 ranking only
those items). With neighbours by text alone, 20 neighbours at blend 0.5 raised it from 0.2473
to 0.2814 (mean of six draws) for the three-member model and from 0.2441 to 0.2841 for one
64-d model, on all twelve draws; blending the bias too was no better. Finding the neighbours
in the item tower's inputs (text and catalog columns) rather than the text alone raised it
again, from 0.2694 to 0.2789 (Recall@10, up on 8 of 16 draws) and from 0.1606 to 0.1687
(NDCG@10, up on 12 of 16), mean of sixteen draws, one 64-d model. See bench/model.md for the
protocol's cold items.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def neighbour_blended_vectors(space: npt.NDArray[np.float32], index_vectors: npt.NDArray[np.float32],
                              new: npt.NDArray[np.bool_], known: npt.NDArray[np.bool_], neighbours: int,
                              blend: float, block: int = 4096) -> npt.NDArray[np.float32]:
    """``index_vectors`` (last column the bias) with each ``new`` row blended with its nearest
    ``known`` rows by cosine in ``space`` (one row per item: the item tower's inputs); other
    rows are returned unchanged (a copy).

    ``index_vectors[new]`` are the new items' own (id-free) vectors. A row in both masks
    counts as new only, so no item is its own neighbour. A new item whose neighbours all point
    away from it (cosine <= 0) keeps its own vector. With no known rows, ``neighbours`` 0 or
    ``blend`` 0 nothing changes. New rows go in blocks of ``block``, so memory stays at
    block x neighbours x dimension whatever the number of new items."""
    import faiss

    out = np.array(index_vectors, dtype=np.float32, copy=True)
    new_rows, known_rows = np.flatnonzero(new), np.flatnonzero(known & ~new)
    if not len(new_rows) or not len(known_rows) or neighbours <= 0 or blend <= 0:
        return out
    unit = _unit(space)
    search = faiss.IndexFlatIP(unit.shape[1])
    search.add(unit[known_rows])
    learned = out[known_rows, :-1]
    for start in range(0, len(new_rows), block):
        rows = new_rows[start:start + block]
        similarity, position = search.search(unit[rows], min(neighbours, len(known_rows)))
        weights = np.clip(similarity, 0.0, None)
        total = weights.sum(axis=1, keepdims=True)
        has_neighbours = total[:, 0] > 0
        weights = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
        neighbour_mean = np.einsum("nk,nkd->nd", weights, learned[position])
        rows, neighbour_mean = rows[has_neighbours], neighbour_mean[has_neighbours]
        out[rows, :-1] = (1.0 - blend) * out[rows, :-1] + blend * neighbour_mean
    return out


def _unit(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)
