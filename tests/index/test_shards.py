"""LocalShard search: exact against brute force in every space, filters never leak, both search paths agree."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tastebud.embed.user_tower import content_index_vectors, content_tower
from tastebud.errors import IndexIntegrityError
from tastebud.index import shards as shards_module
from tastebud.index.build import BuildOptions, build_index
from tastebud.index.faiss_index import HNSW_FACTORY, SearchTuning, build_shard_indexes
from tastebud.index.filters import NO_YEAR, ItemFilter, ItemTable
from tastebud.index.load import open_index
from tastebud.index.merge import MISSING_ID, brute_force_topk, merge_topk
from tastebud.index.manifest import SPACES
from tastebud.index.shards import LocalShard, ShardQuery, VectorSpace
from tastebud.ingest.model import Catalog, Dataset, LoadReport, sorted_interaction_log

N, D = 300, 16
DIMS = {"item": D + 1, "text": 12, "query": D}  # [p_j, b_j]; text embeddings; query-side vectors
GENRES = ["a", "b", "c", "d"]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def make_shard(vectors: dict[str, np.ndarray], global_ids: np.ndarray, table: ItemTable, factory: str = "Flat",
               tuning: SearchTuning = SearchTuning()) -> LocalShard:
    """A shard holding items ``global_ids`` (sorted) of a catalog whose vectors by kind are
    ``vectors`` (the searchable spaces, and ``query``)."""
    spaces = {name: VectorSpace(build_shard_indexes(v, [global_ids], factory)[0], v[global_ids])
              for name, v in vectors.items() if name != "query"}
    return LocalShard(0, spaces, vectors["query"][global_ids], global_ids, table.subset(global_ids), tuning, None,
                      factory, "t")


class World:
    """A 300-item catalog (vectors of every kind, years, genres) and one shard holding every third item.

    The kinds have different dimensions, so a space mix-up fails loudly."""

    def __init__(self) -> None:
        rng = np.random.default_rng(7)
        self.by_kind = {"item": rng.standard_normal((N, DIMS["item"])).astype(np.float32),  # not unit: [p, b]
                        "text": unit(rng.standard_normal((N, DIMS["text"]))),
                        "query": rng.standard_normal((N, DIMS["query"])).astype(np.float32)}
        years = rng.integers(1990, 2010, N).astype(np.int32)
        years[rng.random(N) < 0.1] = NO_YEAR
        genres = [tuple(rng.choice(GENRES, size=rng.integers(0, 3), replace=False).tolist()) for _ in range(N)]
        self.table = ItemTable(years, {"genres": genres})
        self.global_ids = np.arange(1, N, 3, dtype=np.int64)
        self.in_shard = np.zeros(N, dtype=bool)
        self.in_shard[self.global_ids] = True
        self.shard = make_shard(self.by_kind, self.global_ids, self.table)

    def allowed(self, query: ShardQuery) -> np.ndarray:
        """bool[N]: the global ids this shard may return for ``query``, computed independently."""
        ok = self.in_shard & self.table.mask(query.item_filter)
        if query.restrict_to is not None:
            ok &= np.isin(np.arange(N), query.restrict_to)
        ok &= ~np.isin(np.arange(N), query.exclude)
        return ok


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def assert_ranking_invariants(scores: np.ndarray, ids: np.ndarray, k: int, allowed: np.ndarray) -> None:
    n_allowed = int(allowed.sum())
    for row_scores, row_ids in zip(scores, ids):
        valid = row_ids != MISSING_ID
        assert valid.sum() == min(k, n_allowed)
        assert np.all(valid[: valid.sum()]) and np.all(np.isneginf(row_scores[~valid]))
        hits = row_ids[valid]
        assert np.all(allowed[hits]), "returned an id the query does not allow"
        assert len(set(hits.tolist())) == len(hits), "duplicate ids"
        assert np.all(np.diff(row_scores[valid]) <= 0), "not sorted by score"


@pytest.mark.parametrize("space", SPACES)
def test_unfiltered_search_is_exact(world, rng, space):
    queries = unit(rng.standard_normal((5, DIMS[space])))
    hits = world.shard.search_sync(queries, ShardQuery(k=10, space=space))
    scores, ids = brute_force_topk(queries, world.by_kind[space], 10, world.in_shard)
    np.testing.assert_array_equal(hits.ids, ids)
    np.testing.assert_allclose(hits.scores, scores, atol=1e-5)
    assert hits.vectors is None and hits.scores.dtype == np.float32 and hits.ids.dtype == np.int64


@pytest.mark.parametrize("space", SPACES)
def test_async_search_equals_sync_search(world, rng, space):
    queries = unit(rng.standard_normal((2, DIMS[space])))
    query = ShardQuery(k=7, item_filter=ItemFilter(include=(("genres", frozenset({"a"})),)), space=space)
    hits = asyncio.run(world.shard.search(queries, query))
    expected = world.shard.search_sync(queries, query)
    np.testing.assert_array_equal(hits.ids, expected.ids)
    np.testing.assert_array_equal(hits.scores, expected.scores)


clause = st.tuples(st.just("genres"), st.frozensets(st.sampled_from(GENRES), min_size=1, max_size=2))
filters = st.one_of(st.none(), st.builds(
    ItemFilter, include=st.lists(clause, max_size=1).map(tuple), exclude=st.lists(clause, max_size=1).map(tuple),
    year_min=st.one_of(st.none(), st.integers(1988, 2005)), year_max=st.one_of(st.none(), st.integers(1995, 2012))))
global_ids = st.lists(st.integers(-5, N + 5), max_size=80).map(lambda ids: np.array(ids, dtype=np.int64))


@settings(max_examples=50, deadline=None)
@given(k=st.integers(1, 40), item_filter=filters, exclude=global_ids, restrict_to=st.one_of(st.none(), global_ids),
       n_queries=st.integers(1, 3), seed=st.integers(0, 2**32 - 1), space=st.sampled_from(SPACES))
def test_filtered_search_is_exact_on_both_paths(world, k, item_filter, exclude, restrict_to, n_queries, seed, space):
    queries = unit(np.random.default_rng(seed).standard_normal((n_queries, DIMS[space])))
    query = ShardQuery(k=k, item_filter=item_filter, exclude=exclude, restrict_to=restrict_to, with_vectors=True,
                       space=space)
    allowed = world.allowed(query)
    vectors = world.by_kind[space]
    ref_scores, ref_ids = brute_force_topk(queries, vectors, k, allowed)

    exact = world.shard.search_sync(queries, query)  # exact subset path (or FAISS when nothing is filtered)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(shards_module, "EXACT_SUBSET_MAX", 0)  # force the FAISS ID-selector path
        selected = world.shard.search_sync(queries, query)

    for hits in (exact, selected):
        assert_ranking_invariants(hits.scores, hits.ids, k, allowed)
        np.testing.assert_array_equal(hits.ids, ref_ids)
        np.testing.assert_allclose(hits.scores, ref_scores, atol=1e-5)
        valid = hits.ids != MISSING_ID
        np.testing.assert_array_equal(hits.vectors[valid], vectors[hits.ids[valid]])
        assert np.all(hits.vectors[~valid] == 0.0)


def test_everything_excluded_gives_only_padding(world, rng):
    queries = unit(rng.standard_normal((2, DIMS["item"])))
    for query in (ShardQuery(k=4, exclude=world.global_ids), ShardQuery(k=4, restrict_to=np.zeros(0, np.int64)),
                  ShardQuery(k=4, restrict_to=np.array([0, 3, 6], np.int64))):  # ids of other shards only
        hits = world.shard.search_sync(queries, query)
        assert hits.ids.tolist() == [[-1] * 4] * 2 and np.all(np.isneginf(hits.scores))


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("query", [
    ShardQuery(k=3), ShardQuery(k=3, with_vectors=True), ShardQuery(k=3, exclude=np.array([1, 4], np.int64)),
    ShardQuery(k=3, restrict_to=np.array([1], np.int64)), ShardQuery(k=3, item_filter=ItemFilter(year_min=2000)),
])
def test_an_empty_shard_returns_padding(world, rng, query, space):
    """More shards than items leaves shards empty: they must answer with padding, not fail."""
    shard = make_shard(world.by_kind, np.zeros(0, np.int64), world.table)
    query = dataclasses.replace(query, space=space)
    hits = shard.search_sync(unit(rng.standard_normal((2, DIMS[space]))), query)
    assert hits.ids.tolist() == [[-1, -1, -1]] * 2 and np.all(np.isneginf(hits.scores))
    if query.with_vectors:
        assert hits.vectors.shape == (2, 3, DIMS[space]) and np.all(hits.vectors == 0.0)
    for kind, dimension in DIMS.items():
        assert shard.vectors_sync(np.zeros(0, np.int64), kind).shape == (0, dimension)


@pytest.mark.parametrize("kind", DIMS)
def test_vectors_by_global_id(world, kind):
    ids = world.global_ids[[5, 0, 17]]
    expected = world.by_kind[kind][ids]
    np.testing.assert_array_equal(world.shard.vectors_sync(ids, kind), expected)
    np.testing.assert_array_equal(asyncio.run(world.shard.vectors(ids, kind)), expected)
    if kind == "item":  # the default kind
        np.testing.assert_array_equal(world.shard.vectors_sync(ids), expected)
        np.testing.assert_array_equal(asyncio.run(world.shard.vectors(ids)), expected)
    with pytest.raises(KeyError, match="does not hold"):
        world.shard.vectors_sync(np.array([world.global_ids[0], 0], np.int64), kind)  # 0 lives in another shard


@pytest.mark.parametrize("short, message", [
    ("item vectors", "shard 0 item space: .*they must agree"), ("item index", "shard 0 item space: .*they must agree"),
    ("text vectors", "shard 0 text space: .*they must agree"), ("text index", "shard 0 text space: .*they must agree"),
    ("query vectors", "shard 0: .* query vectors"), ("table", "shard 0: .* table rows"),
])
def test_mismatched_shard_parts_are_refused(world, short, message):
    """Every part of a shard must hold exactly its items: one row short anywhere is refused."""
    ids, one_less = world.global_ids, world.global_ids[:-1]
    def rows(part: str) -> np.ndarray:
        return one_less if short == part else ids
    spaces = {name: VectorSpace(build_shard_indexes(world.by_kind[name], [rows(f"{name} index")], "Flat")[0],
                                world.by_kind[name][rows(f"{name} vectors")]) for name in SPACES}
    query_vectors, table = world.by_kind["query"][rows("query vectors")], world.table.subset(rows("table"))
    with pytest.raises(IndexIntegrityError, match=message):
        LocalShard(0, spaces, query_vectors, ids, table, SearchTuning(), None, "Flat", "t")


def clustered(rng: np.random.Generator, n: int, n_clusters: int, d: int) -> np.ndarray:
    centers = unit(rng.standard_normal((n_clusters, d)))
    return unit(centers[rng.integers(0, n_clusters, n)] + 0.25 * rng.standard_normal((n, d)) / np.sqrt(d))


def test_hnsw_shard_recall_against_exact(rng):
    n, d, k = 2000, 32, 10
    vectors = clustered(rng, n, 20, d)
    table = ItemTable(np.full(n, 2000, np.int32), {"genres": [("a",) if i % 2 else ("b",) for i in range(n)]})
    shard = make_shard({"item": vectors, "query": vectors}, np.arange(n, dtype=np.int64), table, factory=HNSW_FACTORY)
    queries = clustered(rng, 100, 20, d)

    hits = shard.search_sync(queries, ShardQuery(k=k))
    _, exact = brute_force_topk(queries, vectors, k)
    recall = np.mean([len(set(h) & set(e)) / k for h, e in zip(hits.ids.tolist(), exact.tolist())])
    assert recall >= 0.9, recall

    # Through the FAISS selector on the graph: approximate, but a filtered-out id never comes back.
    only_a = ShardQuery(k=k, item_filter=ItemFilter(include=(("genres", frozenset({"a"})),)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(shards_module, "EXACT_SUBSET_MAX", 0)
        filtered = shard.search_sync(queries, only_a)
    valid = filtered.ids != MISSING_ID
    assert np.all(filtered.ids[valid] % 2 == 1)
    _, exact_a = brute_force_topk(queries, vectors, k, np.arange(n) % 2 == 1)
    recall_a = np.mean([len(set(h) & set(e)) / k for h, e in zip(filtered.ids.tolist(), exact_a.tolist())])
    assert recall_a >= 0.8, recall_a


# --- a built index: its shards together answer exactly what one flat search answers ----------

def small_dataset(n_items: int) -> Dataset:
    ids = [f"item-{i}" for i in range(n_items)]
    catalog = Catalog(ids, [f"Title {i}" for i in range(n_items)], [f"text of item {i}" for i in range(n_items)],
                      [1990 + i % 20 for i in range(n_items)], {"genres": [(GENRES[i % 4],) for i in range(n_items)]})
    log = sorted_interaction_log(["u"] * 3, ids[:3], [1.0, 2.0, 3.0], [1.0] * 3, [""] * 3, [np.nan] * 3)
    return Dataset(catalog, log, LoadReport(n_items, 3))


@pytest.mark.parametrize("n_items, n_shards", [(60, 4), (3, 8)])  # (3, 8): most shards are empty
def test_built_shards_merge_to_one_exact_search(tmp_path, fake_encoder, n_items, n_shards):
    """In both spaces: the text space against the encoder's vectors, the item space (content
    model: [t_j, popularity prior]) against the same vectors with the prior column, queried [u, 1]."""
    dataset = small_dataset(n_items)
    build_index(dataset, fake_encoder, tmp_path, BuildOptions(n_shards=n_shards, progress=False, retrieval="content"))
    index = open_index(tmp_path, fingerprint="fake-32", dimension=32)
    assert len(index.shards) == n_shards
    text_vectors = fake_encoder.encode_documents(dataset.catalog.texts)
    popularity = np.bincount([0, 1, 2], minlength=n_items).astype(np.float32)  # the 3 events of small_dataset
    item_vectors = content_index_vectors(text_vectors, popularity)
    assert item_vectors[:3, -1].tolist() == pytest.approx([0.05] * 3) and np.all(item_vectors[3:, -1] == 0)
    text_queries = fake_encoder.encode_queries(["q one", "q two", "q three"])
    item_queries = np.stack([content_tower().query(q) for q in text_queries])
    genre_b = ItemFilter(include=(("genres", frozenset({"b"})),))
    seen = np.array([2, 5], np.int64)  # 5 is a "b" item; an id beyond a small catalog is ignored

    async def fan_out(queries: np.ndarray, query: ShardQuery):
        return await asyncio.gather(*(s.search(queries, query) for s in index.shards))

    b_not_seen = (np.arange(n_items) % 4 == 1) & ~np.isin(np.arange(n_items), seen)
    for space, queries, vectors in (("text", text_queries, text_vectors), ("item", item_queries, item_vectors)):
        for item_filter, exclude, allowed in ((None, np.zeros(0, np.int64), None), (genre_b, seen, b_not_seen)):
            results = asyncio.run(fan_out(queries, ShardQuery(k=12, item_filter=item_filter, exclude=exclude,
                                                              space=space)))
            scores, ids = merge_topk([r.scores for r in results], [r.ids for r in results], 12)
            ref_scores, ref_ids = brute_force_topk(queries, vectors, 12, allowed)
            np.testing.assert_array_equal(ids, ref_ids)
            np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
