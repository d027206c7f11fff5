"""A two-tower model is never published unvalidated."""

from __future__ import annotations

import numpy as np
import pytest

from tastebud.errors import ModelValidationError
from tastebud.train.retrieval import fit_retrieval
from tastebud.train.sequences import Sequences
from tastebud.train.two_tower import TwoTowerConfig


def short_histories(n_users: int, n_items: int, length: int) -> Sequences:
    rng = np.random.default_rng(0)
    items = np.concatenate([rng.choice(n_items, length, replace=False) for _ in range(n_users)]).astype(np.int64)
    offsets = np.arange(0, n_users * length + 1, length, dtype=np.int64)
    return Sequences([str(u) for u in range(n_users)], offsets, items, n_items)


def test_two_tower_without_any_validation_users_is_refused(tmp_path):
    seqs = short_histories(400, 50, 4)  # 1,600 events, but nobody has 5: nothing can be held out
    text = np.random.default_rng(1).standard_normal((50, 8)).astype(np.float32)
    popularity = np.bincount(seqs.items, minlength=50).astype(np.float32)
    with pytest.raises(ModelValidationError, match="cannot validate"):
        fit_retrieval("two_tower", text, seqs, popularity, TwoTowerConfig(dim=4, epochs=1, threads=1), tmp_path)
    auto = fit_retrieval("auto", text, seqs, popularity, TwoTowerConfig(dim=4, epochs=1, threads=1), tmp_path)
    assert auto.kind == "content"
