"""Fixtures for the evaluation tests: the reference ``score.py``, MovieLens 100K, tiny data sets.

``reference`` imports the shared eval/score.py and skips the test when it is absent;
``ml100k`` loads MovieLens 100K once per session and skips when absent (where both are
looked for: ``tests/shared_data.py``). ``make_dataset`` builds a ``Dataset`` from (user,
item, timestamp) rows.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType

import numpy as np
import pytest

from tastebud.ingest import load_movielens
from tastebud.ingest.model import Catalog, Dataset, LoadReport, sorted_interaction_log

from shared_data import ML100K, SCORER

Row = tuple[str, str, float]


@pytest.fixture(scope="session")
def reference() -> ModuleType:
    """shared/eval/score.py as a module (``split``, ``cold_items``, ``score``...)."""
    if not SCORER.is_file():
        pytest.skip(f"reference scorer absent: {SCORER}")
    spec = importlib.util.spec_from_file_location("tastebud_reference_score", SCORER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def ml100k() -> Dataset:
    if not (ML100K / "u.data").is_file():
        pytest.skip(f"MovieLens 100K folder absent: {ML100K}")
    return load_movielens(ML100K)


def build_dataset(rows: Sequence[Row], extra_items: Iterable[str] = (),
                  weights: Sequence[float] | None = None) -> Dataset:
    """A data set of ``rows``; the catalog is every item of the rows plus ``extra_items``."""
    items = sorted({i for _, i, _ in rows} | set(extra_items))
    catalog = Catalog(item_ids=items, titles=items, texts=items, years=[None] * len(items))
    n = len(rows)
    log = sorted_interaction_log(
        [u for u, _, _ in rows], [i for _, i, _ in rows], [t for _, _, t in rows],
        np.ones(n) if weights is None else weights, [f"e{k % 3}" for k in range(n)],
        np.arange(n, dtype=np.float32),
    )
    return Dataset(catalog, log, LoadReport(items_read=len(items), interactions_read=n))


@pytest.fixture(scope="session")
def make_dataset() -> Callable[..., Dataset]:
    """``make_dataset(rows, extra_items=(), weights=None)``: see ``build_dataset``."""
    return build_dataset
