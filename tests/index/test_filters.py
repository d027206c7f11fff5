"""Item filters as boolean masks: known answers on a hand-made table, a reference model, subsets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tastebud.errors import InvalidInputError
from tastebud.index.filters import NO_YEAR, ItemFilter, ItemTable

# item:         0          1                    2          3        4           5
YEARS = [1999, 2005, NO_YEAR, 2010, 1985, 2005]
GENRES = [("drama",), ("comedy", "drama"), ("horror",), (), ("comedy",), ("sci-fi", "horror")]
LANGUAGE = [("en",), ("fr",), ("en",), ("en",), (), ("de",)]


@pytest.fixture
def table() -> ItemTable:
    return ItemTable(np.array(YEARS, dtype=np.int32), {"genres": GENRES, "language": LANGUAGE})


def rows(mask: np.ndarray) -> list[int]:
    return np.flatnonzero(mask).tolist()


def f(include=(), exclude=(), year_min=None, year_max=None) -> ItemFilter:
    as_clauses = lambda cs: tuple((name, frozenset(values)) for name, values in cs)  # noqa: E731
    return ItemFilter(as_clauses(include), as_clauses(exclude), year_min, year_max)


@pytest.mark.parametrize("item_filter, expected", [
    (None, [0, 1, 2, 3, 4, 5]),
    (ItemFilter(), [0, 1, 2, 3, 4, 5]),
    (f(include=[("genres", {"comedy"})]), [1, 4]),
    (f(include=[("genres", {"comedy", "horror"})]), [1, 2, 4, 5]),  # any of the listed values
    (f(include=[("genres", {"drama"}), ("genres", {"comedy"})]), [1]),  # every clause: multi-valued item
    (f(include=[("genres", {"drama"}), ("language", {"en"})]), [0]),
    (f(include=[("genres", {"western"})]), []),  # a value no item has
    (f(exclude=[("genres", {"drama"})]), [2, 3, 4, 5]),
    (f(exclude=[("genres", {"drama", "horror"})]), [3, 4]),
    (f(exclude=[("language", {"en"})]), [1, 4, 5]),  # no language at all is not "en"
    (f(exclude=[("genres", {"western"})]), [0, 1, 2, 3, 4, 5]),
    (f(include=[("genres", {"horror"})], exclude=[("genres", {"sci-fi"})]), [2]),
    (f(year_min=2000), [1, 3, 5]),
    (f(year_max=2000), [0, 4]),
    (f(year_min=2005, year_max=2005), [1, 5]),
    (f(year_min=1900, year_max=2100), [0, 1, 3, 4, 5]),  # item 2 has no year: fails any bound
    (f(include=[("genres", {"horror"})], year_min=1900), [5]),
    (f(include=[("language", {"en"})], year_max=2009), [0]),
])
def test_masks_on_a_hand_made_table(table, item_filter, expected):
    mask = table.mask(item_filter)
    assert mask.dtype == np.bool_ and mask.shape == (6,)
    assert rows(mask) == expected


def test_empty_filter_is_empty():
    assert ItemFilter().is_empty()
    assert not f(year_min=0).is_empty()
    assert not f(exclude=[("genres", {"drama"})]).is_empty()


def test_values_lists_every_value_sorted(table):
    assert table.values("genres") == ["comedy", "drama", "horror", "sci-fi"]
    assert table.values("nope") == []
    assert table.attribute_names == ("genres", "language")


@pytest.mark.parametrize("item_filter, message", [
    (f(include=[("mood", {"sad"})]), "filter.include[0].attribute"),
    (f(include=[("genres", {"drama"}), ("mood", {"sad"})]), "filter.include[1].attribute"),
    (f(exclude=[("mood", {"sad"})]), "filter.exclude[0].attribute"),
    (f(include=[("genres", set())]), "filter.include[0].values"),
    (f(year_min=2010, year_max=2000), "filter.year_min (2010) is greater than filter.year_max (2000)"),
])
def test_check_names_the_bad_field(table, item_filter, message):
    with pytest.raises(InvalidInputError) as info:
        table.check(item_filter)
    assert message in str(info.value)


def test_check_names_unknown_attribute_and_the_known_ones(table):
    with pytest.raises(InvalidInputError, match=r"request\.filter\.include\[0\]\.attribute: unknown attribute 'mood' "
                                                r"\(filterable: genres, language\)"):
        table.check(f(include=[("mood", {"sad"})]), field="request.filter")


def test_check_accepts_valid_filters(table):
    table.check(f(include=[("genres", {"western"})], year_min=2000, year_max=2000))
    table.check(ItemFilter())


def test_attribute_rows_must_match_items():
    with pytest.raises(ValueError, match="'genres' has 2 rows, expected 3"):
        ItemTable(np.array([1, 2, 3], dtype=np.int32), {"genres": [("a",), ("b",)]})


# A reference model of the documented semantics, item by item, and random tables to compare on.
VOCAB = ["a", "b", "c", "d"]
values_st = st.frozensets(st.sampled_from(VOCAB), min_size=1, max_size=3)
clause_st = st.tuples(st.sampled_from(["g", "h"]), values_st)
year_st = st.one_of(st.just(int(NO_YEAR)), st.integers(1990, 2000))
bound_st = st.one_of(st.none(), st.integers(1988, 2002))


@st.composite
def tables_and_filters(draw):
    n = draw(st.integers(0, 25))
    years = draw(st.lists(year_st, min_size=n, max_size=n))
    item_values = st.lists(st.sampled_from(VOCAB), max_size=3).map(tuple)  # may be empty or repeat a value
    attrs = {name: draw(st.lists(item_values, min_size=n, max_size=n)) for name in ("g", "h")}
    item_filter = ItemFilter(tuple(draw(st.lists(clause_st, max_size=2))), tuple(draw(st.lists(clause_st, max_size=2))),
                             draw(bound_st), draw(bound_st))
    return years, attrs, item_filter


def reference_mask(years, attrs, item_filter: ItemFilter) -> list[bool]:
    out = []
    for i, year in enumerate(years):
        ok = all(set(attrs[name][i]) & values for name, values in item_filter.include)
        ok = ok and not any(set(attrs[name][i]) & values for name, values in item_filter.exclude)
        if item_filter.year_min is not None or item_filter.year_max is not None:
            ok = ok and year != NO_YEAR
            ok = ok and (item_filter.year_min is None or year >= item_filter.year_min)
            ok = ok and (item_filter.year_max is None or year <= item_filter.year_max)
        out.append(bool(ok))
    return out


@settings(max_examples=50, deadline=None)
@given(case=tables_and_filters())
def test_mask_matches_a_reference_model(case):
    years, attrs, item_filter = case
    table = ItemTable(np.array(years, dtype=np.int32), attrs)
    assert table.mask(item_filter).tolist() == reference_mask(years, attrs, item_filter)


@settings(max_examples=50, deadline=None)
@given(case=tables_and_filters(), data=st.data())
def test_subset_mask_equals_full_mask_restricted(case, data):
    years, attrs, item_filter = case
    table = ItemTable(np.array(years, dtype=np.int32), attrs)
    picked = data.draw(st.lists(st.integers(0, max(len(years) - 1, 0)), unique=True, max_size=len(years)))
    subset_rows = np.array(picked, dtype=np.int64)
    sub = table.subset(subset_rows)
    assert len(sub) == len(subset_rows)
    np.testing.assert_array_equal(sub.mask(item_filter), table.mask(item_filter)[subset_rows])
    np.testing.assert_array_equal(sub.years, table.years[subset_rows])
    assert sub.attribute_names == table.attribute_names
