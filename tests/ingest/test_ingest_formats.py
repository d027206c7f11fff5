"""Every supported file format reads back the same catalog and interaction log."""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tastebud.ingest import Catalog, DatasetConfig, load_dataset, read_catalog, read_interactions

# fmt: off
ITEMS = [
    {"item_id": "1", "title": "Toy Story", "year": "1995", "genres": "Animation|Comedy",
     "language": "English", "description": "Toys, alive."},
    {"item_id": "2", "title": "Amélie", "year": "2001", "genres": "Romance",
     "language": "French", "description": ""},
    {"item_id": "10", "title": "Untitled", "year": "", "genres": "",
     "language": "", "description": "A film with\nno year."},
]
_EVENT_ROWS = [
    ("u2", "2", "1700000300", "4", "", "view"),
    ("u1", "10", "1700000200", "", "2.5", ""),
    ("u1", "1", "1700000100", "5", "1", "view"),
]
_EVENT_COLUMNS = ("user_id", "item_id", "timestamp", "rating", "weight", "event")
EVENTS = [dict(zip(_EVENT_COLUMNS, row, strict=True)) for row in _EVENT_ROWS]
# fmt: on


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    """Write ``rows`` in the format ``path``'s extension names, typed the way that format would."""
    columns = list(rows[0])
    if path.suffix in (".csv", ".tsv"):
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, columns, delimiter="," if path.suffix == ".csv" else "\t")
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix in (".jsonl", ".ndjson"):
        with path.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(_typed(row), ensure_ascii=False) + "\n")
    else:
        typed = [_typed(row) for row in rows]
        pq.write_table(pa.Table.from_pylist(typed), path)
    return path


def _typed(row: dict[str, str]) -> dict[str, object]:
    """The row as JSON or Parquet would hold it: numbers, lists, nulls."""
    out: dict[str, object] = dict(row)
    if "genres" in row:
        out["genres"] = [g for g in row["genres"].split("|") if g]
        out["year"] = int(row["year"]) if row["year"] else None
    if "timestamp" in row:
        out["timestamp"] = int(row["timestamp"])
        out["rating"] = float(row["rating"]) if row["rating"] else None
        out["weight"] = float(row["weight"]) if row["weight"] else None
    return out


def _expected_catalog() -> Catalog:
    return Catalog(
        item_ids=["1", "2", "10"],
        titles=["Toy Story", "Amélie", "Untitled"],
        texts=[
            "Toy Story (1995). Genres: Animation, Comedy. Toys, alive.",
            "Amélie (2001). Genres: Romance.",
            "Untitled. A film with no year.",
        ],
        years=[1995, 2001, None],
        attributes={
            "genres": [("Animation", "Comedy"), ("Romance",), ()],
            "language": [("English",), ("French",), ()],
        },
    )


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".ndjson", ".parquet"])
def test_catalog_round_trip(tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path / f"items{suffix}", ITEMS)
    assert read_catalog(path) == _expected_catalog()


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_interactions_round_trip(tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path / f"events{suffix}", EVENTS)
    log, skipped, rows_read = read_interactions(path, {"1", "2", "10"})
    assert (skipped, rows_read) == ({}, 3)
    assert log.user_ids.tolist() == ["u1", "u1", "u2"]  # sorted by (user, time, item)
    assert log.item_ids.tolist() == ["1", "10", "2"]
    assert log.timestamps.tolist() == [1700000100.0, 1700000200.0, 1700000300.0]
    assert log.weights.tolist() == [1.0, 2.5, 1.0]
    assert log.events.tolist() == ["view", "", "view"]
    assert log.ratings[0] == 5 and math.isnan(log.ratings[1]) and log.ratings[2] == 4
    assert log.timestamps.dtype == np.float64 and log.weights.dtype == np.float32
    assert log.ratings.dtype == np.float32 and log.user_ids.dtype.kind == "U"


def test_load_dataset_reports_counts(tmp_path: Path) -> None:
    items = _write(tmp_path / "items.csv", ITEMS)
    events = _write(tmp_path / "events.csv", EVENTS)
    dataset = load_dataset(items, events)
    assert len(dataset.catalog) == 3 and len(dataset.interactions) == 3
    assert dataset.report.summary() == "3 items, 3 interactions"


def test_configured_columns_template_and_filters(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text(
        "sku,name,released,tags,kind\n7,Blue Moods,1959,jazz;live,album\n", encoding="utf-8"
    )
    config = DatasetConfig.from_dict(
        {
            "items": {
                "id_column": "sku",
                "title_column": "name",
                "year_column": "released",
                "text_template": "{name}, {kind} from {released}. Tags: {tags}.",
                "filter_attributes": ["tags", "kind"],
                "multi_valued": ["tags"],
                "separator": ";",
            }
        }
    )
    catalog = read_catalog(path, config)
    assert catalog.texts == ["Blue Moods, album from 1959. Tags: jazz, live."]
    assert catalog.attributes == {"tags": [("jazz", "live")], "kind": [("album",)]}
    assert catalog.years == [1959]


def test_default_template_follows_configured_title_column(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("id,name\n1,Solo\n", encoding="utf-8")
    config = DatasetConfig.from_dict({"items": {"id_column": "id", "title_column": "name"}})
    catalog = read_catalog(path, config)
    assert catalog.texts == ["Solo."] and catalog.years == [None] and catalog.attributes == {}


def test_latin1_file_with_configured_encoding(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes("item_id,title\n1,Misérables\n".encode("latin-1"))
    config = DatasetConfig.from_dict({"items": {"encoding": "latin-1"}})
    assert read_catalog(path, config).titles == ["Misérables"]


def test_utf8_bom_and_blank_lines_are_harmless(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes(b"\xef\xbb\xbfitem_id,title\r\n\r\n1,A\r\n\r\n2,B\r\n")
    assert read_catalog(path).item_ids == ["1", "2"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T14:00:00+02:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01 12:00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),  # naive means UTC
        ("2024-05-01T12:00:00.250", datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("1714564800", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("1714564800.0", datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ],
)
def test_timestamps_iso_and_unix(tmp_path: Path, value: str, expected: datetime) -> None:
    path = tmp_path / "events.csv"
    path.write_text(f"user_id,item_id,timestamp\nu,1,{value}\n", encoding="utf-8")
    log, _, _ = read_interactions(path, {"1"})
    assert log.timestamps[0] == expected.timestamp()


def test_parquet_native_timestamps(tmp_path: Path) -> None:
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    table = pa.table(
        {"user_id": ["u"], "item_id": [1], "timestamp": pa.array([when], pa.timestamp("s", "UTC"))}
    )
    pq.write_table(table, tmp_path / "events.parquet")
    log, _, _ = read_interactions(tmp_path / "events.parquet", {"1"})
    assert log.timestamps[0] == when.timestamp() and log.item_ids[0] == "1"
