"""Server configuration: search-depth overrides are validated and reach the loaded shards; a taken port is named."""

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


def test_a_taken_port_is_a_clear_error_that_names_the_address():
    """Binding comes before anything loads (the index here does not exist): the operator hears
    that the port is taken, not grpc's RuntimeError."""
    import asyncio
    import socket

    from tastebud.errors import PreconditionError
    from tastebud.server.app import start_server

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PreconditionError, match=f"could not bind 127.0.0.1:{port}: is another server using"):
            asyncio.run(start_server(ServerConfig(index=Path("no-such-index"), host="127.0.0.1", port=port)))
