"""The cluster config (TOML): which shards exist, where their replicas are, and the router's budgets.

One file describes a deployment, the same shape on one machine (``tastebud cluster up`` writes
it) and on Kubernetes (a ConfigMap). Each shard is one gRPC *target*: a list of replicas
(``ipv4:127.0.0.1:50061,127.0.0.1:50062``) or a DNS name with one address per pod
(``dns:///tastebud-shard-2.tastebud.svc.cluster.local:50061``); gRPC's ``round_robin`` policy
balances over it. Unknown keys and bad values are refused with the key's full name::

    index = "/data/indexes"           # index root: the router reads items, histories, models
    watch_seconds = 2.0               # how often the published `current` pointer is checked

    [router]
    shard_timeout_ms = 250            # a shard answer later than this is dropped (degraded)
    vector_cache_items = 200000       # history vectors fetched from shards, kept per version

    [retry]                           # gRPC's own retry policy, per shard call
    max_attempts = 3
    initial_backoff_ms = 5
    max_backoff_ms = 50

    [[shards]]
    shard = 0
    target = "ipv4:127.0.0.1:50061,127.0.0.1:50062"
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tastebud.errors import InvalidInputError

SHARD_SERVICE = "tastebud.v1.Shard"


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """gRPC retry policy of a shard call: UNAVAILABLE is tried again on another replica."""

    max_attempts: int = 3
    initial_backoff_ms: float = 5.0
    max_backoff_ms: float = 50.0

    def __post_init__(self) -> None:
        # gRPC caps maxAttempts at 5; fewer than 2 means no retry at all.
        if not 1 <= self.max_attempts <= 5:
            raise InvalidInputError(f"retry.max_attempts must be within 1..5, got {self.max_attempts}")
        if not 0 < self.initial_backoff_ms <= self.max_backoff_ms:
            raise InvalidInputError(f"retry.initial_backoff_ms must be > 0 and <= retry.max_backoff_ms, got "
                                    f"{self.initial_backoff_ms} and {self.max_backoff_ms}")


@dataclass(frozen=True, slots=True)
class RouterSettings:
    shard_timeout_ms: float = 250.0
    vector_cache_items: int = 200_000

    def __post_init__(self) -> None:
        if not 0 < self.shard_timeout_ms <= 60_000:
            raise InvalidInputError(f"router.shard_timeout_ms must be within (0, 60000], got {self.shard_timeout_ms}")
        if not 0 <= self.vector_cache_items <= 100_000_000:
            raise InvalidInputError(f"router.vector_cache_items must be within 0..1e8, got {self.vector_cache_items}")


@dataclass(frozen=True, slots=True)
class ShardTarget:
    shard: int
    target: str

    def __post_init__(self) -> None:
        if self.shard < 0:
            raise InvalidInputError(f"shards[].shard must be >= 0, got {self.shard}")
        if not self.target.strip():
            raise InvalidInputError(f"shards[{self.shard}].target must not be empty")

    @property
    def addresses(self) -> tuple[str, ...]:
        """The replicas' host:port when the target lists them (``ipv4:`` or a plain address), else ()."""
        spec = self.target
        for scheme in ("ipv4:", "ipv6:"):
            if spec.startswith(scheme):
                return tuple(a for a in spec[len(scheme):].split(",") if a)
        return () if ":///" in spec or spec.startswith("dns:") else (spec,)


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    index: Path
    shards: tuple[ShardTarget, ...]
    watch_seconds: float = 2.0
    router: RouterSettings = field(default_factory=RouterSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)

    def __post_init__(self) -> None:
        numbers = sorted(s.shard for s in self.shards)
        if numbers != list(range(len(numbers))) or not numbers:
            raise InvalidInputError(f"shards: must list shards 0..N-1 once each, got {numbers}")
        if not 0.05 <= self.watch_seconds <= 3600:
            raise InvalidInputError(f"watch_seconds must be within 0.05..3600, got {self.watch_seconds}")

    def service_config(self) -> str:
        """The gRPC service config (JSON) of every shard channel: round_robin over the replicas,
        health-checked on the shard service's name, UNAVAILABLE retried on another replica."""
        return json.dumps({
            "loadBalancingConfig": [{"round_robin": {}}],
            "healthCheckConfig": {"serviceName": SHARD_SERVICE},
            "methodConfig": [{
                "name": [{"service": SHARD_SERVICE}],
                "retryPolicy": {
                    "maxAttempts": self.retry.max_attempts,
                    "initialBackoff": f"{self.retry.initial_backoff_ms / 1000:.3f}s",
                    "maxBackoff": f"{self.retry.max_backoff_ms / 1000:.3f}s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }],
        })

    def to_toml(self) -> str:
        """This config as TOML that :func:`read_cluster_config` reads back (the launcher writes it)."""
        lines = [f"index = {json.dumps(str(self.index))}", f"watch_seconds = {self.watch_seconds}", "",
                 "[router]", f"shard_timeout_ms = {self.router.shard_timeout_ms}",
                 f"vector_cache_items = {self.router.vector_cache_items}", "", "[retry]",
                 f"max_attempts = {self.retry.max_attempts}", f"initial_backoff_ms = {self.retry.initial_backoff_ms}",
                 f"max_backoff_ms = {self.retry.max_backoff_ms}"]
        for s in sorted(self.shards, key=lambda s: s.shard):
            lines += ["", "[[shards]]", f"shard = {s.shard}", f"target = {json.dumps(s.target)}"]
        return "\n".join(lines) + "\n"


def _section(data: dict[str, Any], cls: type, prefix: str) -> Any:
    """Build dataclass ``cls`` from a TOML table, naming unknown keys and mistyped values."""
    if not isinstance(data, dict):
        raise InvalidInputError(f"{prefix}: must be a table")
    known = {f.name: f for f in fields(cls)}
    for key, value in data.items():
        if key not in known:
            raise InvalidInputError(f"{prefix}.{key}: unknown key; known: {sorted(known)}")
        wanted = known[key].type
        ok = {"int": isinstance(value, int) and not isinstance(value, bool),
              "float": isinstance(value, (int, float)) and not isinstance(value, bool),
              "str": isinstance(value, str)}.get(str(wanted), True)
        if not ok:
            raise InvalidInputError(f"{prefix}.{key}: must be {wanted}, got {value!r}")
    try:
        return cls(**data)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{prefix}: {exc}") from exc


def parse_cluster_config(data: dict[str, Any], source: str, base: Path | None = None) -> ClusterConfig:
    """Validate a parsed TOML document; ``index`` may be relative to ``base`` (the file's folder)."""
    known = {"index", "watch_seconds", "router", "retry", "shards"}
    for key in data:
        if key not in known:
            raise InvalidInputError(f"{source}: {key}: unknown key; known: {sorted(known)}")
    if not isinstance(data.get("index"), str):
        raise InvalidInputError(f"{source}: index: required, the index root (a string path)")
    shards = data.get("shards")
    if not isinstance(shards, list) or not shards:
        raise InvalidInputError(f"{source}: shards: required, one [[shards]] table per shard")
    try:
        targets = tuple(sorted((_section(s, ShardTarget, f"shards[{i}]") for i, s in enumerate(shards)),
                               key=lambda t: t.shard))
        watch = data.get("watch_seconds", 2.0)
        if isinstance(watch, bool) or not isinstance(watch, (int, float)):
            raise InvalidInputError(f"watch_seconds: must be a number, got {watch!r}")
        index = Path(data["index"])
        if base is not None and not index.is_absolute():
            index = base / index
        return ClusterConfig(index, targets, float(watch), _section(data.get("router", {}), RouterSettings, "router"),
                             _section(data.get("retry", {}), RetrySettings, "retry"))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{source}: {exc}") from exc


def read_cluster_config(path: Path) -> ClusterConfig:
    """Read and validate a cluster TOML file; errors name the file and the key."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read the cluster config: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{path}: not valid TOML: {exc}") from exc
    return parse_cluster_config(data, str(path), base=Path(path).parent)
