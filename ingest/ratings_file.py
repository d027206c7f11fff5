"""Ratings files of tens of millions of rows, read column-wise with pyarrow into a log.

The generic readers go row by row through the csv module, which is exact but too slow for
MovieLens 25M/32M. These files are simple (no quoting, no blank lines, fixed columns), so
pyarrow reads every column as text at once and converts it in bulk; only when a value is bad
does a slow rescan find its line, so errors stay as precise as the row-wise readers'.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tastebud.errors import InvalidInputError

from .model import InteractionLog, sorted_interaction_log


def read_ratings_log(
    path: Path,
    names: Sequence[str],
    known_items: Sequence[str],
    *,
    delimiter: str,
    header: bool,
) -> InteractionLog:
    """Read ``names`` = (user, item, rating, timestamp) columns; events "rating", weight 1.0."""
    import pyarrow as pa
    import pyarrow.compute as pc

    users, items, rating_text, time_text = _read_columns(path, list(names), delimiter, header)
    first_line = 2 if header else 1
    if len(users) == 0:
        raise InvalidInputError(f"{path}: the file has no ratings")
    known = pc.is_in(items, value_set=pa.array(list(known_items), pa.string()))
    if not pc.all(known).as_py():
        row = int(np.argmin(known.to_numpy(zero_copy_only=False)))
        raise InvalidInputError(
            f"{path}, line {row + first_line}: unknown item id {items[row].as_py()!r}"
            " (not in the catalog)"
        )
    ratings = _numbers(rating_text, path, first_line, "rating")
    times = _numbers(time_text, path, first_line, "timestamp")
    n = len(users)
    return sorted_interaction_log(
        _strings(users), _strings(items), times, np.ones(n), np.full(n, "rating"), ratings
    )


def _read_columns(path: Path, names: list[str], delimiter: str, header: bool) -> list[Any]:
    """The named columns as pyarrow string arrays: converting later lets errors name lines."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(column_names=None if header else names, block_size=1 << 24)
    parse = pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False)
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names},
        include_columns=names,
        strings_can_be_null=False,
    )
    try:
        table = pacsv.read_csv(
            path, read_options=read, parse_options=parse, convert_options=convert
        )
    except (pa.ArrowException, KeyError) as e:
        raise InvalidInputError(
            f"{path}: unreadable ratings file (columns {', '.join(names)}): {e}"
        ) from None
    return [table.column(n).combine_chunks() for n in names]


def _strings(column: Any) -> npt.NDArray[np.str_]:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.str_)


def _numbers(column: Any, path: Path, first_line: int, what: str) -> npt.NDArray[np.float64]:
    """Finite floats, or an error naming the first bad line (found by a slow rescan)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        values = pc.cast(pc.utf8_trim_whitespace(column), pa.float64()).to_numpy()
    except pa.ArrowInvalid:
        values = np.array([_finite_or_nan(s) for s in column.to_pylist()])
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argmax(bad))
        raise InvalidInputError(
            f"{path}, line {row + first_line}: {what} {column[row].as_py()!r}"
            " is not a finite number"
        )
    return np.asarray(values, dtype=np.float64)


def _finite_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")
