"""The serving user tower: weighted means with known answers, the [u, 1] query, taste, files, the content model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tastebud.embed.user_tower import (
    CONTENT_HALF_LIFE, CONTENT_HISTORY, CONTENT_POPULARITY_WEIGHT, UserTower, content_index_vectors, content_tower,
)


def tower(weights=(1.0, 0.5, 0.25), projection=None, normalize=False, taste_weight=1.0) -> UserTower:
    """``weights[0]`` weighs the most recent history item."""
    return UserTower(np.array(weights, np.float32), projection, normalize, taste_weight)


def test_user_vector_is_the_recency_weighted_mean_oldest_first():
    old, mid, new = np.eye(3, dtype=np.float32)
    t = tower()
    np.testing.assert_allclose(t.weights_for(3), [0.25, 0.5, 1.0])
    np.testing.assert_allclose(t.weights_for(2), [0.5, 1.0])  # a short history: the most recent weights
    np.testing.assert_allclose(t.user_vector(np.stack([old, mid, new])), [0.25 / 1.75, 0.5 / 1.75, 1.0 / 1.75],
                               rtol=1e-6)
    np.testing.assert_allclose(t.user_vector(np.stack([mid, new])), [0.0, 0.5 / 1.5, 1.0 / 1.5], rtol=1e-6)
    events = np.array([4.0, 1.0], np.float32)  # the older event counts 4x (a play, not a view)
    np.testing.assert_allclose(t.user_vector(np.stack([mid, new]), events), [0.0, 2.0 / 3.0, 1.0 / 3.0], rtol=1e-6)
    assert t.user_vector(np.stack([old, new])).dtype == np.float32


def test_no_history_gives_u_zero_and_the_prior_alone():
    t = tower()
    u = t.user_vector(np.zeros((0, 4), np.float32))
    assert u.tolist() == [0.0] * 4 and u.dtype == np.float32
    np.testing.assert_array_equal(t.query(u), [0, 0, 0, 0, 1])
    items = np.array([[3.0, 0, 0, 0, 0.1], [-5.0, 1, 0, 0, 0.7]], np.float32)  # [p_j, b_j]
    assert (items @ t.query(u)).tolist() == pytest.approx([0.1, 0.7])  # the priors b_j, nothing else
    assert t.user_vector(np.ones((1, 4), np.float32), np.zeros(1, np.float32)).tolist() == [0.0] * 4


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3), d=st.integers(1, 6))
def test_query_times_item_is_preference_plus_prior(seed, n, d):
    rng = np.random.default_rng(seed)
    t = tower()
    u = t.user_vector(rng.standard_normal((n, d)).astype(np.float32))
    p, b = rng.standard_normal((5, d)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    q = t.query(u)
    assert q.shape == (d + 1,) and q[-1] == 1.0 and q.dtype == np.float32
    np.testing.assert_allclose(np.concatenate([p, b[:, None]], axis=1) @ q, p @ u + b, rtol=1e-5, atol=1e-5)


def test_a_taste_joins_as_pseudo_items_through_the_projection():
    projection = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]], np.float32)  # text (3-d) -> query space (2-d)
    taste = np.array([1.0, 1.0, 5.0], np.float32)  # projects to [1, 2]
    t = tower(weights=(1.0,), projection=projection, taste_weight=3.0)
    np.testing.assert_allclose(t.user_vector(np.zeros((0, 2), np.float32), taste=taste), [1.0, 2.0])  # taste alone
    history = np.array([[4.0, 0.0]], np.float32)
    np.testing.assert_allclose(t.user_vector(history, taste=taste), [(4.0 + 3.0) / 4.0, 6.0 / 4.0])
    text_space = tower(weights=(1.0,), projection=None, normalize=True)  # content model: taste used as is
    np.testing.assert_allclose(text_space.user_vector(np.zeros((0, 3), np.float32), taste=taste),
                               taste / np.linalg.norm(taste), rtol=1e-6)


def test_normalize_makes_unit_vectors_and_keeps_zero():
    t = tower(normalize=True)
    u = t.user_vector(np.array([[3.0, 4.0]], np.float32))
    np.testing.assert_allclose(u, [0.6, 0.8], rtol=1e-6)
    assert t.user_vector(np.zeros((0, 2), np.float32)).tolist() == [0.0, 0.0]
    assert t.user_vector(np.zeros((1, 2), np.float32)).tolist() == [0.0, 0.0]  # mass, but a zero mean


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3))
def test_contributions_add_up_to_the_preference_score(seed, n):
    """contributions[m, k]: what history item k adds to item m's score; the sum is p_m . (w @ V)."""
    rng = np.random.default_rng(seed)
    t = tower()
    history = rng.standard_normal((n, 4)).astype(np.float32)
    items = rng.standard_normal((6, 4)).astype(np.float32)
    share = t.contributions(history, items)
    assert share.shape == (6, n)
    np.testing.assert_allclose(share.sum(1), items @ (t.weights_for(n) @ history), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(share.sum(1) / t.weights_for(n).sum(), items @ t.user_vector(history),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("projection", [None, np.arange(6, dtype=np.float32).reshape(3, 2)])
def test_save_and_load_round_trip(tmp_path, projection):
    saved = tower(projection=projection, normalize=projection is None, taste_weight=0.75)
    path = tmp_path / "user_tower.npz"
    saved.save(path)
    with np.load(path, allow_pickle=False) as data:  # plain arrays only, nothing pickled
        assert set(data.files) == {"recency_weights", "normalize", "taste_weight"} | \
            (set() if projection is None else {"text_projection"})
    loaded = UserTower.load(path)
    np.testing.assert_array_equal(loaded.recency_weights, saved.recency_weights)
    assert loaded.recency_weights.dtype == np.float32
    if projection is None:
        assert loaded.text_projection is None
    else:
        np.testing.assert_array_equal(loaded.text_projection, projection)
    assert (loaded.normalize, loaded.taste_weight) == (saved.normalize, 0.75)


def test_the_content_tower_halves_every_20_interactions():
    t = content_tower()
    assert t.history_length == CONTENT_HISTORY == 200 and CONTENT_HALF_LIFE == 20.0
    assert t.recency_weights[0] == 1.0 and t.recency_weights[20] == pytest.approx(0.5, rel=1e-6)
    assert t.recency_weights[40] == pytest.approx(0.25, rel=1e-6)
    assert np.all(np.diff(t.recency_weights) < 0)
    assert t.normalize and t.text_projection is None


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, CONTENT_HISTORY))
def test_the_content_tower_is_the_normalised_history_vector(seed, n):
    """The content model's user is the normalised recency-weighted mean of the history."""
    history = np.random.default_rng(seed).standard_normal((n, 8)).astype(np.float32)
    weights = 0.5 ** (np.arange(n - 1, -1, -1) / CONTENT_HALF_LIFE)  # most recent weighs 1
    mean = weights @ history.astype(np.float64)
    np.testing.assert_allclose(content_tower().user_vector(history), mean / np.linalg.norm(mean),
                               rtol=1e-5, atol=1e-6)


def test_content_index_vectors_carry_a_small_log_popularity_prior():
    text = np.eye(4, dtype=np.float32)
    popularity = np.array([0.0, 1.0, 9.0, 99.0], np.float32)
    vectors = content_index_vectors(text, popularity)
    assert vectors.shape == (4, 5) and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors[:, :4], text)
    np.testing.assert_allclose(vectors[:, 4], CONTENT_POPULARITY_WEIGHT * np.log1p(popularity) / np.log1p(99.0),
                               rtol=1e-6)
    assert vectors[0, 4] == 0.0 and vectors[3, 4] == pytest.approx(0.05)
    nobody = content_index_vectors(text, np.zeros(4, np.float32))  # no interactions yet: no prior, no NaN
    assert np.all(nobody[:, 4] == 0.0)
    assert content_index_vectors(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)).shape == (0, 5)


def test_an_ensemble_tower_is_its_members_side_by_side():
    """Recency weights [K, L]: each block of the query-side vectors is pooled by its own row,
    with the same event weights and taste, and the contributions add up over the members."""
    rng = np.random.default_rng(4)
    w = rng.uniform(0.1, 2.0, size=(2, 4)).astype(np.float32)
    projection = rng.normal(size=(5, 6)).astype(np.float32)  # 2 members x 3 dims
    both = UserTower(w, projection, normalize=False, taste_weight=0.7)
    alone = [UserTower(w[k], projection[:, 3 * k:3 * k + 3], normalize=False, taste_weight=0.7) for k in range(2)]
    history = rng.normal(size=(3, 6)).astype(np.float32)
    events = np.array([2.0, 1.0, 0.5], np.float32)
    taste = rng.normal(size=5).astype(np.float32)
    assert both.members == 2 and both.history_length == 4
    expected = np.concatenate([t.user_vector(history[:, 3 * k:3 * k + 3], events, taste) for k, t in enumerate(alone)])
    np.testing.assert_allclose(both.user_vector(history, events, taste), expected, rtol=1e-5)
    items = rng.normal(size=(7, 6)).astype(np.float32)
    expected_contributions = sum(t.contributions(history[:, 3 * k:3 * k + 3], items[:, 3 * k:3 * k + 3])
                                 for k, t in enumerate(alone))
    np.testing.assert_allclose(both.contributions(history, items), expected_contributions, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both.weights_for(2), w[:, :2][:, ::-1].mean(0), rtol=1e-6)
