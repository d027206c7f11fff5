"""Bad input: every message names the file and the line (or row), and skip mode counts instead."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tastebud.errors import InvalidInputError
from tastebud.ingest import DatasetConfig, load_dataset, read_catalog, read_interactions

ITEMS = "item_id,title\n1,A\n2,B\n"
SKIP = DatasetConfig.from_dict({"interactions": {"on_error": "skip"}})


def _file(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _error(call, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError) as info:
        call(*args)
    return str(info.value)


def test_missing_column_lists_what_was_found(tmp_path: Path) -> None:
    path = _file(tmp_path, "items.csv", "item_id,name\n1,A\n")
    message = _error(read_catalog, path)
    assert str(path) in message and "missing column 'title'" in message
    assert "columns found: item_id, name" in message


def test_missing_interaction_column(tmp_path: Path) -> None:
    path = _file(tmp_path, "events.csv", "user_id,item_id\nu,1\n")
    message = _error(read_interactions, path, {"1"}, SKIP)  # structural: fails even in skip mode
    assert str(path) in message and "'timestamp'" in message and "user_id, item_id" in message


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("items.csv", "", "empty file: no header line"),
        ("items.csv", "\n\n", "empty file: no header line"),
        ("items.csv", "item_id,title\n", "a header but no data rows"),
        ("items.jsonl", "\n", "no JSON object"),
    ],
)
def test_empty_files(tmp_path: Path, name: str, content: str, expected: str) -> None:
    path = _file(tmp_path, name, content)
    message = _error(read_catalog, path)
    assert str(path) in message and expected in message


def test_empty_parquet(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"item_id": pa.array([], pa.string()), "title": pa.array([], pa.string())}),
        tmp_path / "items.parquet",
    )
    assert "no rows" in _error(read_catalog, tmp_path / "items.parquet")


def test_duplicate_item_id_names_both_lines(tmp_path: Path) -> None:
    path = _file(tmp_path, "items.csv", "item_id,title\n1,A\n2,B\n1,C\n")
    message = _error(read_catalog, path)
    assert f"{path}, line 4: duplicate item id '1' (first on line 2)" in message


def test_empty_item_id_and_title(tmp_path: Path) -> None:
    path = _file(tmp_path, "items.csv", "item_id,title\n1,A\n ,B\n")
    assert f"{path}, line 3: empty item id" in _error(read_catalog, path)
    path = _file(tmp_path, "items.csv", "item_id,title\n1,A\n2,\n")
    assert f"{path}, line 3: empty title" in _error(read_catalog, path)


def test_bad_year(tmp_path: Path) -> None:
    path = _file(tmp_path, "items.csv", "item_id,title,year\n1,A,1995\n2,B,soon\n")
    assert f"{path}, line 3: year 'soon' is not a whole number" in _error(read_catalog, path)


def test_unknown_placeholder_checked_against_header(tmp_path: Path) -> None:
    path = _file(tmp_path, "items.csv", ITEMS)
    config = DatasetConfig.from_dict({"items": {"text_template": "{title} by {director}"}})
    message = _error(read_catalog, path, config)
    assert str(path) in message and "{director}" in message and "columns: item_id, title" in message


def test_wrong_field_count_names_the_line_a_multiline_record_starts_on(tmp_path: Path) -> None:
    path = _file(tmp_path, "items.csv", 'item_id,title\n1,"A\nlong title"\n2,B,extra\n')
    assert f"{path}, line 4: has 3 fields, the header has 2" in _error(read_catalog, path)


def test_bad_encoding_names_the_line(tmp_path: Path) -> None:
    path = _file(tmp_path, "items.csv", b"item_id,title\n1,A\n2,B\xff\xfe\n")
    message = _error(read_catalog, path)
    assert f"{path}, line 3: not valid UTF-8" in message and "encoding" in message


def test_bad_encoding_far_into_a_big_file(tmp_path: Path) -> None:
    rows = "".join(f"{i},Title {i}\n" for i in range(1, 5000))
    path = _file(tmp_path, "items.csv", ("item_id,title\n" + rows).encode() + b"5000,\xe9t\xe9\n")
    assert f"{path}, line 5001: not valid UTF-8" in _error(read_catalog, path)


def test_oversized_field_is_unreadable_csv(tmp_path: Path) -> None:
    path = _file(tmp_path, "items.csv", "item_id,title\n1,A\n2," + "B" * 200_000 + "\n")
    assert f"{path}, line 3: unreadable CSV" in _error(read_catalog, path)


def test_duplicate_header_column(tmp_path: Path) -> None:
    path = _file(tmp_path, "items.csv", "item_id,title,title\n1,A,B\n")
    assert f"{path}, line 1: column 'title' appears twice" in _error(read_catalog, path)


def test_unsupported_extension_and_missing_file(tmp_path: Path) -> None:
    assert "unsupported file type '.xlsx'" in _error(read_catalog, tmp_path / "items.xlsx")
    assert "no such file" in _error(read_catalog, tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("row", "expected"),
    [  # columns: user_id,item_id,timestamp,weight,rating
        ("u,99,1700000000,,", "line 3: unknown item id '99' (not in the catalog)"),
        ("u,1,yesterday,,", "line 3: timestamp 'yesterday' is neither Unix seconds nor ISO-8601"),
        ("u,1,,,", "line 3: timestamp is empty"),
        ("u,1,1700000000,heavy,", "line 3: weight 'heavy' is not a number"),
        ("u,1,1700000000,-1,", "line 3: weight -1 is negative"),
        ("u,1,1700000000,inf,", "line 3: weight 'inf' is not finite"),
        ("u,1,1700000000,nan,", "line 3: weight 'nan' is not finite"),
        ("u,1,1700000000,1,five", "line 3: rating 'five' is not a number"),
        (",1,1700000000,,", "line 3: empty user id"),
        ("u,,1700000000,,", "line 3: empty item id"),
        ("u,1", "line 3: has 2 fields, the header has 5"),
    ],
)
def test_bad_interaction_rows(tmp_path: Path, row: str, expected: str) -> None:
    content = "user_id,item_id,timestamp,weight,rating\nu,1,1700000000,,\n" + row + "\n"
    path = _file(tmp_path, "events.csv", content)
    assert f"{path}, {expected}" in _error(read_interactions, path, {"1", "2"})


def test_bad_rows_in_jsonl_and_parquet_name_line_and_row(tmp_path: Path) -> None:
    path = _file(
        tmp_path, "events.jsonl", '{"user_id": "u", "item_id": "1", "timestamp": 1}\n{oops\n'
    )
    assert f"{path}, line 2: not valid JSON" in _error(read_interactions, path, {"1"})
    path = _file(
        tmp_path, "events.ndjson", '{"user_id": "u", "item_id": "1", "timestamp": 1}\n[1]\n'
    )
    assert f"{path}, line 2: is a JSON list, not an object" in _error(
        read_interactions, path, {"1"}
    )
    pq.write_table(
        pa.table({"user_id": ["u", "u"], "item_id": ["1", "7"], "timestamp": [1, 2]}),
        tmp_path / "events.parquet",
    )
    message = _error(read_interactions, tmp_path / "events.parquet", {"1"})
    assert f"{tmp_path / 'events.parquet'}, row 2: unknown item id '7'" in message


def test_skip_mode_counts_each_reason_and_keeps_the_rest(tmp_path: Path) -> None:
    items = _file(tmp_path, "items.csv", ITEMS)
    events = _file(
        tmp_path,
        "events.csv",
        "\n".join(
            [
                "user_id,item_id,timestamp,weight",
                "u1,1,1700000000,",
                "u1,99,1700000001,",
                "u2,2,not-a-time,",
                "u2,2,1700000002,heavy",
                "u2,98,1700000003,",
                "u2,2,1700000004,",
                "u3,1",
            ]
        )
        + "\n",
    )
    dataset = load_dataset(items, events, SKIP)
    assert dataset.report.skipped == {
        "unknown item id": 2,
        "bad timestamp": 1,
        "bad weight": 1,
        "malformed row": 1,
    }
    assert dataset.report.interactions_read == 7
    assert dataset.interactions.item_ids.tolist() == ["1", "2"]
    assert re.fullmatch(
        r"2 items, 7 interactions, skipped 1 \(bad timestamp\), skipped 1 \(bad weight\),"
        r" skipped 1 \(malformed row\), skipped 2 \(unknown item id\)",
        dataset.report.summary(),
    )


def test_skip_mode_with_nothing_left_fails(tmp_path: Path) -> None:
    events = _file(tmp_path, "events.csv", "user_id,item_id,timestamp\nu,9,1\n")
    message = _error(read_interactions, events, {"1"}, SKIP)
    assert "no usable rows; all 1 skipped (1 unknown item id)" in message


def test_structural_catalog_errors_ignore_skip_mode(tmp_path: Path) -> None:
    items = _file(tmp_path, "items.csv", "item_id,title\n1,A\n1,B\n")
    events = _file(tmp_path, "events.csv", "user_id,item_id,timestamp\nu,1,1\n")
    assert "duplicate item id" in _error(load_dataset, items, events, SKIP)
