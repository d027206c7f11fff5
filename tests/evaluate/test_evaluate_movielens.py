"""MovieLens 100K: the splits equal score.py's; the baselines land where they should.

Measured on the real folder (main view, NDCG@10): most popular 0.116, item-kNN 0.188, EASE
0.194; random 0.016. The bounds below are loose on purpose: they catch a broken split or
ranking (which lands near random or above any plausible value), not a change in the third digit.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from types import ModuleType

import pytest

from tastebud.evaluate import (
    ease, item_knn, most_popular, random_items, score_lists, short_history, split_cold, split_main,
)
from tastebud.ingest.model import Dataset

pytestmark = pytest.mark.movielens


@pytest.fixture(scope="module")
def views(ml100k: Dataset):
    split = split_main(ml100k)
    return split, short_history(split), split_cold(split)


def test_splits_equal_the_reference(reference: ModuleType, ml100k: Dataset, views, tmp_path: Path) -> None:
    log = ml100k.interactions
    path = tmp_path / "interactions.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "timestamp"])
        w.writerows(zip(log.user_ids.tolist(), log.item_ids.tolist(), log.timestamps.tolist(), strict=True))
    rows = reference.read_interactions(path)
    train, test = reference.split(rows)
    cold = reference.cold_items(rows)
    split, _, cold_split = views
    assert (len(split.train.interactions), len(split.test_log), len(split.test)) == (len(train), len(test), 943)
    assert (len(train), len(test)) == (80_000, 20_000)
    mine = split.train.interactions
    assert set(zip(mine.user_ids.tolist(), mine.item_ids.tolist(), mine.timestamps.tolist())) == set(train)
    expected: dict[str, list[str]] = {}
    for u, i, _ in test:
        expected.setdefault(u, []).append(i)
    assert split.test == expected
    assert cold_split.items == cold and len(cold) == 168
    cold_set = set(cold)
    assert len(cold_split.train.interactions) == sum(1 for r in train if r[1] not in cold_set)
    assert sum(map(len, cold_split.test.values())) == sum(1 for r in test if r[1] in cold_set)
    recs = item_knn(split.train, list(split.test), 10)  # real lists score as score.py scores them
    n_items = len(ml100k.catalog)
    assert score_lists(split.test, recs, n_items) == reference.score(
        {u: set(v) for u, v in split.test.items()}, recs, n_items)


def test_baselines_are_plausible_and_ordered(ml100k: Dataset, views) -> None:
    split, short, cold = views
    users, n_items = list(split.test), len(ml100k.catalog)
    results, seconds = {}, {}
    for name, baseline in (("pop", most_popular), ("random", random_items), ("knn", item_knn), ("ease", ease)):
        start = time.perf_counter()
        recs = baseline(split.train, users, 10)
        seconds[name] = time.perf_counter() - start
        results[name] = score_lists(split.test, recs, n_items)
        assert results[name]["users_without_list"] == 0
    ndcg = {name: r["ndcg@10"] for name, r in results.items()}
    assert 0.08 < ndcg["pop"] < 0.16, ndcg
    assert ndcg["random"] < 0.03 < ndcg["pop"] < ndcg["knn"] < 0.3 and ndcg["pop"] < ndcg["ease"] < 0.3, ndcg
    assert results["pop"]["coverage@10"] < results["knn"]["coverage@10"] < results["random"]["coverage@10"]
    # New users: kNN from the last 3 items still beats popularity.
    knn_short = score_lists(split.test, item_knn(split.train, users, 10, histories=short), n_items)
    assert knn_short["ndcg@10"] > ndcg["pop"]
    # New items: without content every baseline is as good as one random permutation.
    cold_users = list(cold.test)
    random_cold = score_lists(cold.test, random_items(cold.train, cold_users, 10, candidates=cold.items), None)
    pop_cold = score_lists(cold.test, most_popular(cold.train, cold_users, 10, candidates=cold.items), None)
    assert 0.02 < random_cold["recall@10"] < 0.12 and 0.0 < pop_cold["recall@10"] < 0.2
    assert max(seconds.values()) < 10, seconds
