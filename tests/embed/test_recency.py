"""Recency weights of the user tower."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tastebud.embed.user_tower import recency_weights


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
