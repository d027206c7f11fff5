"""DatasetConfig: defaults, TOML loading, and precise rejection of bad keys and values."""

from __future__ import annotations

from pathlib import Path

import pytest

from tastebud.errors import InvalidInputError
from tastebud.ingest import DatasetConfig

FULL = """
[items]
id_column = "sku"
title_column = "name"
year_column = "released"
text_template = "{name} ({released}). {blurb}"
filter_attributes = ["genres", "language"]
multi_valued = ["genres"]
separator = ";"
encoding = "latin-1"

[interactions]
user_column = "account"
on_error = "skip"
"""


def test_defaults_need_no_file() -> None:
    config = DatasetConfig()
    assert config.items.id_column == "item_id"
    assert config.items.separator == "|"
    assert config.interactions.on_error == "fail"
    assert DatasetConfig.from_dict({}) == config


def test_from_toml_reads_every_key(tmp_path: Path) -> None:
    path = tmp_path / "dataset.toml"
    path.write_text(FULL, encoding="utf-8")
    config = DatasetConfig.from_toml(path)
    assert config.items.id_column == "sku"
    assert config.items.filter_attributes == ("genres", "language")
    assert config.items.multi_valued == ("genres",)
    assert config.items.encoding == "latin-1"
    assert config.interactions.user_column == "account"
    assert config.interactions.on_error == "skip"
    assert config.interactions.item_column == "item_id"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"items": {"colour": "red"}}, r"unknown key \[items\]\.colour"),
        ({"itemz": {}}, r"unknown key itemz"),
        ({"interactions": {"on_error": "ignore"}}, r"on_error must be one of fail, skip"),
        ({"items": {"multi_valued": "genres"}}, r"\[items\]\.multi_valued must be a list"),
        ({"items": {"separator": 1}}, r"\[items\]\.separator must be a string"),
        ({"items": {"separator": ""}}, r"\[items\]\.separator must not be empty"),
        ({"items": {"encoding": "klingon"}}, r"\[items\]\.encoding: unknown encoding"),
        ({"items": {"text_template": "{title:>5}"}}, r"\[items\]\.text_template"),
        ({"items": {"filter_attributes": ["year"]}}, r"range-filterable"),
        ({"items": "nope"}, r"\[items\] must be a table"),
    ],
)
def test_bad_config_names_source_and_key(data: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as info:
        DatasetConfig.from_dict(data, source="my.toml")
    assert str(info.value).startswith("my.toml: ")


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[items\nid_column = 1\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"broken\.toml: not valid TOML.*line 1"):
        DatasetConfig.from_toml(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="config file not found"):
        DatasetConfig.from_toml(tmp_path / "absent.toml")
