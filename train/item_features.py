"""Catalog facts as inputs of the item tower, beside the text embedding: attribute values and
release-year bins.

A sentence embedding of "Title (1995). Genres: Animation, Comedy." carries the genres and the
year only blurred together with the title's words. Given to the towers as columns of their own,
the model can weigh a genre or an era directly, which matters most for items it has no
interactions for (new releases): their vectors come from these inputs alone.

Columns, for every item row:
- one per (attribute, value) pair carried by at least ``min_items`` items, the ``max_values``
  most frequent of them: 1 / sqrt(number of the item's kept values of that attribute), so each
  attribute weighs the same whatever its number of values (fifty tags do not drown two genres);
- one per release-year bin (bin edges at the deciles of the catalog's known years, so a music
  catalog of the 2010s is binned as finely as a film archive), and one "year unknown".

Computed from the catalog alone (no interactions), so every model of a build, the pseudo-new
one included, sees the same inputs for the same item. Chosen on the build's validation split of
MovieLens 100K train data (one 64-d model, eight draws of pseudo-new items, numbers in
``bench/model.md`` and ``bench/results/new-items-validation.json``).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import numpy.typing as npt

from tastebud.errors import InvalidInputError
from tastebud.index.filters import NO_YEAR

YEAR_BINS = 10
MIN_ITEMS = 5
MAX_VALUES = 256


def catalog_features(attributes: dict[str, list[tuple[str, ...]]], years: npt.NDArray[np.int32],
                     *, min_items: int = MIN_ITEMS, max_values: int = MAX_VALUES, year_bins: int = YEAR_BINS
                     ) -> npt.NDArray[np.float32]:
    """float32[n, m]: attribute-value columns then year-bin columns (see the module docstring).

    ``years`` holds ``NO_YEAR`` where an item has none; every attribute has one tuple of values
    per item. A catalog with neither attributes nor years gets zero columns."""
    n = len(years)
    for name, per_item in attributes.items():
        if len(per_item) != n:
            raise InvalidInputError(f"attribute {name!r} has values for {len(per_item)} items, the catalog {n}")
    values = attribute_values(attributes, min_items, max_values)
    block = np.zeros((n, len(values)), dtype=np.float32)
    for name in sorted(attributes):
        columns = {value: c for c, (attribute, value) in enumerate(values) if attribute == name}
        if not columns:
            continue
        for row, item_values in enumerate(attributes[name]):
            kept = list({columns[value] for value in item_values if value in columns})
            if kept:
                block[row, kept] = 1.0 / np.sqrt(len(kept))
    return np.ascontiguousarray(np.concatenate([block, year_bin_columns(years, year_bins)], axis=1),
                                dtype=np.float32)


def attribute_values(attributes: dict[str, list[tuple[str, ...]]], min_items: int, max_values: int
                     ) -> list[tuple[str, str]]:
    """The (attribute, value) pairs that get a column: on >= ``min_items`` items, the
    ``max_values`` most frequent (ties by name, so the columns are the same on every run)."""
    counts = Counter((name, value) for name in attributes for item_values in attributes[name]
                     for value in set(item_values))
    frequent = sorted((pair for pair, count in counts.items() if count >= min_items),
                      key=lambda pair: (-counts[pair], pair))
    return frequent[:max_values]


def year_bin_columns(years: npt.NDArray[np.int32], bins: int) -> npt.NDArray[np.float32]:
    """float32[n, bins + 1] one-hot: the year's bin among the deciles (for ``bins`` 10) of the
    known years, or the last column when the year is unknown; no columns when no year is known."""
    years = np.asarray(years)
    known = years != NO_YEAR
    if not known.any():
        return np.zeros((len(years), 0), dtype=np.float32)
    edges = np.unique(np.quantile(years[known], np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    column = np.where(known, np.searchsorted(edges, years, side="right"), bins)
    out = np.zeros((len(years), bins + 1), dtype=np.float32)
    out[np.arange(len(years)), column] = 1.0
    return out
