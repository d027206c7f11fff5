"""The splits agree exactly with shared/eval/score.py: train, test (in order) and cold sets."""

from __future__ import annotations

import csv
import tempfile
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tastebud.errors import InvalidInputError
from tastebud.evaluate import n_test_of, short_history, split_cold, split_main
from tastebud.evaluate.codes import take_rows
from tastebud.ingest.model import Dataset

FAST = settings(max_examples=40, deadline=None)
# Ids that sort differently as strings and as numbers, wider than 8 code points, beyond Latin-1.
ITEMS = ["1", "2", "10", "100", "9", "a", "B", "b", "é", "Ω", "日本", "longer-than-8", "x y"]


def synthetic_rows(rng: np.random.Generator, n_users: int = 40) -> list[tuple[str, str, float]]:
    """Users with 1..24 events: repeated (user, item) pairs, tied and fractional timestamps."""
    pool = ITEMS + [f"i{j}" for j in range(25)]
    rows = []
    for u in range(n_users):
        user = ["u", "U", "10", "2"][u % 4] + str(u)
        for _ in range(int(rng.integers(1, 25))):
            item = pool[int(rng.integers(len(pool)))]
            rows.append((user, item, float(rng.integers(0, 12)) * 0.5 + (0.1 if rng.random() < 0.2 else 0.0)))
    return rows


def write_csv(path: Path, rows: list[tuple[str, str, float]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "timestamp", "rating"])
        for u, i, t in rows:
            w.writerow([u, i, repr(t), 3])


def weight_of(user: str, item: str, t: float) -> float:
    """A weight that identifies the row, so kept columns can be checked (float32-exact)."""
    return float(len(user) * 100 + len(item) * 10 + int(t * 2) % 10)


def reference_views(reference: ModuleType, rows: list[tuple[str, str, float]]):
    """score.py's own pipeline: read the CSV, split, pick cold items, filter."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "interactions.csv"
        write_csv(path, rows)
        deduped = reference.read_interactions(path)
    train, test = reference.split(deduped)
    cold = reference.cold_items(deduped)
    test_lists: dict[str, list[str]] = defaultdict(list)
    for u, i, _ in test:
        test_lists[u].append(i)
    cold_test: dict[str, list[str]] = defaultdict(list)
    for u, i, _ in test:
        if i in set(cold):
            cold_test[u].append(i)
    cold_train = {r for r in train if r[1] not in set(cold)}
    return set(train), dict(test_lists), cold, cold_train, dict(cold_test)


def rows_of(dataset: Dataset) -> set[tuple[str, str, float]]:
    log = dataset.interactions
    return set(zip(log.user_ids.tolist(), log.item_ids.tolist(), log.timestamps.tolist(), strict=True))


def same_log(a: Dataset, b: Dataset) -> bool:
    x, y = a.interactions, b.interactions
    return all(np.array_equal(getattr(x, f), getattr(y, f), equal_nan=f in ("timestamps", "weights", "ratings"))
               for f in ("user_ids", "item_ids", "timestamps", "weights", "events", "ratings"))


def check_agreement(reference: ModuleType, rows: list[tuple[str, str, float]], dataset: Dataset) -> None:
    train, test, cold, cold_train, cold_test = reference_views(reference, rows)
    split = split_main(dataset)
    assert rows_of(split.train) == train
    assert len(split.train.interactions) == len(train)
    assert split.test == test  # same users, same items in the same (timestamp, item) order
    assert list(split.test) == sorted(split.test)
    cold_split = split_cold(dataset)
    assert cold_split.items == cold
    assert rows_of(cold_split.train) == cold_train
    assert cold_split.test == cold_test
    from_split = split_cold(split)  # from the split: the same view, less work
    assert (from_split.items, from_split.test) == (cold_split.items, cold_split.test)
    assert same_log(from_split.train, cold_split.train)


def test_synthetic_split_agrees_with_reference(reference: ModuleType, make_dataset, rng) -> None:
    rows = synthetic_rows(rng)
    assert len({(u, i) for u, i, _ in rows}) < len(rows), "the data must hold repeated pairs"
    dataset = make_dataset(rows, extra_items=[f"never-{j}" for j in range(15)], weights=[weight_of(*r) for r in rows])
    check_agreement(reference, rows, dataset)
    split = split_main(dataset)
    log = split.train.interactions  # every column of the kept (earliest) rows comes along
    expected = [weight_of(u, i, t) for u, i, t in zip(log.user_ids, log.item_ids, log.timestamps)]
    assert log.weights.tolist() == expected
    assert split.train.catalog is dataset.catalog and split.train.report is dataset.report
    distinct = {i for _, i, _ in rows}  # cold items come from the interactions, not the catalog
    assert len(split_cold(dataset).items) == int(0.1 * len(distinct)) != int(0.1 * len(dataset.catalog))


@FAST
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "10", "9"]),
            st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=10),
            st.sampled_from([0.0, 1.0, 1.5, 2.0, 1e9, 1e9 + 0.25]),
        ),
        max_size=80,
    )
)
def test_split_agrees_with_reference_on_any_log(reference: ModuleType, make_dataset, rows) -> None:
    check_agreement(reference, rows, make_dataset(rows))


def test_unsorted_log_splits_like_the_sorted_one(make_dataset, rng) -> None:
    dataset = make_dataset(synthetic_rows(rng))
    shuffled = Dataset(
        dataset.catalog,
        take_rows(dataset.interactions, rng.permutation(len(dataset.interactions))),
        dataset.report,
    )
    a, b = split_main(shuffled), split_main(dataset)
    assert a.test == b.test
    for x, y in ((a.train, b.train), (a.test_log, b.test_log)):  # the kept duplicate may differ
        x = x.interactions if isinstance(x, Dataset) else x
        y = y.interactions if isinstance(y, Dataset) else y
        for f in ("user_ids", "item_ids", "timestamps"):
            assert np.array_equal(getattr(x, f), getattr(y, f))


def test_n_test_is_pythons_round_of_a_fifth() -> None:
    assert [n_test_of(n) for n in range(10)] == [0, 0, 0, 0, 0, 1, 1, 1, 2, 2]
    for n in range(5, 2000):
        assert n_test_of(n) == max(1, round(0.2 * n))


def test_short_history_is_the_last_train_items_in_time_order(make_dataset) -> None:
    rows = [("u", f"i{t}", float(t)) for t in range(10)] + [("v", "x", 1.0), ("w", "a", 5.0)]
    rows += [("w", "c", 3.0), ("w", "b", 3.0), ("w", "d", 1.0), ("w", "e", 9.0)]
    split = split_main(make_dataset(rows))
    assert split.test == {"u": ["i8", "i9"], "w": ["e"]}
    assert short_history(split) == {"u": ["i5", "i6", "i7"], "w": ["b", "c", "a"]}
    assert short_history(split, n=10) == {"u": [f"i{t}" for t in range(8)], "w": ["d", "b", "c", "a"]}
    assert short_history(split, n=0) == {"u": [], "w": []}
    with pytest.raises(InvalidInputError):
        short_history(split, n=-1)


def test_empty_and_train_only_logs(make_dataset) -> None:
    empty = split_main(make_dataset([]))
    assert empty.test == {} and len(empty.train.interactions) == 0
    assert split_cold(empty).items == [] and split_cold(empty).test == {}
    few = split_main(make_dataset([("u", "a", 1.0), ("u", "b", 2.0)]))
    assert few.test == {} and len(few.train.interactions) == 2


def test_nan_timestamps_are_refused(make_dataset) -> None:
    with pytest.raises(InvalidInputError, match="finite"):
        split_main(make_dataset([("u", "a", 1.0), ("u", "b", float("nan"))]))
