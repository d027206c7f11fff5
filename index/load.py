"""Opening a published index version for serving: verify first, then load.

Every file is checked against the manifest's sha256 and size, the model against the encoder
that will embed queries (name-independent: by weights fingerprint and dimension), and each
shard's shapes against the manifest. Any mismatch is an ``IndexIntegrityError`` that states
both sides; nothing half-loaded is ever served.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from tastebud.embed.user_tower import UserTower
from tastebud.errors import IndexIntegrityError
from tastebud.index.faiss_index import SearchTuning
from tastebud.index.filters import ItemTable
from tastebud.index.histories import UserHistories
from tastebud.index.items import ItemStore
from tastebud.index.manifest import Manifest, read_manifest, shard_file_names, verify_files
from tastebud.index.publish import resolve_version_dir
from tastebud.index.shards import LocalShard
from tastebud.server.learned_ranker import LearnedRanker

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadedIndex:
    """One index version in memory: its manifest, item store, build-time histories, shards, user
    tower, the filter table over all items (built once; shards hold subsets of it) and ranker."""

    version_dir: Path
    manifest: Manifest
    items: ItemStore
    histories: UserHistories
    shards: tuple[LocalShard, ...]
    tower: UserTower
    table: ItemTable
    ranker: LearnedRanker | None = None


def check_model(manifest: Manifest, fingerprint: str, dimension: int, source: str) -> None:
    """Refuse an index whose vectors came from other weights than the query encoder's."""
    if manifest.model.dimension != dimension:
        raise IndexIntegrityError(f"{source}: index has {manifest.model.dimension} dimensions, "
                                  f"the model produces {dimension}")
    if manifest.model.fingerprint != fingerprint:
        raise IndexIntegrityError(
            f"{source}: index was built with model {manifest.model.name!r} (weights {manifest.model.fingerprint[:12]}), "
            f"the server's model has weights {fingerprint[:12]}; rebuild the index or serve it with its model")


def open_index(path: Path, *, fingerprint: str, dimension: int, tuning_overrides: dict[str, float] | None = None,
               executor: Executor | None = None, batching: bool = True, with_shards: bool = True) -> LoadedIndex:
    """Verify and load the version at ``path`` (a version folder, or an index root's ``current``).

    ``with_shards=False`` is the router's view: everything but the vectors (ids, titles,
    attributes, histories, the user tower, the ranker), with the shards served elsewhere; their
    files are then left to the shard processes to verify."""
    version_dir = resolve_version_dir(Path(path))
    manifest = read_manifest(version_dir)
    check_model(manifest, fingerprint, dimension, str(version_dir))
    verify_files(version_dir, manifest, None if with_shards else set(manifest.files) - shard_file_names(manifest))
    items = read_items(version_dir, manifest)
    histories = UserHistories.read(version_dir / "users.parquet")
    table = items.table()
    shards = tuple(open_shard(version_dir, manifest, entry.shard, table, tuning_overrides, executor, batching,
                              verify=False)
                   for entry in manifest.shards) if with_shards else ()
    item_dimension = int(manifest.retrieval["dimension"])
    tower = UserTower.load(version_dir / manifest.retrieval["user_tower"])
    if tower.text_projection is not None and tower.text_projection.shape != (dimension, item_dimension - 1):
        raise IndexIntegrityError(f"{version_dir}: the user tower maps {tower.text_projection.shape[0]}-d text to "
                                  f"{tower.text_projection.shape[1]}-d, the index needs {dimension} -> "
                                  f"{item_dimension - 1}")
    if with_shards and sum(s.info().count for s in shards) != len(items):
        raise IndexIntegrityError(f"{version_dir}: shards hold {sum(s.info().count for s in shards)} items, "
                                  f"the item store {len(items)}")
    log.info("loaded index %s: %d items, %d users, %d shards%s (%s, %s retrieval)", manifest.version, len(items),
             len(histories), len(manifest.shards), "" if with_shards else " served elsewhere", manifest.factory,
             manifest.retrieval["kind"])
    ranker = None
    if manifest.retrieval.get("ranker"):
        files = manifest.retrieval["ranker"]
        ranker = LearnedRanker.load(version_dir / files["model"], version_dir / files["neighbours"], items,
                                    for_new_items=bool(files.get("new_items", False)))
    return LoadedIndex(version_dir, manifest, items, histories, shards, tower, table, ranker)


def read_items(version_dir: Path, manifest: Manifest) -> ItemStore:
    items = ItemStore.read(version_dir / "items.parquet")
    if len(items) != manifest.n_items:
        raise IndexIntegrityError(f"{version_dir}: item store has {len(items)} items, the manifest says {manifest.n_items}")
    return items


def open_shard(version_dir: Path, manifest: Manifest, shard: int, table: ItemTable | None = None,
               tuning_overrides: dict[str, float] | None = None, executor: Executor | None = None,
               batching: bool = True, verify: bool = True) -> LocalShard:
    """Load one shard of a version: what a shard process holds (about 1/N of the vectors).

    ``verify`` re-hashes just this shard's files and the item store it takes its filter table
    from; ``table`` (all items' attributes) is read from the item store when not given."""
    entries = {entry.shard: entry for entry in manifest.shards}
    if shard not in entries:
        raise IndexIntegrityError(f"{version_dir}: no shard {shard}; the index has shards 0..{len(entries) - 1}")
    entry = entries[shard]
    if verify:
        verify_files(version_dir, manifest, [*entry.files.values(), "items.parquet"])
    if table is None:
        table = read_items(version_dir, manifest).table()
    # The build's search knobs, unless the operator overrides some at serve time (--ef-search ...).
    tuning = SearchTuning(**{**manifest.build.get("tuning", {}), **(tuning_overrides or {})})
    dimensions = {"item": int(manifest.retrieval["dimension"]), "text": manifest.model.dimension}
    shared = {"text": "item"} if manifest.retrieval.get("text_space") == "item" else None
    return LocalShard.open(version_dir, entry, table, tuning, executor, manifest.factory, manifest.version,
                           dimensions, shared, batching)
