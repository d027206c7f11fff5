"""``manifest.json``: what an index version is, and the only thing its loader believes.

It records the format version, the embedding model and its weights' fingerprint, the
retrieval model (kind, dimension, training parameters and validation metrics), the metric and
FAISS factory, per-file sha256 and sizes, per-shard counts, the build parameters and the data
report. ``verify_files`` re-hashes every file before serving.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from tastebud.errors import IndexIntegrityError

FORMAT_VERSION = 2  # 2: two vector spaces per shard (files by role) and a retrieval model
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    fingerprint: str
    dimension: int
    normalized: bool = True


SPACES = ("item", "text")
"""Searchable vector spaces of every shard: ``item`` (recommendation, the retrieval model's
[p_j, b_j]) and ``text`` (the encoder's normalised text embeddings, for search)."""


@dataclass(frozen=True, slots=True)
class ShardEntry:
    """One shard: its item count and its files by role (``item_index``, ``item_vectors``,
    ``query_vectors``, ``text_index``, ``text_vectors``, ``ids``)."""

    shard: int
    count: int
    files: dict[str, str]


@dataclass(frozen=True, slots=True)
class Manifest:
    version: str
    created_at: str
    model: ModelInfo
    retrieval: dict[str, Any]
    metric: str
    factory: str
    n_items: int
    n_users: int
    n_events: int
    shards: tuple[ShardEntry, ...]
    files: dict[str, dict[str, Any]]
    filter_attributes: tuple[str, ...]
    build: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> "Manifest":
        fmt = data.get("format_version")
        if fmt != FORMAT_VERSION:
            raise IndexIntegrityError(
                f"{source}: index format version {fmt!r}, this tastebud reads version {FORMAT_VERSION}; rebuild the index")
        try:
            return cls(
                version=data["version"], created_at=data["created_at"], model=ModelInfo(**data["model"]),
                retrieval=dict(data["retrieval"]),
                metric=data["metric"], factory=data["factory"], n_items=int(data["n_items"]),
                n_users=int(data["n_users"]), n_events=int(data["n_events"]),
                shards=tuple(ShardEntry(**s) for s in data["shards"]), files=dict(data["files"]),
                filter_attributes=tuple(data["filter_attributes"]), build=dict(data.get("build", {})),
                format_version=fmt,
            )
        except (KeyError, TypeError) as exc:
            raise IndexIntegrityError(f"{source}: malformed manifest ({exc})") from exc


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_files(directory: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """sha256 and size of each named file of ``directory``, for the manifest."""
    return {n: {"sha256": sha256_file(directory / n), "bytes": (directory / n).stat().st_size} for n in sorted(names)}


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise IndexIntegrityError(f"{directory} is not an index version: {MANIFEST_NAME} is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexIntegrityError(f"{path}: unreadable manifest ({exc})") from exc
    return Manifest.from_dict(data, str(path))


def shard_file_names(manifest: Manifest) -> set[str]:
    return {name for s in manifest.shards for name in s.files.values()}


def verify_files(directory: Path, manifest: Manifest, names: Iterable[str] | None = None) -> None:
    """Raise IndexIntegrityError unless every listed file (or just ``names``, e.g. one shard's
    process checks only its own) exists with its recorded size and sha256."""
    wanted = manifest.files if names is None else {n: manifest.files.get(n) for n in names}
    for name, meta in wanted.items():
        if meta is None:
            raise IndexIntegrityError(f"{directory / name}: not listed in the manifest's checksums")
        path = directory / name
        if not path.is_file():
            raise IndexIntegrityError(f"{path}: listed in the manifest but missing")
        size = path.stat().st_size
        if size != meta["bytes"]:
            raise IndexIntegrityError(f"{path}: {size} bytes, the manifest says {meta['bytes']}")
        actual = sha256_file(path)
        if actual != meta["sha256"]:
            raise IndexIntegrityError(f"{path}: sha256 {actual[:16]}..., the manifest says {meta['sha256'][:16]}...; "
                                      "the file is corrupt or was modified")
    unlisted = shard_file_names(manifest) - set(manifest.files)
    if unlisted:
        raise IndexIntegrityError(f"{directory}: shard files without checksums in the manifest: {sorted(unlisted)}")
