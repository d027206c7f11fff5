"""String ids -> order-keeping integer codes, and the (user, timestamp, item) order check."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tastebud.evaluate.codes import canonical, factorize
from tastebud.ingest.model import InteractionLog

FAST = settings(max_examples=60, deadline=None)
IDS = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20)


@FAST
@given(st.lists(IDS, max_size=60))
def test_factorize_keeps_pythons_string_order(values) -> None:
    codes, uniques = factorize(np.array(values, dtype=np.str_))
    assert uniques.tolist() == sorted(set(values))
    assert uniques[codes].tolist() == values


def test_factorize_on_each_packing() -> None:
    for values in (["10", "9", "1", "10", ""], ["é", "e", "ÿ"], ["Ω", "日本", "a"], ["😀", "a😀", "a"],
                   ["a-very-long-identifier-2", "a-very-long-identifier-10", "a"]):
        codes, uniques = factorize(np.array(values))
        assert uniques.tolist() == sorted(set(values))
        assert uniques[codes].tolist() == values
    codes, uniques = factorize(np.array([], dtype=np.str_))
    assert codes.shape == (0,) and uniques.shape == (0,)


def _log(users, times, items) -> InteractionLog:
    n = len(users)
    return InteractionLog(np.array(users, dtype=np.str_), np.array(items, dtype=np.str_),
                          np.array(times, dtype=np.float64), np.ones(n, np.float32),
                          np.full(n, ""), np.arange(n, dtype=np.float32))


def test_canonical_keeps_an_ordered_log_and_sorts_others() -> None:
    ordered = _log(["a", "a", "a", "b"], [1.0, 2.0, 2.0, 0.0], ["z", "10", "9", "x"])
    log, codes = canonical(ordered)
    assert log is ordered and codes.tolist() == [0, 0, 0, 1]
    swapped = _log(["a", "a", "a", "b"], [1.0, 2.0, 2.0, 0.0], ["z", "9", "10", "x"])  # item tie-break
    log, codes = canonical(swapped)
    assert log.item_ids.tolist() == ["z", "10", "9", "x"] and log.ratings.tolist() == [0, 2, 1, 3]
    backwards = _log(["b", "a"], [0.0, 5.0], ["x", "y"])
    log, codes = canonical(backwards)
    assert log.user_ids.tolist() == ["a", "b"] and codes.tolist() == [0, 1]
