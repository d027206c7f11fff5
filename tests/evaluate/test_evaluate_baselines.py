"""Baselines on tiny hand-made data sets with known answers, against direct references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tastebud.errors import InvalidInputError
from tastebud.evaluate import TooManyItemsError, ease, item_knn, most_popular, random_items
from tastebud.evaluate.user_items import UserItems, top_k

FAST = settings(max_examples=60, deadline=None)
ALL = (most_popular, random_items, item_knn, ease)


def rows_of(histories: dict[str, str]) -> list[tuple[str, str, float]]:
    """{"u1": "ABC"} -> u1 saw A, then B, then C."""
    return [(u, item, float(t)) for u, items in histories.items() for t, item in enumerate(items)]


# Popularity A=5 > B=4 > C=3 > D=2 > E=1 > F=0 (F only in the catalog): no ties.
NESTED = {"u1": "ABCDE", "u2": "ABCD", "u3": "ABC", "u4": "AB", "u5": "A"}
# Two blocks that never meet: {A, B, C} and {X, Y, Z}.
BLOCKS = {"u1": "ABC", "u2": "AB", "u3": "BC", "t": "A", "v1": "XYZ", "v2": "XY", "v3": "YZ", "v4": "XZ"}


@pytest.fixture
def nested(make_dataset):
    return make_dataset(rows_of(NESTED), extra_items=["F"])


@pytest.fixture
def blocks(make_dataset):
    return make_dataset(rows_of(BLOCKS))


def test_most_popular_known_answers(nested) -> None:
    recs = most_popular(nested, ["u5", "u3", "u1", "new"], k=3)
    assert recs == {"u5": ["B", "C", "D"], "u3": ["D", "E", "F"], "u1": ["F"], "new": ["A", "B", "C"]}
    assert most_popular(nested, ["u3"], k=3, exclude_seen=False) == {"u3": ["A", "B", "C"]}
    assert most_popular(nested, ["u4"], k=5, candidates=["F", "B", "D"]) == {"u4": ["D", "F"]}
    # An explicit history is excluded too, on top of the train items.
    assert most_popular(nested, ["u5", "new"], k=2, histories={"u5": ["B"], "new": ["A"]}) == {
        "u5": ["C", "D"], "new": ["B", "C"]}


def test_item_knn_known_answers(blocks) -> None:
    # A: users u1, u2, t; B: u1, u2, u3; C: u1, u3. cos(A,B) = 2/3, cos(A,C) = 1/sqrt(6).
    assert item_knn(blocks, ["t"], k=2) == {"t": ["B", "C"]}
    top = item_knn(blocks, ["t"], k=5)["t"]
    assert top[:2] == ["B", "C"] and set(top[2:]) == {"X", "Y", "Z"}
    # cos(C,B) = 2/sqrt(6) > cos(C,A): with one neighbour, C's only neighbour is B.
    assert item_knn(blocks, ["new"], k=1, neighbours=1, histories={"new": ["C"]}) == {"new": ["B"]}
    # Recency: the later history item's block comes first.
    recent_x = item_knn(blocks, ["n"], k=2, half_life=0.5, histories={"n": ["A", "X"]})["n"]
    recent_a = item_knn(blocks, ["n"], k=2, half_life=0.5, histories={"n": ["X", "A"]})["n"]
    assert set(recent_x) == {"Y", "Z"} and recent_a == ["B", "C"]
    assert item_knn(blocks, ["t"], k=3, candidates=["C", "Z"]) == {"t": ["C", "Z"]}


def test_ease_known_answers(blocks) -> None:
    # Weights from A (float64 by hand): l2=500 B 0.004, C 0.002, other block 0; l2=1 B 0.36, C 0.
    assert ease(blocks, ["t"], k=2) == {"t": ["B", "C"]}
    assert ease(blocks, ["t"], k=1, l2=1.0) == {"t": ["B"]}
    assert ease(blocks, ["n"], k=1, l2=1.0, histories={"n": ["Y"]})["n"][0] in {"X", "Z"}
    assert ease(blocks, ["t"], k=3, candidates=["C", "Z"]) == {"t": ["C", "Z"]}


def reference_scores(dataset, users, kind: str, **kw) -> tuple[UserItems, np.ndarray]:
    """Direct float64 formulas over the binary matrix (catalog order), no blocking or tricks."""
    data = UserItems.from_dataset(dataset)
    x = np.zeros((len(users), data.n_items))
    full = np.zeros((len(data.user_row), data.n_items))
    for user, r in data.user_row.items():
        full[r, data.seen(user)] = 1
    for n, user in enumerate(users):
        x[n, data.seen(user)] = 1
    gram = full.T @ full
    if kind == "ease":
        p = np.linalg.inv(gram + kw["l2"] * np.eye(data.n_items))
        b = -p / np.diag(p)[None, :]
        np.fill_diagonal(b, 0)
        return data, x @ b
    norms = np.sqrt(np.diag(gram))
    with np.errstate(divide="ignore", invalid="ignore"):
        sim = np.nan_to_num(gram / np.outer(norms, norms))
    np.fill_diagonal(sim, 0)
    for i in range(len(sim)):  # keep each row's top neighbours (ties: lower index)
        order = np.lexsort((np.arange(len(sim)), -sim[i]))
        sim[i, order[kw["neighbours"]:]] = 0
    return data, x @ sim


@pytest.mark.parametrize("kind", ["knn", "ease"])
def test_baselines_rank_by_the_reference_scores(make_dataset, kind: str) -> None:
    rng = np.random.default_rng(7)
    rows = [(f"u{rng.integers(40)}", f"i{rng.integers(30)}", float(t)) for t in range(400)]
    dataset = make_dataset(rows, extra_items=["cold"])
    users = sorted({u for u, _, _ in rows}) + ["new"]
    params = {"l2": 5.0} if kind == "ease" else {"neighbours": 7}
    recs = (ease if kind == "ease" else item_knn)(dataset, users, k=6, **params)
    data, scores = reference_scores(dataset, users, kind, **params)
    for n, user in enumerate(users):
        allowed = np.ones(data.n_items, bool)
        allowed[data.seen(user)] = False
        got = np.array([scores[n, data.item_index[i]] for i in recs[user]])
        best = np.sort(scores[n, allowed])[::-1][: len(got)]
        assert len(recs[user]) == min(6, allowed.sum())
        np.testing.assert_allclose(got, best, atol=1e-5)  # the k best scores, best first
        assert not set(recs[user]) & {data.item_ids[j] for j in data.seen(user)}


@pytest.mark.parametrize("baseline", ALL, ids=lambda f: f.__name__)
def test_ranking_invariants(make_dataset, baseline) -> None:
    rng = np.random.default_rng(3)
    rows = [(f"u{rng.integers(25)}", f"i{rng.integers(40)}", float(rng.integers(50))) for _ in range(300)]
    dataset = make_dataset(rows, extra_items=["c1", "c2", "c3"])
    data = UserItems.from_dataset(dataset)
    users = sorted({u for u, _, _ in rows}) + ["new"]
    recs = baseline(dataset, users, k=10)
    assert list(recs) == users
    for user, items in recs.items():
        seen = {data.item_ids[j] for j in data.seen(user)}
        assert len(items) == len(set(items)) == min(10, data.n_items - len(seen))
        assert not set(items) & seen
    assert recs == baseline(dataset, users, k=10)  # deterministic
    cold = baseline(dataset, users, k=10, candidates=["c1", "c2", "c3", "i0"])
    for user, items in cold.items():
        assert set(items) <= {"c1", "c2", "c3", "i0"} and len(items) == len(set(items))
    short = baseline(dataset, users, k=10, histories={u: ["i1", "i2"] for u in users})
    assert all(not {"i1", "i2"} & set(items) for items in short.values())


def test_errors_name_the_problem(blocks) -> None:
    for baseline in ALL:
        with pytest.raises(InvalidInputError, match="not in the catalog"):
            baseline(blocks, ["t"], k=2, histories={"t": ["nope"]})
        with pytest.raises(InvalidInputError, match="candidates: item 'nope'"):
            baseline(blocks, ["t"], k=2, candidates=["nope"])
        with pytest.raises(InvalidInputError, match="k must be"):
            baseline(blocks, ["t"], k=0)
    for baseline in (item_knn, ease):
        with pytest.raises(TooManyItemsError, match="6 items with interactions, more than max_items=5"):
            baseline(blocks, ["t"], max_items=5)
    with pytest.raises(InvalidInputError, match="l2"):
        ease(blocks, ["t"], l2=0)
    with pytest.raises(InvalidInputError, match="neighbours"):
        item_knn(blocks, ["t"], neighbours=0)


@FAST
@given(n_rows=st.integers(0, 6), width=st.integers(0, 12), k=st.integers(1, 15),
       seed=st.integers(0, 2**32 - 1))
def test_top_k_equals_a_full_sort(n_rows, width, k, seed) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(-2, 3, (n_rows, width)).astype(np.float32)  # many ties
    scores[rng.random((n_rows, width)) < 0.3] = -np.inf
    got = top_k(scores, k)
    assert len(got) == n_rows
    for row, cols in zip(scores, got, strict=True):
        order = np.lexsort((np.arange(width), -row))
        expected = [c for c in order.tolist() if row[c] > -np.inf][:k]
        assert cols.tolist() == expected
