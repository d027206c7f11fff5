"""Fixtures of the training tests: a synthetic genre world with known answers, tiny configs.

``genre_world(seed)`` is a catalog of ``GENRES`` x ``PER_GENRE`` items whose text vectors are
noisy copies of one centre per genre (so text predicts genre), and users who each watch items
of one genre only, in random order. The first ``COLD_PER_GENRE`` items of every genre are
never watched: what the model knows of them comes from their text alone. ``TINY`` trains in
a fraction of a second on one thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from tastebud.ingest.model import InteractionLog, sorted_interaction_log
from tastebud.train.sequences import Sequences, build_sequences
from tastebud.train.two_tower import TwoTowerConfig

GENRES, PER_GENRE, COLD_PER_GENRE, TEXT_DIM, N_USERS = 4, 30, 5, 16, 100
TINY = TwoTowerConfig(dim=8, epochs=10, history=10, batch_size=64, learning_rate=1e-2, threads=1)


@dataclass(frozen=True)
class GenreWorld:
    text_vectors: npt.NDArray[np.float32]  # [n_items, TEXT_DIM], unit
    genre: npt.NDArray[np.int64]  # [n_items]
    cold: npt.NDArray[np.int64]  # item rows nobody watched
    user_genre: npt.NDArray[np.int64]  # [n_users], by user row of ``seqs``
    item_ids: list[str]
    log: InteractionLog
    seqs: Sequences

    @property
    def n_items(self) -> int:
        return len(self.genre)


def make_genre_world(seed: int = 0, duplicate_texts: tuple[tuple[int, int], ...] = ()) -> GenreWorld:
    """``duplicate_texts``: (a, b) pairs of item rows; b gets a's text vector."""
    rng = np.random.default_rng(seed)
    n = GENRES * PER_GENRE
    genre = np.repeat(np.arange(GENRES), PER_GENRE).astype(np.int64)
    centres = rng.standard_normal((GENRES, TEXT_DIM))
    text = centres[genre] + 0.5 * rng.standard_normal((n, TEXT_DIM))
    text = (text / np.linalg.norm(text, axis=1, keepdims=True)).astype(np.float32)
    for a, b in duplicate_texts:
        text[b] = text[a]
    cold = np.concatenate([np.arange(g * PER_GENRE, g * PER_GENRE + COLD_PER_GENRE) for g in range(GENRES)])
    warm = np.setdiff1d(np.arange(n), cold)
    item_ids = [f"item-{i:03d}" for i in range(n)]
    users, items, times = [], [], []
    for u in range(N_USERS):
        watched = rng.choice(warm[genre[warm] == u % GENRES], rng.integers(6, 14), replace=False)
        users += [f"user-{u:03d}"] * len(watched)
        items += [item_ids[i] for i in watched]
        times += list(1000.0 * u + np.arange(len(watched)))
    log = sorted_interaction_log(users, items, times, np.ones(len(users)), ["view"] * len(users),
                                 np.full(len(users), np.nan))
    seqs = build_sequences(log, item_ids)
    user_genre = np.array([int(u.split("-")[1]) % GENRES for u in seqs.user_ids], dtype=np.int64)
    return GenreWorld(text, genre, cold.astype(np.int64), user_genre, item_ids, log, seqs)


@pytest.fixture(scope="session")
def genre_world() -> Callable[..., GenreWorld]:
    """``genre_world(seed=0, duplicate_texts=())``: see ``make_genre_world``."""
    return make_genre_world


@pytest.fixture(scope="session")
def tiny_config() -> TwoTowerConfig:
    return TINY
