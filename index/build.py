"""``tastebud build``: a cleaned data set in, a new published index version out.

Steps, each timed and logged: embed item texts (through the cache), count popularity, group
histories, train the retrieval model (``tastebud.train``), assign shards, build two FAISS
indexes per shard (the recommendation space and the text space), write everything with
checksums into a staging folder, publish atomically. Any error before the final rename leaves the
published index exactly as it was.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import numpy.typing as npt

from tastebud.embed.cache import EmbeddingCache
from tastebud.embed.encoder import Encoder
from tastebud.errors import InvalidInputError
from tastebud.index.faiss_index import DEFAULT_EXACT_THRESHOLD, SearchTuning, build_shard_indexes, choose_factory
from tastebud.index.histories import UserHistories
from tastebud.index.items import ItemStore, years_array
from tastebud.index.manifest import MANIFEST_NAME, Manifest, ModelInfo, ShardEntry, describe_files
from tastebud.index.publish import new_version_name, publish, staging_dir
from tastebud.index.sharding import assign_shards
from tastebud.ingest.model import Dataset
from tastebud.server.learned_ranker import write_neighbour_tables
from tastebud.train.item_item import cooccurrence_neighbours, ease_neighbours
from tastebud.train.ranker import RankerConfig
from tastebud.train.retrieval import CatalogSignals, fit_retrieval
from tastebud.train.sequences import build_sequences
from tastebud.train.two_tower import TwoTowerConfig

log = logging.getLogger(__name__)

MAX_SHARDS = 256


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """What the operator controls; defaults suit a catalog of a few thousand to a million items."""

    n_shards: int = 4
    factory: str | None = None
    exact_threshold: int = DEFAULT_EXACT_THRESHOLD
    tuning: SearchTuning = field(default_factory=SearchTuning)
    seed: int = 0
    cache_dir: Path | None = None
    progress: bool = True
    store_high_water: int = 0
    retrieval: str = "auto"
    two_tower: TwoTowerConfig = field(default_factory=TwoTowerConfig)
    ranker: RankerConfig | None = field(default_factory=RankerConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.n_shards <= MAX_SHARDS:
            raise InvalidInputError(f"--shards must be within 1..{MAX_SHARDS}, got {self.n_shards}")
        if self.retrieval not in ("auto", "two_tower", "content"):
            raise InvalidInputError(f"--retrieval must be auto, two_tower or content, got {self.retrieval!r}")
        if self.exact_threshold < 0:
            raise InvalidInputError(f"--exact-threshold must be >= 0, got {self.exact_threshold}")


@dataclass(frozen=True, slots=True)
class BuildResult:
    version_dir: Path
    manifest: Manifest
    seconds: dict[str, float]
    newly_embedded: int


@contextlib.contextmanager
def _timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Log a build step and record its wall time in ``seconds``."""
    log.info("build: %s ...", name)
    start = time.perf_counter()
    yield
    seconds[name] = round(time.perf_counter() - start, 3)


def item_popularity(item_rows: npt.NDArray[np.int64], n_items: int) -> npt.NDArray[np.float32]:
    """Interactions per item (float32[n_items])."""
    return np.bincount(item_rows, minlength=n_items).astype(np.float32)


def build_index(dataset: Dataset, encoder: Encoder, out_root: Path, options: BuildOptions = BuildOptions(),
                text_vectors: npt.NDArray[np.float32] | None = None) -> BuildResult:
    """Build and publish a new index version of ``dataset`` under ``out_root``.

    ``text_vectors`` (one row per catalog item, from ``encoder``'s model) skips embedding."""
    catalog, log_ = dataset.catalog, dataset.interactions
    if len(catalog) == 0:
        raise InvalidInputError("the catalog has no items; nothing to index")
    factory = choose_factory(len(catalog), options.exact_threshold, options.factory)
    seconds: dict[str, float] = {}
    out_root = Path(out_root)
    cache_root = options.cache_dir or out_root / ".cache"

    with _timed(seconds, "embed"):
        if text_vectors is None:
            cache = EmbeddingCache(cache_root / "embeddings", encoder.fingerprint)
            text_vectors, newly_embedded = cache.embed(catalog.texts, encoder, progress=options.progress)
        elif text_vectors.shape != (len(catalog), encoder.dimension):
            raise InvalidInputError(f"precomputed vectors are {text_vectors.shape}, the catalog needs "
                                    f"({len(catalog)}, {encoder.dimension})")
        else:
            newly_embedded = 0

    with _timed(seconds, "histories"):
        row_of = {item_id: row for row, item_id in enumerate(catalog.item_ids)}
        item_rows = np.fromiter((row_of[i] for i in log_.item_ids.tolist()), dtype=np.int64, count=len(log_))
        popularity = item_popularity(item_rows, len(catalog))
        histories = UserHistories.from_events(log_.user_ids, item_rows, log_.timestamps, log_.weights)

    with _timed(seconds, "train"):
        sequences = build_sequences(log_, catalog.item_ids)
        years = years_array(catalog.years)
        model = fit_retrieval(options.retrieval, text_vectors, sequences, popularity, options.two_tower,
                              cache_root / "models", options.progress,
                              catalog=CatalogSignals(years, dict(catalog.attributes)), ranker_config=options.ranker)
        neighbours = None
        if model.ranker is not None:
            train_histories = [sequences.of(u) for u in range(len(sequences))]
            neighbours = {"cooccurrence": cooccurrence_neighbours(train_histories, len(catalog)),
                          "ease": ease_neighbours(train_histories, len(catalog))}

    with _timed(seconds, "shard"):
        shard = assign_shards(catalog.item_ids, options.n_shards)
        shard_rows = [np.flatnonzero(shard == s).astype(np.int64) for s in range(options.n_shards)]
        # The content model's item vectors are [t_j, prior_j]: its text space is read from them
        # (query [q, 0]), so a content index stores and builds one FAISS index per shard, not two.
        text_shared = model.kind == "content"
        spaces = {"item": model.index_vectors} if text_shared else {"item": model.index_vectors, "text": text_vectors}
        indexes = {name: build_shard_indexes(vectors, shard_rows, factory, seed=options.seed)
                   for name, vectors in spaces.items()}

    with _timed(seconds, "write"), staging_dir(out_root) as staging:
        import faiss

        store = ItemStore(catalog.item_ids, catalog.titles, catalog.texts, years,
                          dict(catalog.attributes), popularity, shard)
        store.write(staging / "items.parquet")
        histories.write(staging / "users.parquet")
        model.tower.save(staging / "user_tower.npz")
        extra_files = []
        retrieval_info = {**model.info, "user_tower": "user_tower.npz"}
        if text_shared:
            retrieval_info["text_space"] = "item"
        if model.ranker is not None and neighbours is not None:
            (staging / "ranker.txt").write_text(model.ranker, encoding="utf-8")
            write_neighbour_tables(staging / "neighbours.npz", neighbours)
            extra_files = ["ranker.txt", "neighbours.npz"]
            retrieval_info["ranker"] = {"model": "ranker.txt", "neighbours": "neighbours.npz",
                                        "new_items": bool(model.info["validation"]["ranker"].get("new_items", False))}
        entries = []
        for s, rows in enumerate(shard_rows):
            stem = f"shard-{s:03d}"
            files = {"ids": f"{stem}.ids.npy", "query_vectors": f"{stem}.query.npy"}
            np.save(staging / files["ids"], rows, allow_pickle=False)
            np.save(staging / files["query_vectors"], np.ascontiguousarray(model.query_vectors[rows]),
                    allow_pickle=False)
            for name, vectors in spaces.items():
                files[f"{name}_index"], files[f"{name}_vectors"] = f"{stem}.{name}.faiss", f"{stem}.{name}.npy"
                faiss.write_index(indexes[name][s], str(staging / files[f"{name}_index"]))
                np.save(staging / files[f"{name}_vectors"], np.ascontiguousarray(vectors[rows]), allow_pickle=False)
            entries.append(ShardEntry(shard=s, count=int(len(rows)), files=files))
        version = new_version_name(out_root)
        names = ["items.parquet", "users.parquet", "user_tower.npz", *extra_files] + \
            [n for e in entries for n in e.files.values()]
        build_params: dict[str, Any] = {
            "n_shards": options.n_shards, "factory_requested": options.factory,
            "exact_threshold": options.exact_threshold, "tuning": asdict(options.tuning), "seed": options.seed,
            "store_high_water": options.store_high_water, "data": dataset.report.summary(),
            "skipped": dict(dataset.report.skipped), "retrieval_requested": options.retrieval,
            "interactions_fingerprint": sequences.fingerprint(),
        }
        manifest = Manifest(
            version=version, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            model=ModelInfo(encoder.name, encoder.fingerprint, encoder.dimension, normalized=True),
            retrieval=retrieval_info,
            metric="inner_product", factory=factory, n_items=len(catalog), n_users=len(histories),
            n_events=histories.n_events, shards=tuple(entries), files=describe_files(staging, names),
            filter_attributes=tuple(sorted(catalog.attributes)), build=build_params,
        )
        build_params["seconds"] = dict(seconds)
        (staging / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
        version_dir = publish(out_root, staging, version)
    log.info("published %s: %d items in %d shards (%s, %s retrieval), %d users", version, len(catalog),
             options.n_shards, factory, model.kind, len(histories))
    return BuildResult(version_dir, manifest, dict(seconds), newly_embedded)
