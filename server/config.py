"""Server configuration: typed, validated once, immutable.

Set from the ``tastebud serve`` flags, or a TOML file (``--config``) whose keys are the field
names; unknown keys are refused with the list of known ones.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tastebud.embed.encoder import DEFAULT_MODEL
from tastebud.errors import InvalidInputError
from tastebud.ingest.interaction_store import STORE_NAME


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """``index``: an index root (serves its ``current``) or a version folder.
    ``store``: the SQLite interaction store (default ``<index root>/interactions.sqlite``).
    ``workers``: threads for FAISS and the encoder; ``max_concurrent_rpcs``: admission cap.
    ``model``: must be the model the index was built with (checked by fingerprint).
    ``ef_search`` / ``nprobe``: search depth, overriding what the index was built with.
    ``event_loop``: uvloop (when installed; plain asyncio otherwise) or asyncio.
    ``batch_search``: concurrent unfiltered shard searches share one FAISS call."""

    index: Path
    host: str = "127.0.0.1"
    port: int = 50051
    store: Path | None = None
    model: str = DEFAULT_MODEL
    workers: int = max(2, os.cpu_count() or 2)
    max_concurrent_rpcs: int = 256
    faiss_threads: int = 1
    grace_seconds: float = 5.0
    ef_search: int | None = None
    nprobe: int | None = None
    event_loop: str = "uvloop"
    batch_search: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InvalidInputError(f"port must be within 0..65535, got {self.port}")
        if not 1 <= self.workers <= 256:
            raise InvalidInputError(f"workers must be within 1..256, got {self.workers}")
        if not 1 <= self.max_concurrent_rpcs <= 100_000:
            raise InvalidInputError(f"max_concurrent_rpcs must be within 1..100000, got {self.max_concurrent_rpcs}")
        if not 1 <= self.faiss_threads <= 64:
            raise InvalidInputError(f"faiss_threads must be within 1..64, got {self.faiss_threads}")
        if self.event_loop not in ("uvloop", "asyncio"):
            raise InvalidInputError(f"event_loop must be uvloop or asyncio, got {self.event_loop!r}")
        for name in ("ef_search", "nprobe"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 100_000:
                raise InvalidInputError(f"{name} must be within 1..100000, got {value}")
        if self.grace_seconds < 0:
            raise InvalidInputError(f"grace_seconds must be >= 0, got {self.grace_seconds}")

    def tuning_overrides(self) -> dict[str, float]:
        """Search knobs set for this server, overriding the ones the index was built with."""
        return {name: getattr(self, name) for name in ("ef_search", "nprobe") if getattr(self, name) is not None}

    @property
    def store_path(self) -> Path:
        if self.store is not None:
            return self.store
        root = self.index if not (self.index / "manifest.json").exists() else self.index.parent
        return root / STORE_NAME

    @classmethod
    def from_toml(cls, path: Path, **overrides: Any) -> "ServerConfig":
        with open(path, "rb") as f:
            data = tomllib.load(f)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInputError(f"{path}: unknown keys {unknown}; known: {sorted(known)}")
        for key in ("index", "store"):
            if key in data:
                data[key] = Path(data[key])
        data.update(overrides)
        if "index" not in data:
            raise InvalidInputError(f"{path}: no index given (key `index` or --index)")
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidInputError(f"{path}: {exc}") from exc
