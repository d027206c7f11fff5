"""FAISS index construction and search parameters, for one factory string across all shards.

The factory is chosen by catalog size (exact ``Flat`` below a threshold, ``HNSW32,Flat`` above)
unless the operator names one. Anything that needs training (IVF, PQ) is trained once on a
sample of all vectors, and every shard starts from a clone of that trained index, so all
shards quantise the same way and their scores are comparable when merged.
Shard indexes use local ids 0..n_s-1; the shard's ``ids`` array maps them to global ids,
which keeps filter bitmaps per shard compact.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

EXACT_FACTORY = "Flat"
HNSW_FACTORY = "HNSW32,Flat"
DEFAULT_EXACT_THRESHOLD = 200_000
HNSW_EF_CONSTRUCTION = 80
TRAIN_SAMPLE = 100_000


@dataclass(frozen=True, slots=True)
class SearchTuning:
    """Query-time knobs; ignored by index types they do not apply to."""

    ef_search: int = 128
    nprobe: int = 32


def choose_factory(n_items: int, exact_threshold: int = DEFAULT_EXACT_THRESHOLD, override: str | None = None) -> str:
    """The FAISS factory string for a catalog of ``n_items``."""
    if override:
        return override
    return EXACT_FACTORY if n_items < exact_threshold else HNSW_FACTORY


def empty_index(dimension: int, factory: str):  # -> faiss.Index
    """An untrained inner-product index of the given factory; ValueError on a bad factory string."""
    import faiss

    try:
        index = faiss.index_factory(dimension, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ValueError(f"invalid FAISS factory string {factory!r}: {str(exc).strip().splitlines()[-1]}") from exc
    hnsw = _as_hnsw(index)
    if hnsw is not None:
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    return index


def _as_hnsw(index):
    import faiss

    down = faiss.downcast_index(index)
    return down if isinstance(down, faiss.IndexHNSW) else None


def _as_ivf(index):
    import faiss

    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def build_shard_indexes(vectors: npt.NDArray[np.float32], shard_rows: list[npt.NDArray[np.int64]],
                        factory: str, seed: int = 0) -> list:
    """One FAISS index per shard, holding ``vectors[rows]`` with local ids 0..len(rows)-1."""
    import faiss

    prototype = empty_index(vectors.shape[1], factory)
    if not prototype.is_trained:
        rng = np.random.default_rng(seed)
        sample = vectors if len(vectors) <= TRAIN_SAMPLE else vectors[np.sort(rng.choice(len(vectors), TRAIN_SAMPLE, replace=False))]
        log.info("training %s on %d vectors (FAISS k-means uses its fixed seed)", factory, len(sample))
        prototype.train(np.ascontiguousarray(sample))
    shards = []
    for rows in shard_rows:
        index = faiss.clone_index(prototype)
        if len(rows):
            index.add(np.ascontiguousarray(vectors[rows]))
        shards.append(index)
    return shards


def search_parameters(index, tuning: SearchTuning, selector=None):
    """FAISS SearchParameters for this index type, with an optional IDSelector."""
    import faiss

    if _as_hnsw(index) is not None:
        params = faiss.SearchParametersHNSW()
        params.efSearch = tuning.ef_search
    elif _as_ivf(index) is not None:
        params = faiss.SearchParametersIVF()
        params.nprobe = tuning.nprobe
    else:
        params = faiss.SearchParameters()
    if selector is not None:
        params.sel = selector
    return params
