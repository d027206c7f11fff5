"""Deterministic demo data: a fictional streaming catalogue of films and albums, and its users.

Real data sets cannot ship with the product, and the demo must show recommendations a reader
can judge at a glance: so users have known tastes. Each user favours 1-3 genres and takes about
85% of their 10-120 (long-tailed) interactions from them; within a genre, item popularity is
Zipf-like. The users in ``SPECIAL_USERS`` take everything from one genre: user "1" only watches
Science Fiction, user "2" only plays Jazz, user "3" only watches Horror (60 items each, or a
third of that genre in a small catalogue).

Ids are plain strings ("1".."n_items", "1".."n_users"); timestamps are Unix seconds in 2024-2025,
increasing per user; events are "view" (movies) or "play" (albums); about a third of the
interactions carry a 1-5 rating. The same arguments give byte-identical files (numpy's seeded
``default_rng``; no clock, no hash order). The catalogue comes from ``demo_catalog``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from tastebud.errors import InvalidInputError

from .demo_catalog import ITEM_COLUMNS, generate_items, load_vocabulary

SPECIAL_USERS = MappingProxyType({"1": "Science Fiction", "2": "Jazz", "3": "Horror"})
"""Single-genre users: every one of their interactions is an item whose main genre is this."""

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "event", "rating")
EVENTS = MappingProxyType({"movie": "view", "album": "play"})
START, END = 1_704_067_200, 1_767_225_600  # 2024-01-01 and 2026-01-01, 00:00 UTC
FAVOURITE_SHARE = 0.85
RATED_SHARE = 0.35
SPECIAL_USER_EVENTS = 60
MIN_ITEMS = 50

DEMO_CONFIG = """\
# Written by tastebud.ingest.demo: how to read the demo's items.csv and interactions.csv.
[items]
id_column = "item_id"
title_column = "title"
year_column = "year"
text_template = "{title} ({year}). Genres: {genres}. Language: {language}. Tags: {tags}. {description}"
filter_attributes = ["genres", "language", "kind"]
multi_valued = ["genres", "tags"]
separator = "|"

[interactions]
on_error = "fail"
"""  # noqa: E501


@dataclass(frozen=True, slots=True)
class DemoFiles:
    """Where ``write_demo_data`` put the catalogue, the interactions and their config."""

    items: Path
    interactions: Path
    config: Path


@dataclass(frozen=True, slots=True)
class DemoData:
    """The demo rows in memory: one dict of strings per row, keyed by the column constants."""

    items: list[dict[str, str]]
    interactions: list[dict[str, str]]


def write_demo_data(
    out_dir: Path | str, *, n_items: int = 3000, n_users: int = 600, seed: int = 0
) -> DemoFiles:
    """Write items.csv, interactions.csv and dataset.toml into ``out_dir`` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = generate_demo(n_items=n_items, n_users=n_users, seed=seed)
    files = DemoFiles(out / "items.csv", out / "interactions.csv", out / "dataset.toml")
    _write_csv(files.items, ITEM_COLUMNS, data.items)
    _write_csv(files.interactions, INTERACTION_COLUMNS, data.interactions)
    files.config.write_text(DEMO_CONFIG, encoding="utf-8")
    return files


def generate_demo(*, n_items: int = 3000, n_users: int = 600, seed: int = 0) -> DemoData:
    """The demo rows, generated in memory; see the module docstring for their properties."""
    if n_items < MIN_ITEMS:
        raise InvalidInputError(f"n_items must be at least {MIN_ITEMS}, got {n_items}")
    if n_users < 1:
        raise InvalidInputError(f"n_users must be at least 1, got {n_users}")
    rng = np.random.default_rng(seed)
    vocabulary = load_vocabulary()
    genres = vocabulary.genres
    main = rng.permutation(np.arange(n_items) % len(genres))
    items = generate_items(rng, vocabulary, main)
    popularity = np.empty(n_items)
    for g in range(len(genres)):  # Zipf-like within each genre, in a random order
        members = np.flatnonzero(main == g)
        popularity[members] = 1.0 / (rng.permutation(len(members)) + 1.0) ** 0.9
    kinds = [genre.kind for genre in genres]
    names = [genre.name for genre in genres]
    interactions: list[dict[str, str]] = []
    for user in range(1, n_users + 1):
        interactions += _user_rows(rng, str(user), names, kinds, main, popularity)
    return DemoData(items=items, interactions=interactions)


def _user_rows(
    rng: np.random.Generator,
    user: str,
    names: list[str],
    kinds: list[str],
    main: npt.NDArray[np.int64],
    popularity: npt.NDArray[np.float64],
) -> list[dict[str, str]]:
    """One user's interactions, in time order."""
    if user in SPECIAL_USERS:
        favourites = np.array([names.index(SPECIAL_USERS[user])])
        # At most a third of their genre, so that a small catalogue still has unseen items
        # of that genre left to recommend.
        genre_size = int(np.sum(main == favourites[0]))
        shares, n = np.ones(1), max(1, min(SPECIAL_USER_EVENTS, genre_size // 3))
        n_favourite = n
    else:
        k = int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25]))
        favourites = rng.choice(len(names), size=k, replace=False)
        shares = rng.dirichlet(np.full(k, 2.0))
        n = int(np.clip(round(rng.lognormal(np.log(30), 0.8)), 10, 120))
        n_favourite = int(rng.binomial(n, FAVOURITE_SHARE))
    picks = []
    for g, count in zip(favourites, rng.multinomial(n_favourite, shares), strict=True):
        picks.append(_sample(rng, np.flatnonzero(main == g), popularity, count))
    others = np.flatnonzero(~np.isin(main, favourites))
    picks.append(_sample(rng, others, popularity, n - n_favourite))
    liked = np.concatenate(
        [np.ones(len(p), bool) for p in picks[:-1]] + [np.zeros(len(picks[-1]), bool)]
    )
    order = rng.permutation(len(liked))
    items, liked = np.concatenate(picks)[order], liked[order]
    times = _times(rng, len(items))
    rated = rng.random(len(items)) < RATED_SHARE
    fan_stars = rng.choice([3, 4, 5], size=len(items), p=[0.2, 0.4, 0.4])
    other_stars = rng.choice([1, 2, 3, 4, 5], size=len(items), p=[0.15, 0.25, 0.3, 0.2, 0.1])
    stars = np.where(liked, fan_stars, other_stars)
    return [
        {
            "user_id": user,
            "item_id": str(item + 1),
            "timestamp": str(when),
            "event": EVENTS[kinds[main[item]]],
            "rating": str(star) if rate else "",
        }
        for item, when, rate, star in zip(items, times, rated, stars, strict=True)
    ]


def _sample(
    rng: np.random.Generator,
    pool: npt.NDArray[np.int64],
    popularity: npt.NDArray[np.float64],
    k: int,
) -> npt.NDArray[np.int64]:
    """``k`` distinct items of ``pool`` (fewer if it is smaller), popular ones more likely."""
    k = min(k, len(pool))
    if k == 0:
        return pool[:0]
    weights = popularity[pool]
    return np.asarray(rng.choice(pool, size=k, replace=False, p=weights / weights.sum()))


def _times(rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
    """``n`` strictly increasing Unix seconds within [START, END), over a random span."""
    start = int(rng.integers(START, END - 60 * 86_400))
    span = min(END - 1 - start, int(rng.uniform(14, 540) * 86_400))
    steps = np.cumsum(rng.exponential(1.0, size=n) + 0.01)
    return np.asarray(start + np.floor(steps / steps[-1] * span), dtype=np.int64)


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
