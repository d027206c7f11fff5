"""The demo generator: deterministic, loadable, and its users have the tastes it promises."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from tastebud.errors import InvalidInputError
from tastebud.ingest import SPECIAL_USERS, Dataset, DatasetConfig, load_dataset, write_demo_data
from tastebud.ingest.demo import END, START, generate_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """The default-sized demo, written and read back through the public loader."""
    files = write_demo_data(tmp_path_factory.mktemp("demo"))
    return load_dataset(files.items, files.interactions, DatasetConfig.from_toml(files.config))


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    sizes = {"n_items": 400, "n_users": 80}
    write_demo_data(tmp_path / "a", seed=7, **sizes)
    write_demo_data(tmp_path / "b", seed=7, **sizes)
    write_demo_data(tmp_path / "c", seed=8, **sizes)
    a, b, c = _bytes(tmp_path / "a"), _bytes(tmp_path / "b"), _bytes(tmp_path / "c")
    assert set(a) == {"items.csv", "interactions.csv", "dataset.toml"}
    assert a == b
    assert a["items.csv"] != c["items.csv"] and a["interactions.csv"] != c["interactions.csv"]


def test_catalog_shape(demo: Dataset) -> None:
    catalog = demo.catalog
    assert catalog.item_ids == [str(i) for i in range(1, 3001)]
    assert len(set(catalog.titles)) == len(catalog.titles)
    assert all(1960 <= y <= 2026 for y in catalog.years)  # type: ignore[operator]
    assert set(catalog.attributes) == {"genres", "language", "kind"}
    assert all(1 <= len(g) <= 2 for g in catalog.attributes["genres"])
    assert {k for (k,) in catalog.attributes["kind"]} == {"movie", "album"}
    assert 12 <= len({g for gs in catalog.attributes["genres"] for g in gs}) <= 16
    assert catalog.texts[0].startswith(f"{catalog.titles[0]} ({catalog.years[0]}). Genres: ")


def test_interactions_shape(demo: Dataset) -> None:
    log = demo.interactions
    assert demo.report.skipped == {} and demo.report.interactions_read == len(log)
    per_user = Counter(log.user_ids.tolist())
    assert set(per_user) == {str(u) for u in range(1, 601)}
    assert min(per_user.values()) >= 10 and max(per_user.values()) <= 120
    assert log.timestamps.min() >= START and log.timestamps.max() < END
    for user in ("1", "42", "600"):
        times = log.timestamps[log.user_ids == user]
        assert np.all(np.diff(times) > 0)
    kind = dict(
        zip(demo.catalog.item_ids, (k for (k,) in demo.catalog.attributes["kind"]), strict=False)
    )
    assert all(
        {"movie": "view", "album": "play"}[kind[i]] == e
        for i, e in zip(log.item_ids, log.events, strict=True)
    )
    rated = log.ratings[~np.isnan(log.ratings)]
    assert 0.2 < len(rated) / len(log) < 0.5 and set(rated.tolist()) <= {1, 2, 3, 4, 5}
    pairs = set(zip(log.user_ids.tolist(), log.item_ids.tolist(), strict=False))
    assert len(pairs) == len(log)  # no user sees an item twice


def test_special_users_stay_in_their_genre(demo: Dataset) -> None:
    genres = dict(zip(demo.catalog.item_ids, demo.catalog.attributes["genres"], strict=True))
    log = demo.interactions
    for user, genre in SPECIAL_USERS.items():
        items = log.item_ids[log.user_ids == user]
        share = np.mean([genre in genres[i] for i in items])
        assert share >= 0.9, (user, genre, share)
    assert SPECIAL_USERS["1"] == "Science Fiction"


def test_regular_users_mostly_follow_favourites(demo: Dataset) -> None:
    genres = dict(zip(demo.catalog.item_ids, demo.catalog.attributes["genres"], strict=True))
    by_user: dict[str, Counter[str]] = defaultdict(Counter)
    for user, item in zip(
        demo.interactions.user_ids.tolist(), demo.interactions.item_ids.tolist(), strict=False
    ):
        by_user[user][genres[item][0]] += 1
    top3 = [sum(n for _, n in c.most_common(3)) / sum(c.values()) for c in by_user.values()]
    assert np.median(top3) > 0.8  # three favourites at most, ~85% of picks from them


def test_popularity_is_skewed(demo: Dataset) -> None:
    counts = np.array(sorted(Counter(demo.interactions.item_ids.tolist()).values(), reverse=True))
    assert counts[: len(counts) // 10].sum() > 0.3 * counts.sum()


def test_bad_sizes_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="n_items"):
        generate_demo(n_items=10)
    with pytest.raises(InvalidInputError, match="n_users"):
        generate_demo(n_users=0)


def test_small_demo_still_works() -> None:
    data = generate_demo(n_items=50, n_users=5, seed=3)
    assert len(data.items) == 50 and {r["user_id"] for r in data.interactions} == set("12345")
