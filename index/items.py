"""The item store of an index: ids, titles, attributes, popularity and shard of every item.

Row ``i`` here is item ``i`` everywhere in the index: its global id in every shard's FAISS
results, its row in the vectors and the histories. External ids are strings (the catalog's
own); only this store maps between the two. Stored as ``items.parquet``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from tastebud.errors import IndexIntegrityError
from tastebud.index.filters import NO_YEAR, ItemTable

_FIXED_COLUMNS = ("item_id", "title", "text", "year", "popularity", "shard")
_ATTRIBUTE_PREFIX = "attr:"


class ItemStore:
    """Every item of one index version, by row."""

    def __init__(self, item_ids: Sequence[str], titles: Sequence[str], texts: Sequence[str],
                 years: npt.NDArray[np.int32], attributes: dict[str, list[tuple[str, ...]]],
                 popularity: npt.NDArray[np.float32], shard: npt.NDArray[np.int32]) -> None:
        self.item_ids = list(item_ids)
        self.titles = list(titles)
        self.texts = list(texts)
        self.years = np.asarray(years, dtype=np.int32)
        self.attributes = attributes
        self.popularity = np.asarray(popularity, dtype=np.float32)
        self.shard = np.asarray(shard, dtype=np.int32)
        self._row = {item_id: row for row, item_id in enumerate(self.item_ids)}
        if len(self._row) != len(self.item_ids):
            raise IndexIntegrityError("item store has duplicate item ids")

    def __len__(self) -> int:
        return len(self.item_ids)

    def row_of(self, item_id: str) -> int | None:
        """The row (global id) of an external item id, or None when it is not in the catalog."""
        return self._row.get(item_id)

    def rows_of(self, item_ids: Sequence[str]) -> tuple[npt.NDArray[np.int64], list[str]]:
        """Rows of the known ids (in order) and the list of unknown ones."""
        rows, unknown = [], []
        for item_id in item_ids:
            row = self._row.get(item_id)
            (unknown.append(item_id) if row is None else rows.append(row))
        return np.array(rows, dtype=np.int64), unknown

    def table(self) -> ItemTable:
        """The filter table over all items."""
        return ItemTable(self.years, self.attributes)

    def popularity_order(self) -> npt.NDArray[np.int64]:
        """Rows from most to least popular (ties by row)."""
        return np.lexsort((np.arange(len(self)), -self.popularity)).astype(np.int64)

    def write(self, path: Path) -> None:
        columns: dict[str, pa.Array] = {
            "item_id": pa.array(self.item_ids, pa.string()),
            "title": pa.array(self.titles, pa.string()),
            "text": pa.array(self.texts, pa.string()),
            "year": pa.array(self.years, pa.int32()),
            "popularity": pa.array(self.popularity, pa.float32()),
            "shard": pa.array(self.shard, pa.int32()),
        }
        for name, values in self.attributes.items():
            columns[_ATTRIBUTE_PREFIX + name] = pa.array([list(v) for v in values], pa.list_(pa.string()))
        pq.write_table(pa.table(columns), path)

    @classmethod
    def read(cls, path: Path) -> "ItemStore":
        table = pq.read_table(path)
        missing = [c for c in _FIXED_COLUMNS if c not in table.column_names]
        if missing:
            raise IndexIntegrityError(f"{path}: missing columns {missing}")
        attributes = {
            name[len(_ATTRIBUTE_PREFIX):]: [tuple(v) for v in table.column(name).to_pylist()]
            for name in table.column_names if name.startswith(_ATTRIBUTE_PREFIX)
        }
        return cls(
            item_ids=table.column("item_id").to_pylist(),
            titles=table.column("title").to_pylist(),
            texts=table.column("text").to_pylist(),
            years=table.column("year").to_numpy().astype(np.int32),
            attributes=attributes,
            popularity=table.column("popularity").to_numpy().astype(np.float32),
            shard=table.column("shard").to_numpy().astype(np.int32),
        )


def years_array(years: Sequence[int | None]) -> npt.NDArray[np.int32]:
    """int32 years with NO_YEAR where unknown."""
    return np.array([NO_YEAR if y is None else int(y) for y in years], dtype=np.int32)
