"""The cluster TOML: what it accepts, what it refuses (naming the key), and the gRPC service config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tastebud.cluster.config import (SHARD_SERVICE, ClusterConfig, RetrySettings, ShardTarget, parse_cluster_config,
                                     read_cluster_config)
from tastebud.errors import InvalidInputError

GOOD = """
index = "indexes"
watch_seconds = 1.5

[router]
shard_timeout_ms = 300

[retry]
max_attempts = 4

[[shards]]
shard = 1
target = "dns:///tastebud-shard-1.tastebud.svc.cluster.local:50061"

[[shards]]
shard = 0
target = "ipv4:127.0.0.1:50061,127.0.0.1:50062"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    return path


def test_a_good_file_reads_with_paths_relative_to_it(tmp_path: Path) -> None:
    config = read_cluster_config(write(tmp_path, GOOD))
    assert config.index == tmp_path / "indexes" and config.watch_seconds == 1.5
    assert config.router.shard_timeout_ms == 300 and config.retry.max_attempts == 4
    assert {s.shard: s.addresses for s in config.shards} == {0: ("127.0.0.1:50061", "127.0.0.1:50062"), 1: ()}


def test_to_toml_reads_back_the_same(tmp_path: Path) -> None:
    config = read_cluster_config(write(tmp_path, GOOD))
    again = read_cluster_config(write(tmp_path, config.to_toml()))
    assert again == config


@pytest.mark.parametrize("change, named", [
    (lambda t: t.replace("watch_seconds", "watch_secs"), "watch_secs: unknown key"),
    (lambda t: t.replace("shard_timeout_ms = 300", "shard_timeout = 300"), "router.shard_timeout: unknown key"),
    (lambda t: t.replace("max_attempts = 4", "max_attempts = 9"), "retry.max_attempts must be within 1..5"),
    (lambda t: t.replace("max_attempts = 4", 'max_attempts = "4"'), "retry.max_attempts: must be int"),
    (lambda t: t.replace("shard = 1\n", "shard = 2\n"), "shards: must list shards 0..N-1"),
    (lambda t: t.replace('target = "dns', 'targt = "dns'), "shards[0].targt: unknown key"),
    (lambda t: t.replace('index = "indexes"', ""), "index: required"),
    (lambda t: t.replace("shard_timeout_ms = 300", "shard_timeout_ms = -1"), "router.shard_timeout_ms must be"),
    (lambda t: t + "\n[[shards]]\nshard = 1\ntarget = \"x:1\"\n", "shards: must list shards 0..N-1 once each"),
    (lambda t: t.replace("[router]", "[router"), "not valid TOML"),
])
def test_bad_files_are_refused_naming_the_key(tmp_path: Path, change, named: str) -> None:
    path = write(tmp_path, change(GOOD))
    with pytest.raises(InvalidInputError) as caught:
        read_cluster_config(path)
    assert named in str(caught.value) and str(path) in str(caught.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot read the cluster config"):
        read_cluster_config(tmp_path / "nope.toml")


def test_service_config_balances_health_checks_and_retries_unavailable() -> None:
    config = ClusterConfig(Path("i"), (ShardTarget(0, "ipv4:127.0.0.1:1"),), retry=RetrySettings(3, 5, 50))
    service = json.loads(config.service_config())
    assert service["loadBalancingConfig"] == [{"round_robin": {}}]
    assert service["healthCheckConfig"] == {"serviceName": SHARD_SERVICE}
    retry = service["methodConfig"][0]["retryPolicy"]
    assert retry["maxAttempts"] == 3 and retry["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert retry["initialBackoff"] == "0.005s" and retry["maxBackoff"] == "0.050s"


def test_parse_accepts_an_absolute_index_as_it_is() -> None:
    config = parse_cluster_config({"index": "/srv/indexes", "shards": [{"shard": 0, "target": "h:1"}]}, "x")
    assert config.index == Path("/srv/indexes") and config.shards[0].addresses == ("h:1",)
