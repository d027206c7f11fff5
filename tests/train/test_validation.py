"""Validation inside the training data: the protocol's hold-out rule, metrics with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tastebud.evaluate.protocol import n_test_of
from tastebud.train.sequences import Sequences
from tastebud.train.validation import holdout_split, popularity_scores, ranking_metrics

# n -> held-out count, by hand: max(1, round(0.2 n)) for n >= 5, else 0 (1.4 -> 1, 1.6 -> 2, 2.4 -> 2, 3.6 -> 4).
KNOWN = {0: 0, 1: 0, 4: 0, 5: 1, 7: 1, 8: 2, 10: 2, 12: 2, 13: 3, 17: 3, 18: 4, 22: 4, 23: 5, 40: 8}


def sequences_of(lengths: list[int], n_items: int = 1000) -> Sequences:
    """One user per length, with distinct item rows in order."""
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Sequences([f"u{i:03d}" for i in range(len(lengths))], offsets,
                     np.arange(offsets[-1], dtype=np.int64) % n_items, n_items)


def test_holdout_takes_the_protocol_share_from_the_end():
    lengths = list(range(0, 41))
    seqs = sequences_of(lengths)
    holdout = holdout_split(seqs)
    assert holdout.prefix.user_ids == seqs.user_ids and holdout.prefix.n_items == seqs.n_items
    for u, n in enumerate(lengths):
        expected = max(1, round(0.2 * n)) if n >= 5 else 0
        assert expected == n_test_of(n) and (n not in KNOWN or expected == KNOWN[n])  # the evaluation's rule
        s = seqs.of(u)
        if expected == 0:
            assert u not in holdout.targets
        else:
            assert holdout.targets[u].tolist() == s[n - expected:].tolist()  # the last ones, in order
        assert holdout.prefix.of(u).tolist() == s[: n - expected].tolist()
    assert sorted(holdout.targets) == [u for u, n in enumerate(lengths) if n >= 5]


def test_ranking_metrics_known_answers():
    seqs = sequences_of([5, 5], n_items=30)  # user 0: rows 0..4, user 1: rows 5..9; 30 items
    holdout = holdout_split(seqs)  # targets: [4] and [9]; prefixes 0..3 and 5..8
    assert {u: t.tolist() for u, t in holdout.targets.items()} == {0: [4], 1: [9]}

    def score(user: int, history: np.ndarray) -> np.ndarray:
        s = np.zeros(30, np.float32)
        s[history] = 100.0  # history items are never counted, however high they score
        s[4 if user == 0 else 0] = 2.0  # user 0: the target first; user 1: another item first ...
        s[9] = 1.0  # ... and the target second
        return s
    metrics = ranking_metrics(score, holdout)
    assert metrics["users"] == 2
    assert metrics["recall@10"] == pytest.approx(1.0)
    assert metrics["ndcg@10"] == pytest.approx((1.0 + 1.0 / math.log2(3)) / 2)

    def last(user: int, history: np.ndarray) -> np.ndarray:
        s = np.ones(30, np.float32)
        s[holdout.targets[user]] = 0.0  # 25 unmasked items score above the target
        return s
    assert ranking_metrics(last, holdout) == {"ndcg@10": 0.0, "recall@10": 0.0, "users": 2}


def test_popularity_scores_count_the_prefix_only():
    seqs = Sequences(["a", "b"], np.array([0, 3, 8]), np.array([0, 1, 2, 2, 1, 0, 3, 4]), n_items=6)
    holdout = holdout_split(seqs)  # b (5 items) holds out its last one, row 4
    assert popularity_scores(holdout.prefix).tolist() == [2, 2, 2, 1, 0, 0]
