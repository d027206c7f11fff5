"""User vectors: recency weights, weighted history means, the cold-start blend."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tastebud.embed.users import (
    UserVectorConfig, blend_user_vector, history_vector, normalize, popularity_weight, recency_weights,
)
from tastebud.errors import InvalidInputError


def test_recency_weights_known_values():
    np.testing.assert_allclose(recency_weights(4, 1.0), [0.125, 0.25, 0.5, 1.0])
    np.testing.assert_allclose(recency_weights(3, 2.0), [0.5, math.sqrt(0.5), 1.0], rtol=1e-6)
    assert recency_weights(0, 20.0).shape == (0,)
    assert recency_weights(5, 20.0).dtype == np.float32


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 200), half_life=st.integers(1, 50))
def test_recency_weights_last_is_one_and_halve_every_half_life(n, half_life):
    w = recency_weights(n, float(half_life))
    assert w[-1] == 1.0
    assert np.all(np.diff(w) >= 0)  # older never counts more
    normal = w > 1e-30  # float32 underflows to 0 for very old positions; elsewhere strictly less
    assert np.all(np.diff(w[normal]) > 0)
    np.testing.assert_allclose(w[normal][:-1] / w[normal][1:], 0.5 ** (1 / half_life), rtol=1e-4)
    if n > half_life:
        assert w[-1 - half_life] == pytest.approx(0.5, rel=1e-6)
    if n > 2 * half_life:
        assert w[-1 - 2 * half_life] == pytest.approx(0.25, rel=1e-6)


def test_history_vector_is_the_normalised_weighted_mean():
    items = np.eye(3, dtype=np.float32)  # oldest first
    # half_life 1: recency weights 0.25, 0.5, 1
    np.testing.assert_allclose(history_vector(items, 1.0), np.array([0.25, 0.5, 1.0]) / math.sqrt(1.3125), rtol=1e-6)
    # event weights multiply the recency weights: 2*0.25, 1*0.5, 1*1
    weights = np.array([2.0, 1.0, 1.0], dtype=np.float32)
    np.testing.assert_allclose(history_vector(items, 1.0, weights), np.array([0.5, 0.5, 1.0]) / math.sqrt(1.5),
                               rtol=1e-6)


def test_history_vector_of_repeated_item_is_that_item(rng):
    v = normalize(rng.standard_normal(8).astype(np.float32))
    np.testing.assert_allclose(history_vector(np.tile(v, (5, 1)), 3.0), v, rtol=1e-5)


def test_history_vector_with_arbitrary_vectors(rng):
    items = rng.standard_normal((6, 4)).astype(np.float32)
    w = 0.5 ** (np.arange(5, -1, -1) / 2.0)
    expected = (w[:, None] * items).sum(axis=0)
    expected /= np.linalg.norm(expected)
    out = history_vector(items, 2.0)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert out.dtype == np.float32 and np.linalg.norm(out) == pytest.approx(1.0, abs=1e-6)


def test_empty_history_is_the_zero_vector():
    out = history_vector(np.zeros((0, 5), dtype=np.float32), 20.0)
    assert out.shape == (5,) and out.dtype == np.float32 and not out.any()
    assert not normalize(np.zeros(3, dtype=np.float32)).any()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_blend_moves_from_the_prior_to_the_personal_vector():
    personal = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    prior = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    config = UserVectorConfig(prior_strength=2.0)
    np.testing.assert_allclose(blend_user_vector(personal, 0, prior, None, config), prior)
    # n == prior_strength: equal parts
    assert cosine(blend_user_vector(personal, 2, prior, None, config), personal) == pytest.approx(1 / math.sqrt(2))
    cosines = [cosine(blend_user_vector(personal, n, prior, None, config), personal) for n in range(0, 60)]
    assert all(b > a for a, b in zip(cosines, cosines[1:]))
    assert cosines[0] == pytest.approx(0.0, abs=1e-7) and cosines[-1] > 0.999
    for n in (0, 1, 10):
        assert np.linalg.norm(blend_user_vector(personal, n, prior, None, config)) == pytest.approx(1.0, abs=1e-6)


def test_blend_with_no_prior_strength_is_personal_at_once():
    personal = np.array([0.6, 0.8], dtype=np.float32)
    prior = np.array([1.0, 0.0], dtype=np.float32)
    out = blend_user_vector(personal, 1, prior, None, UserVectorConfig(prior_strength=0.0))
    np.testing.assert_allclose(out, personal, rtol=1e-6)


def test_a_stated_taste_is_the_anchor_instead_of_the_prior():
    personal = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    prior = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    other_prior = np.array([0.0, -1.0, 0.0], dtype=np.float32)
    taste = np.array([0.0, 0.0, 1.0], dtype=np.float32)
    config = UserVectorConfig(prior_strength=2.0, taste_weight=0.0)
    # A cold user with a stated taste gets exactly that taste; the popularity prior plays no part.
    np.testing.assert_allclose(blend_user_vector(personal, 0, prior, taste, config), taste)
    for n in (0, 1, 5):
        np.testing.assert_allclose(blend_user_vector(personal, n, prior, taste, config),
                                   blend_user_vector(personal, n, other_prior, taste, config))
    # With taste_weight 0 the taste is only the anchor: personal share n / (n + prior_strength).
    np.testing.assert_allclose(blend_user_vector(personal, 2, prior, taste, config),
                               normalize(0.5 * personal + 0.5 * taste), rtol=1e-6)


def test_taste_weight_keeps_a_stated_taste_counting():
    personal = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    prior = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    taste = np.array([0.0, 0.0, 1.0], dtype=np.float32)
    pulls = [cosine(blend_user_vector(personal, 100, prior, taste, UserVectorConfig(taste_weight=w)), taste)
             for w in (0.0, 0.5, 1.0, 4.0)]
    assert all(b > a for a, b in zip(pulls, pulls[1:])), pulls
    for w in (0.0, 1.0, 4.0):
        out = blend_user_vector(personal, 100, prior, taste, UserVectorConfig(taste_weight=w))
        assert np.linalg.norm(out) == pytest.approx(1.0, abs=1e-6)


def test_popularity_weight_fades_with_history():
    config = UserVectorConfig(prior_strength=2.0)
    weights = [popularity_weight(n, config) for n in range(50)]
    assert weights[0] == 1.0 and weights[2] == pytest.approx(0.5)
    assert all(b < a for a, b in zip(weights, weights[1:]))
    assert popularity_weight(5, UserVectorConfig(prior_strength=0.0)) == 0.0
    assert popularity_weight(0, UserVectorConfig(prior_strength=0.0)) == 0.0


@pytest.mark.parametrize("kwargs, key", [
    ({"half_life": 0.0}, "half_life"), ({"half_life": -1.0}, "half_life"), ({"half_life": float("nan")}, "half_life"),
    ({"prior_strength": -0.5}, "prior_strength"), ({"taste_weight": -1.0}, "taste_weight"),
])
def test_bad_config_is_refused_naming_the_key(kwargs, key):
    with pytest.raises(InvalidInputError, match=key):
        UserVectorConfig(**kwargs)
