"""``tastebud build``: read the inputs, add recorded events, build and publish an index."""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from tastebud.errors import InvalidInputError
from tastebud.ingest.model import Dataset
from tastebud.train.two_tower import TwoTowerConfig


def read_inputs(args: argparse.Namespace) -> Dataset:
    """The data set the flags name (files + optional config, or a MovieLens folder)."""
    from tastebud.ingest.config import DatasetConfig
    from tastebud.ingest.movielens import load_movielens
    from tastebud.ingest.readers import load_dataset

    if args.format == "movielens":
        if args.data is None:
            raise InvalidInputError("--format movielens needs --data FOLDER")
        return load_movielens(args.data)
    if args.items is None or args.interactions is None:
        raise InvalidInputError("build needs --items and --interactions (or --format movielens --data FOLDER)")
    config = DatasetConfig.from_toml(args.config) if args.config else DatasetConfig()
    return load_dataset(args.items, args.interactions, config)


def run_build(args: argparse.Namespace) -> int:
    from tastebud.embed.encoder import SentenceTransformerEncoder
    from tastebud.embed.precomputed import load_precomputed_vectors
    from tastebud.index.build import BuildOptions, build_index
    from tastebud.index.faiss_index import SearchTuning
    from tastebud.ingest.interaction_store import (FORGOTTEN_FILE, STORE_NAME, ForgottenUsers, InteractionStore,
                                                   with_recorded, without_users)

    started = time.perf_counter()
    dataset = read_inputs(args)
    store_path: Path = args.store or args.out / STORE_NAME
    high_water = 0
    if store_path.exists():
        store = InteractionStore(store_path)
        try:
            high_water = store.high_water()
            # Forgotten users stay forgotten even when the input files still name them.
            dataset = without_users(with_recorded(dataset, store.all_since(0)), store.forgotten_filter())
        finally:
            store.close()
    if (args.out / FORGOTTEN_FILE).exists():  # written by ForgetUser where the store is elsewhere
        dataset = without_users(dataset, ForgottenUsers.read(args.out / FORGOTTEN_FILE))
    tuning = SearchTuning(**{name: value for name, value in (("ef_search", args.ef_search), ("nprobe", args.nprobe))
                             if value is not None})
    options = BuildOptions(n_shards=args.shards, factory=args.factory, exact_threshold=args.exact_threshold,
                           seed=args.seed, progress=not args.no_progress, store_high_water=high_water,
                           retrieval=args.retrieval, tuning=tuning, two_tower=TwoTowerConfig(members=args.members))
    encoder = SentenceTransformerEncoder(args.model, batch_size=args.batch_size)
    vectors = load_precomputed_vectors(args.vectors, dataset.catalog.item_ids, encoder.dimension) \
        if args.vectors else None
    result = build_index(dataset, encoder, args.out, options, text_vectors=vectors)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    m = result.manifest
    print(f"published {result.version_dir}  ({m.n_items} items, {m.n_users} users, {m.n_events} events, "
          f"{len(m.shards)} shards, {m.factory})")
    print(f"data: {dataset.report.summary()}; newly embedded: {result.newly_embedded}")
    print(f"time: {time.perf_counter() - started:.1f}s total, steps {result.seconds}; peak memory {peak_mib:.0f} MiB")
    return 0
