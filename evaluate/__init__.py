"""Offline evaluation, the pure core: the protocol's splits, its metrics and context baselines.

``protocol`` splits a ``Dataset`` exactly as shared/eval/score.py does (main temporal split,
short-history view, cold-items view); ``metrics`` scores ranked lists exactly as score.py
does, and measures ANN recall; ``baselines`` are most-popular, random, item-kNN and EASE
rankers for context. No I/O here, and importing this package does no work.
"""

from .baselines import TooManyItemsError, ease, item_knn, most_popular, random_items
from .metrics import ann_recall, score_lists
from .protocol import ColdSplit, Split, cold_items_of, n_test_of, short_history, split_cold, split_main

__all__ = [
    "ColdSplit",
    "Split",
    "TooManyItemsError",
    "ann_recall",
    "cold_items_of",
    "ease",
    "item_knn",
    "most_popular",
    "n_test_of",
    "random_items",
    "score_lists",
    "short_history",
    "split_cold",
    "split_main",
]
