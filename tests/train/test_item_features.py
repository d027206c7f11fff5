"""Catalog facts as item-tower inputs: attribute-value columns and release-year bins."""

from __future__ import annotations

import numpy as np
import pytest

from tastebud.errors import InvalidInputError
from tastebud.index.filters import NO_YEAR
from tastebud.train.item_features import attribute_values, catalog_features, year_bin_columns


def test_attribute_values_become_unit_norm_multi_hot_columns():
    attributes = {"genres": [("drama",), ("drama", "comedy"), ("comedy",), ()]}
    features = catalog_features(attributes, np.full(4, NO_YEAR, np.int32), min_items=1)
    assert features.shape == (4, 2)  # no year known: no year columns
    columns = attribute_values(attributes, min_items=1, max_values=10)
    drama, comedy = columns.index(("genres", "drama")), columns.index(("genres", "comedy"))
    np.testing.assert_allclose(features[0, [drama, comedy]], [1.0, 0.0])
    np.testing.assert_allclose(features[1, [drama, comedy]], [2 ** -0.5, 2 ** -0.5])
    np.testing.assert_allclose(features[3], 0.0)  # an item without values has an empty block


def test_rare_values_are_dropped_and_the_most_frequent_kept_in_a_fixed_order():
    attributes = {"genres": [("a", "b")] * 3 + [("c",)] * 5 + [("rare",)],
                  "language": [("a",)] * 4 + [()] * 5}
    kept = attribute_values(attributes, min_items=3, max_values=3)
    # counts: c 5, language a 4, genres a 3, genres b 3 (ties by name); "rare" is on one item
    assert kept == [("genres", "c"), ("language", "a"), ("genres", "a")]
    assert attribute_values(attributes, min_items=3, max_values=3) == kept
    # the same value under two attributes is two columns
    assert len(attribute_values(attributes, min_items=1, max_values=100)) == 5


def test_years_fall_into_decile_bins_and_unknown_years_into_their_own_column():
    years = np.array([1950, 1960, 1970, 1980, 1990, 2000, 2010, 2020, 1999, NO_YEAR], dtype=np.int32)
    columns = year_bin_columns(years, bins=4)
    assert columns.shape == (10, 5)
    np.testing.assert_allclose(columns.sum(axis=1), 1.0)  # one-hot
    bins = columns.argmax(axis=1)
    assert bins[-1] == 4  # unknown
    known = np.argsort(years[:-1])
    assert np.all(np.diff(bins[:-1][known]) >= 0)  # later years never fall in an earlier bin
    assert bins[0] == 0 and bins[7] == 3  # the oldest and the newest at the two ends


def test_a_catalog_without_attributes_or_years_gets_no_columns_and_one_year_gets_one_bin():
    assert catalog_features({}, np.full(3, NO_YEAR, np.int32)).shape == (3, 0)
    assert catalog_features({}, np.zeros(0, np.int32)).shape == (0, 0)
    same_year = year_bin_columns(np.array([2000, 2000], np.int32), bins=10)
    assert same_year.shape == (2, 11) and np.array_equal(same_year[0], same_year[1])


def test_each_attribute_weighs_the_same_whatever_its_number_of_values():
    """Many tags do not drown one genre: each attribute's part of a row has unit norm."""
    tags = tuple(f"tag{i}" for i in range(50))
    attributes = {"genres": [("drama",), ("comedy",)], "tags": [tags, tags[:2]]}
    features = catalog_features(attributes, np.full(2, NO_YEAR, np.int32), min_items=1)
    columns = attribute_values(attributes, min_items=1, max_values=100)
    genre = [c for c, (name, _) in enumerate(columns) if name == "genres"]
    tag = [c for c, (name, _) in enumerate(columns) if name == "tags"]
    np.testing.assert_allclose(np.linalg.norm(features[:, genre], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(features[:, tag], axis=1), 1.0, rtol=1e-6)


def test_attribute_values_for_another_number_of_items_are_refused():
    with pytest.raises(InvalidInputError, match="attribute 'genres' has values for 2 items, the catalog 3"):
        catalog_features({"genres": [("a",), ("b",)]}, np.full(3, 2000, np.int32))
