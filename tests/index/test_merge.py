"""Exact top-k merging: sharded search equals one brute-force search, ties and padding included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tastebud.index.merge import (
    MISSING_ID, brute_force_topk, merge_topk, take_positions, topk_positions, topk_rows,
)
from tastebud.index.sharding import assign_shards

FAST = settings(max_examples=50, deadline=None)


def sharded_search(queries: np.ndarray, vectors: np.ndarray, k: int, n_shards: int):
    """Split items by ``assign_shards``, search each shard exactly, map to global ids, merge."""
    shard = assign_shards([f"item-{i}" for i in range(len(vectors))], n_shards)
    all_scores, all_ids = [], []
    for s in range(n_shards):
        rows = np.flatnonzero(shard == s).astype(np.int64)
        scores, local = brute_force_topk(queries, vectors[rows], k)
        all_scores.append(scores)
        global_ids = np.full_like(local, MISSING_ID)
        hit = local != MISSING_ID
        global_ids[hit] = rows[local[hit]]
        all_ids.append(global_ids)
    return merge_topk(all_scores, all_ids, k)


@FAST
@given(n=st.integers(1, 60), d=st.integers(1, 8), k=st.integers(1, 20), n_shards=st.integers(1, 8),
       n_queries=st.integers(1, 3), integer_valued=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_sharded_exact_search_equals_one_brute_force_search(n, d, k, n_shards, n_queries, integer_valued, seed):
    rng = np.random.default_rng(seed)
    if integer_valued:  # exact arithmetic and many equal scores: the id tie-break decides
        vectors = rng.integers(-2, 3, (n, d)).astype(np.float32)
        queries = rng.integers(-2, 3, (n_queries, d)).astype(np.float32)
    else:
        vectors = rng.standard_normal((n, d)).astype(np.float32)
        queries = rng.standard_normal((n_queries, d)).astype(np.float32)

    merged_scores, merged_ids = sharded_search(queries, vectors, k, n_shards)
    flat_scores, flat_ids = brute_force_topk(queries, vectors, k)

    np.testing.assert_array_equal(merged_ids, flat_ids)
    np.testing.assert_allclose(merged_scores, flat_scores, rtol=1e-5, atol=1e-5)
    assert merged_ids.shape == (n_queries, k)
    if integer_valued:  # a reference independent of the code under test: sort by (score desc, id asc)
        exact = queries.astype(np.int64) @ vectors.astype(np.int64).T
        for row in range(n_queries):
            expected = sorted(range(n), key=lambda i: (-exact[row, i], i))[:k]
            assert flat_ids[row].tolist() == expected + [MISSING_ID] * (k - len(expected))

def test_pads_with_missing_when_k_exceeds_items():
    vectors = np.eye(3, dtype=np.float32)
    scores, ids = brute_force_topk(np.array([[3.0, 2.0, 1.0]], dtype=np.float32), vectors, 5)
    assert ids.tolist() == [[0, 1, 2, -1, -1]]
    np.testing.assert_array_equal(scores[0, :3], [3.0, 2.0, 1.0])
    assert np.all(np.isneginf(scores[0, 3:]))
    assert scores.dtype == np.float32 and ids.dtype == np.int64


def test_ties_are_broken_by_the_smaller_id():
    scores = np.array([[0.5, 0.75, 0.5, 0.75, 0.5]], dtype=np.float32)
    ids = np.array([[40, 7, 3, 2, 11]], dtype=np.int64)
    top_scores, top_ids = topk_rows(scores, ids, 4)
    assert top_ids.tolist() == [[2, 7, 3, 11]]
    np.testing.assert_array_equal(top_scores, [[0.75, 0.75, 0.5, 0.5]])


def test_ties_across_shards_are_broken_by_the_smaller_id():
    shard_a = (np.array([[1.0, 1.0]], np.float32), np.array([[5, 9]], np.int64))
    shard_b = (np.array([[1.0, 1.0]], np.float32), np.array([[1, 7]], np.int64))
    _, ids = merge_topk([shard_a[0], shard_b[0]], [shard_a[1], shard_b[1]], 3)
    assert ids.tolist() == [[1, 5, 7]]


def test_missing_ids_never_win_even_with_the_best_score():
    scores = np.array([[np.inf, 10.0, 0.25, 5.0], [9.0, 8.0, 7.0, 6.0]], dtype=np.float32)
    ids = np.array([[-1, -1, 4, 2], [-1, -1, -1, -1]], dtype=np.int64)
    top_scores, top_ids = topk_rows(scores, ids, 3)
    assert top_ids.tolist() == [[2, 4, -1], [-1, -1, -1]]
    np.testing.assert_array_equal(top_scores[0, :2], [5.0, 0.25])
    assert np.all(np.isneginf(top_scores[0, 2:])) and np.all(np.isneginf(top_scores[1]))


@FAST
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(0, 30), k=st.integers(1, 12))
def test_merge_never_returns_missing_ids_and_is_sorted(seed, m, k):
    rng = np.random.default_rng(seed)
    scores = rng.integers(-3, 4, (2, m)).astype(np.float32)
    ids = rng.integers(-1, 10, (2, m)).astype(np.int64)
    top_scores, top_ids = topk_rows(scores, ids, k)
    for row in range(2):
        valid = top_ids[row] != MISSING_ID
        n_valid = int((ids[row] != MISSING_ID).sum())
        assert valid.sum() == min(k, n_valid)
        assert np.all(valid[: valid.sum()])  # real hits first, padding last
        keys = list(zip(-top_scores[row][valid], top_ids[row][valid]))
        assert keys == sorted(keys)


def test_zero_candidates_give_only_padding():
    """A shard that holds no items (e.g. more shards than items) contributes nothing."""
    scores, ids = topk_rows(np.zeros((2, 0), np.float32), np.zeros((2, 0), np.int64), 3)
    assert ids.tolist() == [[-1, -1, -1]] * 2 and np.all(np.isneginf(scores))
    scores, ids = brute_force_topk(np.ones((1, 4), np.float32), np.zeros((0, 4), np.float32), 2)
    assert ids.tolist() == [[-1, -1]] and np.all(np.isneginf(scores))


def test_brute_force_respects_allowed():
    vectors = np.eye(4, dtype=np.float32)
    allowed = np.array([False, True, False, True])
    _, ids = brute_force_topk(np.array([[4.0, 3.0, 2.0, 1.0]], np.float32), vectors, 4, allowed)
    assert ids.tolist() == [[1, 3, -1, -1]]


def test_positions_carry_payloads_with_the_ids():
    scores = np.array([[0.1, 0.9, 0.5]], dtype=np.float32)
    ids = np.array([[10, 11, -1]], dtype=np.int64)
    payload = np.arange(3 * 2, dtype=np.float32).reshape(1, 3, 2)
    positions = topk_positions(scores, ids, 3)
    assert positions.tolist() == [[1, 0, -1]]
    np.testing.assert_array_equal(take_positions(payload, positions, 0.0), [[[2.0, 3.0], [0.0, 1.0], [0.0, 0.0]]])
    np.testing.assert_array_equal(take_positions(ids, positions, MISSING_ID), [[11, 10, -1]])


def test_merge_of_no_shards_is_an_error():
    with pytest.raises(ValueError, match="at least one shard"):
        merge_topk([], [], 3)
