"""Server configuration: search-depth overrides are validated and reach the loaded shards."""

from __future__ import annotations

from pathlib import Path

import pytest

from tastebud.errors import InvalidInputError
from tastebud.server.config import ServerConfig


def test_search_overrides_are_only_what_was_set():
    assert ServerConfig(index=Path("x")).tuning_overrides() == {}
    assert ServerConfig(index=Path("x"), ef_search=300).tuning_overrides() == {"ef_search": 300}


@pytest.mark.parametrize("field", ["ef_search", "nprobe"])
def test_bad_search_depths_are_refused_by_name(field):
    with pytest.raises(InvalidInputError, match=field):
        ServerConfig(index=Path("x"), **{field: 0})


def test_a_toml_file_can_set_them_and_unknown_keys_are_named(tmp_path):
    path = tmp_path / "server.toml"
    path.write_text('index = "indexes"\nef_search = 256\n')
    assert ServerConfig.from_toml(path).ef_search == 256
    path.write_text('index = "indexes"\nef_serch = 256\n')
    with pytest.raises(InvalidInputError, match="ef_serch"):
        ServerConfig.from_toml(path)
