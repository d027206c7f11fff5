"""Item filters and the attribute table that evaluates them as boolean masks.

A filter is plain data (``ItemFilter``); an ``ItemTable`` holds the filterable attributes of a
set of items (all of them, or one shard's) with an inverted index per attribute, so a mask
costs a few array writes per listed value, not a pass over every item's attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from tastebud.errors import InvalidInputError

NO_YEAR = np.iinfo(np.int32).min

Clause = tuple[str, frozenset[str]]


@dataclass(frozen=True, slots=True)
class ItemFilter:
    """Every clause must hold: each ``include`` attribute has one of its values, each ``exclude``
    attribute none of its values, and the year (when bounded) is within [year_min, year_max]."""

    include: tuple[Clause, ...] = ()
    exclude: tuple[Clause, ...] = ()
    year_min: int | None = None
    year_max: int | None = None

    def is_empty(self) -> bool:
        return not self.include and not self.exclude and self.year_min is None and self.year_max is None


class ItemTable:
    """Filterable attributes of items 0..n-1: years and multi-valued categorical attributes."""

    def __init__(self, years: npt.NDArray[np.int32], attributes: Mapping[str, Sequence[tuple[str, ...]]]) -> None:
        self.years = np.asarray(years, dtype=np.int32)
        self.attribute_names = tuple(sorted(attributes))
        self._postings: dict[str, dict[str, npt.NDArray[np.int64]]] = {}
        for name, per_item in attributes.items():
            if len(per_item) != len(self.years):
                raise ValueError(f"attribute {name!r} has {len(per_item)} rows, expected {len(self.years)}")
            lists: dict[str, list[int]] = {}
            for row, values in enumerate(per_item):
                for value in values:
                    lists.setdefault(value, []).append(row)
            self._postings[name] = {v: np.array(r, dtype=np.int64) for v, r in lists.items()}

    def __len__(self) -> int:
        return len(self.years)

    def values(self, attribute: str) -> list[str]:
        """Every value an attribute takes, sorted."""
        return sorted(self._postings.get(attribute, {}))

    def check(self, item_filter: ItemFilter, field: str = "filter") -> None:
        """Raise InvalidInputError naming the field when the filter uses an unknown attribute."""
        for kind, clauses in (("include", item_filter.include), ("exclude", item_filter.exclude)):
            for i, (name, values) in enumerate(clauses):
                if name not in self._postings:
                    known = ", ".join(self.attribute_names) or "none"
                    raise InvalidInputError(
                        f"{field}.{kind}[{i}].attribute: unknown attribute {name!r} (filterable: {known})")
                if not values:
                    raise InvalidInputError(f"{field}.{kind}[{i}].values: must list at least one value")
        lo, hi = item_filter.year_min, item_filter.year_max
        if lo is not None and hi is not None and lo > hi:
            raise InvalidInputError(f"{field}.year_min ({lo}) is greater than {field}.year_max ({hi})")

    def _rows_with_any(self, name: str, values: Iterable[str]) -> npt.NDArray[np.bool_]:
        hit = np.zeros(len(self.years), dtype=bool)
        postings = self._postings.get(name, {})
        for value in values:
            rows = postings.get(value)
            if rows is not None:
                hit[rows] = True
        return hit

    def mask(self, item_filter: ItemFilter | None) -> npt.NDArray[np.bool_]:
        """bool[n]: which items pass the filter (all of them for None or an empty filter)."""
        allowed = np.ones(len(self.years), dtype=bool)
        if item_filter is None:
            return allowed
        for name, values in item_filter.include:
            allowed &= self._rows_with_any(name, values)
        for name, values in item_filter.exclude:
            allowed &= ~self._rows_with_any(name, values)
        if item_filter.year_min is not None or item_filter.year_max is not None:
            has_year = self.years != NO_YEAR
            allowed &= has_year
            if item_filter.year_min is not None:
                allowed &= self.years >= item_filter.year_min
            if item_filter.year_max is not None:
                allowed &= self.years <= item_filter.year_max
        return allowed

    def subset(self, rows: npt.NDArray[np.int64]) -> "ItemTable":
        """The table of items ``rows`` (renumbered 0..len(rows)-1), e.g. one shard's items."""
        position = np.full(len(self.years), -1, dtype=np.int64)
        position[rows] = np.arange(len(rows))
        table = ItemTable.__new__(ItemTable)
        table.years = self.years[rows]
        table.attribute_names = self.attribute_names
        table._postings = {}
        for name, postings in self._postings.items():
            local = {}
            for value, value_rows in postings.items():
                kept = position[value_rows]
                kept = kept[kept >= 0]
                if len(kept):
                    local[value] = np.sort(kept)
            table._postings[name] = local
        return table
