"""Rows out of CSV, TSV, JSONL and Parquet files, each tagged with where it came from.

The format follows the extension (``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``, ``.parquet``).
Locations are what error messages quote: ``"line N"`` for text files (1-based physical lines,
the header being line 1; a record spanning lines is named by its first) and ``"row N"`` for
Parquet (1-based data rows). CSV/TSV values are strings; JSONL and Parquet values keep their
types (numbers, lists, datetimes, ``None``). JSONL has no header: the keys of its first record
play that part, later records may omit keys (read as empty) and extra keys are ignored.

Structural problems (unreadable file, undecodable bytes, no header, no rows, a repeated column)
raise ``InvalidInputError``; a row that cannot be split into fields comes back as a ``Record``
with ``problem`` set, so that the caller decides whether it may be skipped.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tastebud.errors import InvalidInputError

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}
_PARQUET_BATCH = 65_536


@dataclass(frozen=True, slots=True)
class Record:
    """One data row: its location, its values by column, and why it is unusable, if it is."""

    location: str
    values: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Table:
    """An open file's columns and a one-pass iterator over its records (at least one)."""

    path: Path
    columns: tuple[str, ...]
    records: Iterator[Record]


def table_format(path: Path) -> str:
    """The format name for ``path``'s extension, or an error listing the supported ones."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InvalidInputError(
            f"{path}: unsupported file type {path.suffix!r}; use .csv, .tsv, .jsonl, .ndjson"
            " or .parquet"
        )
    return kind


@contextmanager
def open_table(path: Path | str, *, encoding: str = "utf-8") -> Iterator[Table]:
    """Open ``path`` for one pass over its records; the file closes when the block ends."""
    path = Path(path)
    kind = table_format(path)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file")
    if kind == "parquet":
        with _parquet_table(path) as table:
            yield table
        return
    # utf-8-sig reads plain UTF-8 too, and drops the BOM spreadsheets put before the header.
    codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    split = _jsonl_records if kind == "jsonl" else _csv_records
    with path.open(encoding=codec, newline="") as f:
        try:
            columns, rows = split(f, path, "\t" if kind == "tsv" else ",")
            first = next(rows, None)
        except UnicodeDecodeError:
            raise _encoding_error(path, codec) from None
        if first is None:  # (a JSONL file without records fails in _jsonl_records)
            raise InvalidInputError(f"{path}: the file has a header but no data rows")
        yield Table(path, columns, _decoded(itertools.chain([first], rows), path, codec))


def _decoded(rows: Iterator[Record], path: Path, codec: str) -> Iterator[Record]:
    """Pass ``rows`` through, turning a decoding failure into an error naming the line."""
    try:
        yield from rows
    except UnicodeDecodeError:
        raise _encoding_error(path, codec) from None


def _encoding_error(path: Path, codec: str) -> InvalidInputError:
    name = "UTF-8" if codec == "utf-8-sig" else codec
    hint = 'set encoding = "latin-1" (or the right one) in the config\'s [items]/[interactions]'
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                raw.decode(codec)
            except UnicodeDecodeError as e:
                return InvalidInputError(
                    f"{path}, line {number}: not valid {name} (byte {raw[e.start]:#04x} at"
                    f" byte {e.start + 1} of the line); {hint}"
                )
            codec = "utf-8" if codec == "utf-8-sig" else codec  # a BOM can only open line 1
    return InvalidInputError(f"{path}: not valid {name}; {hint}")


def _header(names: list[str], path: Path) -> tuple[str, ...]:
    columns = tuple(name.strip() for name in names)
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise InvalidInputError(f"{path}, line 1: column {name!r} appears twice in the header")
        seen.add(name)
    return columns


def _csv_records(
    f: IO[str], path: Path, delimiter: str
) -> tuple[tuple[str, ...], Iterator[Record]]:
    """Read the header now; the rows follow lazily, one ``Record`` per non-blank row."""
    reader = csv.reader(f, delimiter=delimiter)
    header = next(reader, None)
    if header is None or not any(name.strip() for name in header):
        raise InvalidInputError(f"{path}: empty file: no header line")
    columns = _header(header, path)

    def rows() -> Iterator[Record]:
        end = reader.line_num
        while True:
            try:
                row = next(reader, None)
            except csv.Error as e:  # a NUL byte, an oversized field: the file is not CSV
                raise InvalidInputError(f"{path}, line {end + 1}: unreadable CSV: {e}") from None
            if row is None:
                return
            start, end = end + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            location = f"line {start}"
            if len(row) != len(columns):
                problem = f"has {len(row)} fields, the header has {len(columns)}"
                yield Record(location, problem=problem)
            else:
                yield Record(location, dict(zip(columns, row, strict=True)))

    return columns, rows()


def _jsonl_records(f: IO[str], path: Path, _: str) -> tuple[tuple[str, ...], Iterator[Record]]:
    """Read up to the first JSON object, whose keys are the header; the rest follows lazily."""
    pending: list[Record] = []
    lines = enumerate(f, start=1)
    for number, line in lines:
        record = _json_record(number, line)
        if record is not None:
            pending.append(record)
            if record.problem is None:
                break
    else:
        raise InvalidInputError(f"{path}: empty file: no JSON object on any line")
    columns = _header(list(pending[-1].values), path)
    rest = (r for n, line in lines if (r := _json_record(n, line)) is not None)
    return columns, itertools.chain(pending, rest)


def _json_record(number: int, line: str) -> Record | None:
    if not line.strip():
        return None
    location = f"line {number}"
    try:
        value = json.loads(line)
    except json.JSONDecodeError as e:
        return Record(location, problem=f"not valid JSON: {e.msg} (column {e.colno})")
    if not isinstance(value, dict):
        return Record(location, problem=f"is a JSON {type(value).__name__}, not an object")
    return Record(location, {str(k).strip(): v for k, v in value.items()})


@contextmanager
def _parquet_table(path: Path) -> Iterator[Table]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise InvalidInputError(f"{path}: not a readable Parquet file: {e}") from None
    with parquet:
        if parquet.metadata.num_rows == 0:
            raise InvalidInputError(f"{path}: the file has no rows")
        columns = _header(list(parquet.schema_arrow.names), path)

        def records() -> Iterator[Record]:
            numbers = itertools.count(1)
            for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH):
                for values in batch.to_pylist():
                    yield Record(f"row {next(numbers)}", values)

        yield Table(path, columns, records())
