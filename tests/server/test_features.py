"""The re-ranker's features against plain-Python references."""

from __future__ import annotations

from collections import Counter

import numpy as np

from tastebud.server.features import FEATURE_NAMES, ItemSignals, UserContext, candidate_features
from tastebud.train.item_item import cooccurrence_neighbours, ease_neighbours
from tastebud.train.ranker import attribute_codes


def world(rng, n=60):
    attrs = {"genres": [tuple(rng.choice(["a", "b", "c", "d"], size=rng.integers(0, 3), replace=False))
                        for _ in range(n)],
             "language": [(str(rng.choice(["en", "fr"])),) for _ in range(n)]}
    offsets, codes, n_codes = attribute_codes(attrs, n)
    sequences = [rng.choice(n, size=8, replace=False).astype(np.int64) for _ in range(30)]
    years = rng.integers(1990, 2020, n).astype(np.int32)
    return attrs, sequences, ItemSignals(rng.random(n).astype(np.float32) * 10, years, offsets, codes, n_codes,
                                         cooccurrence_neighbours(sequences, n, neighbours=10),
                                         ease_neighbours(sequences, n, neighbours=10, l2=5.0))


def test_features_match_plain_python(rng):
    attrs, sequences, signals = world(rng)
    history = np.array([1, 2, 3, 4, 5], dtype=np.int64)
    weights = np.array([0.2, 0.4, 0.6, 0.8, 1.0], dtype=np.float32)
    rows = np.arange(20, 40, dtype=np.int64)
    context = UserContext(history, weights, rng.normal(size=(5, 8)).astype(np.float32),
                          rng.normal(size=4).astype(np.float32))
    vectors = rng.normal(size=(20, 5)).astype(np.float32)
    text = rng.normal(size=(20, 8)).astype(np.float32)
    f = candidate_features(signals, context, rows, np.arange(20, dtype=np.float32), vectors, text)
    assert f.shape == (20, len(FEATURE_NAMES))
    preference = vectors[:, :-1] @ context.user_vector
    np.testing.assert_allclose(f[:, 1], (preference - preference.mean()) / preference.std(), rtol=1e-4, atol=1e-5)
    scores = np.arange(20, dtype=np.float64)
    np.testing.assert_allclose(f[:, 0], (scores - scores.mean()) / scores.std(), rtol=1e-5)
    np.testing.assert_allclose(f[:, 3], np.log1p(signals.popularity[rows]) - np.log1p(signals.popularity.max()),
                               rtol=1e-5)
    assert np.array_equal(f[:, 12], (signals.popularity[rows] > 0).astype(np.float32))
    np.testing.assert_allclose(f[:, 6], text @ context.history_text.mean(axis=0), rtol=1e-5)
    counts = Counter((name, v) for h in history.tolist() for name in sorted(attrs) for v in attrs[name][h])
    for i, r in enumerate(rows.tolist()):
        pairs = [(name, v) for name in sorted(attrs) for v in attrs[name][r]]
        expected = np.mean([counts[p] / len(history) for p in pairs]) if pairs else 0.0
        assert np.isclose(f[i, 7], expected)
        knn = sum(w * float(s) for h, w in zip(history.tolist(), weights / weights.sum())
                  for j, s in zip(signals.cooccurrence.ids[h], signals.cooccurrence.values[h]) if j == r)
        assert np.isclose(f[i, 4], knn, atol=1e-6)
        assert np.isclose(f[i, 5], max([float(s) for h in history.tolist()
                                         for j, s in zip(signals.cooccurrence.ids[h], signals.cooccurrence.values[h])
                                         if j == r], default=0.0))
    np.testing.assert_allclose(f[:, 9], signals.years[rows] - signals.years[history].mean(), atol=1e-3)  # float32


def test_neighbours_are_cosines_of_cooccurrence(rng):
    _, sequences, signals = world(rng)
    n = len(signals.popularity)
    matrix = np.zeros((len(sequences), n))
    for u, s in enumerate(sequences):
        matrix[u, s] = 1
    counts = matrix.T @ matrix
    norms = np.sqrt(np.diag(counts))
    for i in range(n):
        for j, s in zip(signals.cooccurrence.ids[i], signals.cooccurrence.values[i]):
            if j >= 0:
                assert j != i
                assert np.isclose(s, counts[i, j] / max(norms[i] * norms[j], 1e-9), atol=1e-6)
        assert np.all(np.diff(signals.cooccurrence.values[i]) <= 1e-7)


def test_a_user_without_history_gets_zero_history_features(rng):
    _, _, signals = world(rng)
    context = UserContext(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros((0, 8), np.float32),
                          np.zeros(4, np.float32))
    f = candidate_features(signals, context, np.arange(5, dtype=np.int64), np.ones(5, np.float32),
                           np.ones((5, 5), np.float32), np.ones((5, 8), np.float32))
    assert np.all(f[:, [4, 5, 6, 7, 13, 14]] == 0) and np.all(np.isnan(f[:, 9]))


def test_ease_features_are_sums_of_eases_weights_over_the_history(rng):
    """Features 13 and 14 against the dense EASE solution (Steck 2019) in float64."""
    _, sequences, _ = world(rng)
    n = 60
    x = np.zeros((len(sequences), n))
    for u, s in enumerate(sequences):
        x[u, s] = 1
    p = np.linalg.inv(x.T @ x + 5.0 * np.eye(n))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    table = ease_neighbours(sequences, n, neighbours=n, l2=5.0)  # every positive weight kept
    attrs, _, signals = world(np.random.default_rng(7))
    signals = ItemSignals(signals.popularity, signals.years, signals.code_offsets, signals.codes, signals.n_codes,
                          signals.cooccurrence, table)
    history = np.array([3, 8, 13], dtype=np.int64)
    weights = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    context = UserContext(history, weights, np.ones((3, 8), np.float32), np.ones(4, np.float32))
    rows = np.arange(20, 40, dtype=np.int64)
    f = candidate_features(signals, context, rows, np.zeros(20, np.float32), np.ones((20, 5), np.float32),
                           np.ones((20, 8), np.float32))
    positive = np.where(b > 0, b, 0.0)
    np.testing.assert_allclose(f[:, 13], positive[history][:, rows].sum(axis=0), rtol=1e-4, atol=1e-6)
    recency = (weights / weights.mean())[:, None]
    np.testing.assert_allclose(f[:, 14], (recency * positive[history][:, rows]).sum(axis=0), rtol=1e-4, atol=1e-6)
    assert (f[:, 13] > 0).any()


def test_neighbour_tables_are_empty_above_their_size_limit():
    sequences = [np.array([0, 1, 2], dtype=np.int64), np.array([1, 2], dtype=np.int64)]
    for table in (cooccurrence_neighbours(sequences, 3, neighbours=2, max_items=2),
                  ease_neighbours(sequences, 3, neighbours=2, max_items=2)):
        assert np.all(table.ids == -1) and np.all(table.values == 0)
    assert (ease_neighbours(sequences, 3, neighbours=2).ids >= 0).any()
