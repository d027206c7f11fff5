"""Ranking metrics of the offline protocol, computed as the reference ``score.py`` computes them.

``score_lists`` reproduces ``score.py score`` number for number: per test user Recall@k =
hits / min(k, |test|) and NDCG@k with binary gains (ideal DCG over min(k, |test|) hits), both
averaged over *test* users, a missing or empty list scoring 0; Coverage@k = distinct items
shown to test users / ``n_items``. The arithmetic is the reference's, operation for operation,
so the floats agree to the last bit, not only to the protocol's 1e-6.

``ann_recall`` measures an approximate index against exact search.
"""

from __future__ import annotations

import math
from typing import TypeVar
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import numpy.typing as npt

T = TypeVar("T")

K = 10
MISSING_ID = -1


def score_lists(
    test: Mapping[str, Collection[str]],
    recs: Mapping[str, Sequence[str]],
    n_items: int | None,
    k: int = K,
) -> dict[str, float | int]:
    """``{"users", "users_without_list", "recall@k", "ndcg@k"[, "coverage@k"]}`` over ``test``.

    ``test`` maps each test user to their relevant items (a set or a list; repeats count once);
    ``recs`` maps users to ranked lists, of which the first ``k`` count. Coverage is reported
    when ``n_items`` (the catalog size) is given and non-zero. Raises ``ValueError`` naming the
    user when a list repeats an item within its first ``k``, or a test set is empty.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    recall: list[float] = []
    ndcg: list[float] = []
    shown: set[str] = set()
    for user, items in test.items():
        relevant = set(items)
        if not relevant:
            raise ValueError(f"user {user!r}: empty test set")
        ranked = list(recs.get(user, ()))[:k]
        if len(set(ranked)) != len(ranked):
            raise ValueError(f"user {user!r}: duplicate items in the list")
        shown.update(ranked)
        user_recall, user_ndcg = list_metrics(ranked, relevant, k)
        recall.append(user_recall)
        ndcg.append(user_ndcg)
    result: dict[str, float | int] = {
        "users": len(test),
        "users_without_list": sum(1 for user in test if len(recs.get(user, ())) == 0),
        f"recall@{k}": float(np.mean(recall)) if recall else 0.0,
        f"ndcg@{k}": float(np.mean(ndcg)) if ndcg else 0.0,
    }
    if n_items:
        result[f"coverage@{k}"] = len(shown) / n_items
    return result


def list_metrics(ranked: Sequence[T], relevant: Collection[T], k: int = 10) -> tuple[float, float]:
    """(Recall@k, NDCG@k) of one ranked list against a non-empty relevant set; binary relevance,
    ideal DCG over min(k, |relevant|) hits, as the reference scorer computes them."""
    hits = [1.0 if item in relevant else 0.0 for item in list(ranked)[:k]]
    ideal = min(k, len(relevant))
    dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
    idcg = sum(1.0 / math.log2(r + 2) for r in range(ideal))
    return sum(hits) / ideal, dcg / idcg


def ann_recall(
    approx_ids: npt.NDArray[np.int64], exact_ids: npt.NDArray[np.int64], *, block: int = 4096
) -> float:
    """Mean over queries of |approx ∩ exact| / |exact|, ids int64[q, k] padded with -1.

    Padding is ignored and repeated ids count once; the two arrays may have different widths.
    Queries whose exact row is all padding are left out of the mean; ``ValueError`` when every
    query is, or when the row counts differ.
    """
    approx = np.asarray(approx_ids, dtype=np.int64)
    exact = np.asarray(exact_ids, dtype=np.int64)
    if approx.ndim != 2 or exact.ndim != 2 or len(approx) != len(exact):
        raise ValueError(
            f"ann_recall needs two [q, k] id arrays with the same q, got shapes"
            f" {approx.shape} and {exact.shape}"
        )
    exact = np.sort(exact, axis=1)
    distinct = exact != MISSING_ID
    distinct[:, 1:] &= exact[:, 1:] != exact[:, :-1]
    wanted = distinct.sum(axis=1)
    found = np.zeros(len(exact), dtype=np.int64)
    rows = max(1, block * 64 // max(1, exact.shape[1] * approx.shape[1]))
    for start in range(0, len(exact), rows):
        e, a = exact[start : start + rows], approx[start : start + rows]
        hit = (e[:, :, None] == a[:, None, :]).any(axis=2) & distinct[start : start + rows]
        found[start : start + rows] = hit.sum(axis=1)
    scored = wanted > 0
    if not scored.any():
        raise ValueError("ann_recall: every exact row is empty (all -1)")
    return float(np.mean(found[scored] / wanted[scored]))
