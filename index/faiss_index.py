"""FAISS index construction and search parameters, for one factory string across all shards.

The factory is chosen by catalog size (exact ``Flat`` below a threshold, ``HNSW32,Flat`` above)
unless the operator names one: any FAISS factory string, or the profile name ``compressed``
(``COMPRESSED_FACTORY``: IVF + 4-bit PQ fast-scan, the best k x k_factor re-ranked from 6-bit
scalar codes; under a quarter of float32 memory at 384-d). A factory may hold two placeholders,
``{nlist}`` (IVF lists for the catalog size, ``ivf_nlist``) and ``{pq_m}`` (PQ sub-quantizers for
the index's dimension, ``pq_subquantizers``): the two searchable spaces differ in width (item
vectors carry one extra prior dimension, 385 vs 384) and no PQ size divides both, so a literal
``PQ96`` string fails on the item space. Anything that needs training (IVF, PQ) is trained once on a
sample of all vectors, and every shard starts from a clone of that trained index, so all
shards quantise the same way and their scores are comparable when merged.
Shard indexes use local ids 0..n_s-1; the shard's ``ids`` array maps them to global ids,
which keeps filter bitmaps per shard compact.
"""

from __future__ import annotations

import logging
from typing import Any, Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

EXACT_FACTORY = "Flat"
HNSW_FACTORY = "HNSW32,Flat"
DEFAULT_EXACT_THRESHOLD = 200_000
HNSW_EF_CONSTRUCTION = 80
TRAIN_SAMPLE = 100_000
# The compressed profile: per item 4-bit PQ codes (d/8 bytes) to scan, 6-bit SQ codes (0.75 d bytes)
# to re-rank the best k x k_factor, and the IVF list's id (8 bytes): 0.224x float32 at d = 384,
# plus the coarse centroids (nlist x d floats per shard) and fast-scan's padding to blocks of 32.
COMPRESSED_PROFILE = "compressed"
COMPRESSED_FACTORY = "IVF{nlist},PQ{pq_m}x4fs,Refine(SQ6)"


@dataclass(frozen=True, slots=True)
class SearchTuning:
    """Query-time knobs; ignored by index types they do not apply to."""

    ef_search: int = 128
    nprobe: int = 32
    # A refine index (``...,Refine(...)`` / ``RFlat``) re-ranks k x k_factor candidates of its base.
    k_factor: float = 16.0


def ivf_nlist(n_items: int, train_sample: int = TRAIN_SAMPLE) -> int:
    """IVF list count for ``n_items``: the power of two nearest 2 sqrt(n), at most one list per 39
    training vectors (FAISS k-means' own minimum), e.g. 2048 for 1M items, 64 for 3,000."""
    n = max(1, n_items)
    target = 2 ** round(np.log2(2 * np.sqrt(n)))
    cap = 2 ** int(np.log2(max(1, min(n, train_sample) // 39)))
    return int(max(1, min(target, cap)))


def pq_subquantizers(dimension: int, dims_per_code: int = 4) -> int:
    """The PQ sub-quantizer count for ``dimension``: the divisor of it nearest d / dims_per_code
    (96 for 384, 77 for 385), since PQ needs d % m == 0."""
    divisors = [m for m in range(1, dimension + 1) if dimension % m == 0]
    return min(divisors, key=lambda m: (abs(m - dimension / dims_per_code), -m))


def choose_factory(n_items: int, exact_threshold: int = DEFAULT_EXACT_THRESHOLD, override: str | None = None) -> str:
    """The FAISS factory string for a catalog of ``n_items`` (``{nlist}`` filled in; ``{pq_m}``
    is left for :func:`empty_index`, which knows the dimension)."""
    if override:
        factory = COMPRESSED_FACTORY if override.strip().lower() == COMPRESSED_PROFILE else override
        return factory.replace("{nlist}", str(ivf_nlist(n_items)))
    return EXACT_FACTORY if n_items < exact_threshold else HNSW_FACTORY


def resolve_factory(factory: str, dimension: int, n_items: int | None = None) -> str:
    """``factory`` with its placeholders filled for this dimension (and catalog size)."""
    if factory.strip().lower() == COMPRESSED_PROFILE:
        factory = COMPRESSED_FACTORY
    if "{nlist}" in factory:
        if n_items is None:
            raise ValueError(f"factory {factory!r} needs the catalog size for {{nlist}}")
        factory = factory.replace("{nlist}", str(ivf_nlist(n_items)))
    return factory.replace("{pq_m}", str(pq_subquantizers(dimension)))


def empty_index(dimension: int, factory: str, n_items: int | None = None,
                tuning: SearchTuning | None = None):  # -> faiss.Index
    """An untrained inner-product index of the given factory; ValueError on a bad factory string.
    A refine index keeps ``tuning.k_factor`` as its own default (it is saved with the index)."""
    import faiss

    factory = resolve_factory(factory, dimension, n_items)
    try:
        index = faiss.index_factory(dimension, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ValueError(f"invalid FAISS factory string {factory!r}: {str(exc).strip().splitlines()[-1]}") from exc
    refine = _as_refine(index)
    if refine is not None:
        refine.k_factor = float((tuning or SearchTuning()).k_factor)
    hnsw = _as_hnsw(refine.base_index if refine is not None else index)
    if hnsw is not None:
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    return index


def _as_refine(index):
    import faiss

    down = faiss.downcast_index(index)
    return down if isinstance(down, faiss.IndexRefine) else None


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

    prototype = empty_index(vectors.shape[1], factory, n_items=len(vectors))
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
    """FAISS SearchParameters for this index type, with an optional IDSelector. For a refine
    index the base gets the selector and its own parameters (the refine step only re-ranks what
    the base returns; FAISS ignores a selector on the outer parameters)."""
    return parameter_maker(index)(tuning, selector)


def parameter_maker(index) -> Callable[[SearchTuning, Any], Any]:
    """:func:`search_parameters` with the index's type looked up once (a shard keeps one per
    space: the downcasts cost more than a small exact search)."""
    import faiss

    refine = _as_refine(index)
    if refine is not None:
        base = parameter_maker(refine.base_index)

        def refined(tuning: SearchTuning, selector=None):
            params = faiss.IndexRefineSearchParameters()
            params.k_factor = float(tuning.k_factor)
            params.base_index_params = base(tuning, selector)
            return params
        return refined
    if _as_hnsw(index) is not None:
        kind, knob = faiss.SearchParametersHNSW, ("efSearch", "ef_search")
    elif _as_ivf(index) is not None:
        kind, knob = faiss.SearchParametersIVF, ("nprobe", "nprobe")
    else:
        kind, knob = faiss.SearchParameters, None

    def make(tuning: SearchTuning, selector=None):
        params = kind()
        if knob is not None:
            setattr(params, knob[0], getattr(tuning, knob[1]))
        if selector is not None:
            params.sel = selector
        return params
    return make
