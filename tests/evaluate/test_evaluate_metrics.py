"""score_lists equals score.py's score(); ann_recall against a set-based reference."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tastebud.evaluate import ann_recall, score_lists

FAST = settings(max_examples=50, deadline=None)


def random_case(rng: np.random.Generator, n_users: int = 300, n_items: int = 60):
    """Test sets of 1..25 items; lists of 0..14 items, some users without one, extra users."""
    items = [f"i{j}" for j in range(n_items)] + ["not-in-catalog"]
    test = {f"u{u}": set(rng.choice(n_items, int(rng.integers(1, 26)), replace=False).astype(str).tolist())
            for u in range(n_users)}
    test = {u: {f"i{j}" for j in s} for u, s in test.items()}
    recs: dict[str, list[str]] = {}
    for u in range(n_users + 20):  # 20 users have a list but no test set: they do not count
        draw = rng.random()
        if draw < 0.1:
            continue  # no list at all
        length = 0 if draw < 0.15 else int(rng.integers(1, 15))
        recs[f"u{u}"] = [items[j] for j in rng.choice(len(items), length, replace=False)]
    return test, recs


@pytest.mark.parametrize("seed", range(5))
def test_score_lists_equals_reference(reference: ModuleType, seed: int) -> None:
    test, recs = random_case(np.random.default_rng(seed))
    for n_items in (None, 0, 61, 1000):
        mine = score_lists(test, recs, n_items)
        theirs = reference.score(test, recs, n_items)
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            assert mine[key] == pytest.approx(value, abs=1e-9, rel=0)
        assert mine == theirs  # in fact to the last bit
    lists = {u: sorted(s) for u, s in test.items()}  # lists as test sets score the same
    assert score_lists(lists, recs, 61) == reference.score(test, recs, 61)


def test_score_lists_known_values() -> None:
    test = {"a": {"x", "y"}, "b": {"z"}, "c": {"q"}}
    recs = {"a": ["y", "w", "x"], "b": ["w"], "d": ["q"]}
    result = score_lists(test, recs, n_items=10)
    ndcg_a = (1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3))
    assert result["users"] == 3 and result["users_without_list"] == 1
    assert result["recall@10"] == pytest.approx(1 / 3)
    assert result["ndcg@10"] == pytest.approx(ndcg_a / 3)
    assert result["coverage@10"] == pytest.approx(3 / 10)  # y, w, x: d is not a test user
    assert score_lists(test, recs, None, k=1)["recall@1"] == pytest.approx(1 / 3)
    assert score_lists({}, {}, 5) == {"users": 0, "users_without_list": 0, "recall@10": 0.0,
                                      "ndcg@10": 0.0, "coverage@10": 0.0}


def test_duplicates_and_empty_test_sets_are_errors(reference: ModuleType) -> None:
    with pytest.raises(ValueError, match="user 'b'"):
        score_lists({"a": {"x"}, "b": {"x"}}, {"b": ["x", "y", "x"]}, None)
    with pytest.raises(SystemExit):
        reference.score({"b": {"x"}}, {"b": ["x", "y", "x"]}, None)
    long_list = [f"i{j}" for j in range(10)] + ["i0"]  # the repeat is past k: not counted
    assert score_lists({"a": {"i0"}}, {"a": long_list}, None) == reference.score({"a": {"i0"}}, {"a": long_list}, None)
    with pytest.raises(ValueError, match="user 'a': empty test set"):
        score_lists({"a": set()}, {}, None)
    with pytest.raises(ValueError, match="k must be"):
        score_lists({}, {}, None, k=0)


def test_ann_recall_known_values() -> None:
    exact = np.array([[1, 2, 3, 4], [5, 6, -1, -1], [-1, -1, -1, -1]])
    approx = np.array([[4, 3, 9, -1], [6, 6, 7, -1], [1, 2, 3, 4]])
    assert ann_recall(approx, exact) == pytest.approx((2 / 4 + 1 / 2) / 2)  # row 3 left out
    assert ann_recall(exact[:2], exact[:2]) == 1.0
    assert ann_recall(np.full((2, 3), -1), exact[:2]) == 0.0
    assert ann_recall(np.array([[1, 1]]), np.array([[1, 1, 2]])) == pytest.approx(0.5)  # repeats once
    with pytest.raises(ValueError, match="every exact row is empty"):
        ann_recall(approx[2:], exact[2:])
    with pytest.raises(ValueError, match="same q"):
        ann_recall(approx[:1], exact)


@FAST
@given(q=st.integers(1, 30), ka=st.integers(1, 12), ke=st.integers(1, 12), seed=st.integers(0, 2**32 - 1),
       block=st.sampled_from([1, 4096]))
def test_ann_recall_equals_a_set_reference(q, ka, ke, seed, block) -> None:
    rng = np.random.default_rng(seed)
    approx = rng.integers(-1, 15, (q, ka))
    exact = rng.integers(-1, 15, (q, ke))
    exact[0, 0] = 3  # at least one scored query
    ratios = []
    for a, e in zip(approx.tolist(), exact.tolist(), strict=True):
        wanted = set(e) - {-1}
        if wanted:
            ratios.append(len(wanted & (set(a) - {-1})) / len(wanted))
    assert ann_recall(approx, exact, block=block) == pytest.approx(float(np.mean(ratios)), abs=1e-12)
