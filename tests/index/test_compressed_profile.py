"""The compressed index profile (``--factory compressed``): placeholders, memory, recall, refine
parameters and selectors, and a whole build through ``tastebud build``'s code path."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from tastebud.index import faiss_index
from tastebud.index.build import BuildOptions, build_index
from tastebud.index.faiss_index import (
    COMPRESSED_FACTORY, SearchTuning, build_shard_indexes, choose_factory, empty_index, ivf_nlist,
    pq_subquantizers, resolve_factory, search_parameters,
)
from tastebud.index.load import open_index
from tastebud.index.shards import ShardQuery
from tastebud.ingest.model import Catalog, Dataset, LoadReport, sorted_interaction_log


@pytest.fixture(autouse=True)
def one_faiss_thread():
    """One FAISS thread: k-means' many small parallel regions crawl when other jobs hold the cores."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def clustered(n: int, dim: int, components: int, seed: int) -> np.ndarray:
    """Unit vectors around ``components`` random centres (a small version of bench/synthetic.py)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((components, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    label = rng.integers(0, components, n)
    x = centres[label] + rng.standard_normal((n, dim), dtype=np.float32) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth)) / truth.size


def test_the_profile_name_and_placeholders_resolve_per_size_and_dimension():
    assert choose_factory(1_000_000, override="compressed") == "IVF2048,PQ{pq_m}x4fs,Refine(SQ6)"
    assert choose_factory(1_000_000, override=COMPRESSED_FACTORY) == "IVF2048,PQ{pq_m}x4fs,Refine(SQ6)"
    assert choose_factory(10, override="HNSW32,Flat") == "HNSW32,Flat"  # other strings pass unchanged
    # the two spaces differ by one dimension and no PQ size divides both
    assert resolve_factory("IVF2048,PQ{pq_m}x4fs,Refine(SQ6)", 384) == "IVF2048,PQ96x4fs,Refine(SQ6)"
    assert resolve_factory("IVF2048,PQ{pq_m}x4fs,Refine(SQ6)", 385) == "IVF2048,PQ77x4fs,Refine(SQ6)"
    assert resolve_factory("compressed", 64, n_items=3000) == "IVF64,PQ16x4fs,Refine(SQ6)"
    assert [pq_subquantizers(d) for d in (384, 385, 33, 32, 7)] == [96, 77, 11, 8, 1]
    assert [ivf_nlist(n) for n in (1, 200, 3000, 30_000, 1_000_000)] == [1, 4, 64, 256, 2048]
    with pytest.raises(ValueError, match="nlist"):
        resolve_factory(COMPRESSED_FACTORY, 384)  # {nlist} needs the catalog size


def test_compressed_profile_recall_and_memory(monkeypatch):
    """A clustered 24,000 x 256 set in one shard: under 25% of float32 (the coarse centroids and
    fast-scan block padding included; 0.227 per item asymptotically) and a recall@10 bar at the
    default search parameters."""
    dim = 256
    vectors = clustered(24_000, dim, components=96, seed=0)
    rng = np.random.default_rng(1)
    queries = vectors[rng.integers(0, len(vectors), 100)] + \
        rng.standard_normal((100, dim), dtype=np.float32) * (0.3 / np.sqrt(dim))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    factory = choose_factory(len(vectors), override="compressed")
    # trained on a sample, as a large catalog is (100,000 of 1M); a quarter here keeps the test fast
    monkeypatch.setattr(faiss_index, "TRAIN_SAMPLE", 6000)
    (index,) = build_shard_indexes(vectors, [np.arange(len(vectors))], factory)
    size = faiss.serialize_index(index).size
    assert size < 0.25 * vectors.nbytes, f"{size / vectors.nbytes:.3f} of float32"

    exact = faiss.IndexFlatIP(dim)
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    tuning = SearchTuning()
    _, found = index.search(queries, 10, params=search_parameters(index, tuning))
    assert recall_at_10(found, truth) >= 0.9
    # k_factor is a real knob: re-ranking fewer candidates loses recall
    _, fewer = index.search(queries, 10, params=search_parameters(index, SearchTuning(k_factor=1)))
    assert recall_at_10(fewer, truth) < recall_at_10(found, truth)
    # the default k_factor is also saved in the index, for a search without parameters
    assert faiss.downcast_index(faiss.deserialize_index(faiss.serialize_index(index))).k_factor == tuning.k_factor


def test_refine_parameters_carry_nprobe_and_the_selector_to_the_base():
    vectors = clustered(2000, 32, components=16, seed=2)
    (index,) = build_shard_indexes(vectors, [np.arange(len(vectors))], choose_factory(2000, override="compressed"))
    params = search_parameters(index, SearchTuning(nprobe=3, k_factor=5))
    assert isinstance(params, faiss.IndexRefineSearchParameters) and params.k_factor == 5
    exact = faiss.IndexFlatIP(32)
    exact.add(vectors)
    _, truth = exact.search(vectors[:200], 10)
    recall = {p: recall_at_10(index.search(vectors[:200], 10, params=search_parameters(
        index, SearchTuning(nprobe=p)))[1], truth) for p in (1, 32)}
    assert recall[1] < recall[32]  # nprobe reaches the IVF base
    allowed = np.zeros(len(vectors), dtype=bool)
    allowed[::3] = True
    bitmap = np.packbits(allowed, bitorder="little")
    selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
    _, found = index.search(vectors[:20], 10, params=search_parameters(index, SearchTuning(), selector))
    assert (found >= 0).all() and allowed[found].all()


def test_other_refine_factories_get_refine_parameters_too():
    index = empty_index(16, "IVF4,SQ8,RFlat")
    assert isinstance(search_parameters(index, SearchTuning()), faiss.IndexRefineSearchParameters)
    hnsw = empty_index(16, "HNSW16,SQ8,RFlat")  # efConstruction reaches an HNSW base under a refine
    assert faiss.downcast_index(faiss.downcast_index(hnsw).base_index).hnsw.efConstruction == 80


def test_build_with_the_compressed_profile_end_to_end(tmp_path, make_encoder):
    """``tastebud build --factory compressed``'s path: both spaces (33-d item, 32-d text) trained
    once and cloned into every shard, published, loaded, searched through the shards."""
    n = 600
    ids = [f"m{i:03d}" for i in range(n)]
    catalog = Catalog(item_ids=ids, titles=[f"Movie {i}" for i in range(n)],
                      texts=[f"Movie {i}: a film about {i % 17}" for i in range(n)],
                      years=[1980 + i % 40 for i in range(n)], attributes={"genres": [("drama",)] * n})
    users = [f"u{u}" for u in range(5) for _ in range(4)]
    items = [ids[(7 * u + j) % n] for u in range(5) for j in range(4)]
    log = sorted_interaction_log(users, items, np.arange(20, dtype=np.float64) * 60.0, np.ones(20), ["view"] * 20,
                                 np.full(20, np.nan))
    dataset = Dataset(catalog, log, LoadReport(items_read=n, interactions_read=20))
    encoder = make_encoder(32)
    options = BuildOptions(n_shards=2, factory="compressed", retrieval="content", progress=False)
    result = build_index(dataset, encoder, tmp_path / "indexes", options)
    assert result.manifest.factory == f"IVF{ivf_nlist(n)},PQ{{pq_m}}x4fs,Refine(SQ6)"
    index = open_index(tmp_path / "indexes", fingerprint=encoder.fingerprint, dimension=32)
    for shard in index.shards:
        rows = np.flatnonzero(index.items.shard == shard.shard).astype(np.int64)
        mine = shard.vectors_sync(rows[:5], "item")
        hits = shard.search_sync(mine, ShardQuery(k=10))
        assert (hits.ids[:, 0] == rows[:5]).all()  # each item finds itself first
        assert isinstance(faiss.downcast_index(shard._spaces["item"].index), faiss.IndexRefine)
