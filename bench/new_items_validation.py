"""How well new items are placed, measured on the build's own validation split (never the test).

The protocol's cold-items view is one draw of 10% of the items; a choice made on it would be
tuned to that draw and to the test period. This script measures a retrieval-model setting the
way the build can: on the protocol's *train* split only, each user's last 20% held out
(``train.validation.holdout_split``), ``--draws`` random draws of 10% of the items stripped of
their interactions ("pseudo-new"), the model retrained without them, and for every user whose
held-out tail holds one, only those items ranked (Recall@10, NDCG@10). It also reports the
validation NDCG@10 of the same setting on warm items (full history and last 3 items), trained
on the whole prefix. Settings are compared side by side, on the same draws, in one run.

    python bench/new_items_validation.py --data ../shared/data/ml-100k --draws 8 \\
        --variant base:catalog_features=false --variant catalog:catalog_features=true

Each variant is ``name:field=value,...`` over ``TwoTowerConfig``: values are JSON, or bare
words for text fields (``new_item_neighbour_space=text``). Defaults: one 64-d model, the fast
setting the README's comparisons use; ``--members`` and ``--dim`` change them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tastebud.embed.cache import EmbeddingCache
from tastebud.embed.encoder import SentenceTransformerEncoder
from tastebud.evaluate.metrics import list_metrics
from tastebud.evaluate.protocol import split_main
from tastebud.index.items import years_array
from tastebud.ingest.movielens import load_movielens
from tastebud.train.item_features import catalog_features
from tastebud.train.ranker import RankerConfig, pseudo_new_items
from tastebud.train.retrieval import history_scorer
from tastebud.train.sequences import Sequences, build_sequences, without_items
from tastebud.train.two_tower import TwoTowerConfig, TwoTowerWeights, train_two_tower
from tastebud.train.validation import Holdout, holdout_split, ranking_metrics

K = 10


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    name, _, assignments = text.partition(":")
    fields = {f.name for f in dataclasses.fields(TwoTowerConfig)}
    text_fields = {name for name, value in dataclasses.asdict(TwoTowerConfig()).items() if isinstance(value, str)}
    values: dict[str, Any] = {}
    for assignment in filter(None, assignments.split(",")):
        key, _, raw = assignment.partition("=")
        if key not in fields:
            raise SystemExit(f"--variant {text!r}: TwoTowerConfig has no field {key!r}")
        values[key] = _value(text, key, raw, text_fields)
    return name, values


def _value(variant: str, key: str, raw: str, text_fields: set[str]) -> Any:
    """JSON, or a bare word for a text field (new_item_neighbour_space=text); a typo in a
    number (new_item_blend=0.7x) is refused here rather than failing inside training."""
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        if key in text_fields:
            return raw
        raise SystemExit(f"--variant {variant!r}: {key}={raw!r} is not a JSON value")


def pseudo_new_draws(prefix: Sequences, draws: int, first: int = 0) -> list[npt.NDArray[np.bool_]]:
    """10% of the items with interactions, seeds 100 + first, 101 + first, ... (the re-ranker's
    own draw rule)."""
    return [pseudo_new_items(prefix, RankerConfig(cold_fraction=0.1, seed=100 + first + k)) for k in range(draws)]


def new_item_metrics(weights: TwoTowerWeights, holdout: Holdout, new: npt.NDArray[np.bool_],
                     prefix: Sequences) -> tuple[float, float, int]:
    score, rows = history_scorer(weights), np.flatnonzero(new)
    recall, ndcg = [], []
    for user, targets in holdout.targets.items():
        relevant = set(targets[new[targets]].tolist())
        if relevant:
            ranked = rows[np.argsort(-score(user, prefix.of(user))[rows], kind="stable")[:K]]
            r, n = list_metrics(ranked.tolist(), relevant, K)
            recall.append(r)
            ndcg.append(n)
    return float(np.mean(recall)), float(np.mean(ndcg)), len(recall)


def warm_metrics(weights: TwoTowerWeights, holdout: Holdout, last: int | None) -> float:
    """Validation NDCG@10 as the build computes it, with the whole prefix or its ``last`` items."""
    score = history_scorer(weights)
    return ranking_metrics(score if last is None else lambda u, h: score(u, h[-last:]), holdout)["ndcg@10"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a MovieLens folder")
    parser.add_argument("--variant", action="append", required=True, help="name:field=value,...")
    parser.add_argument("--draws", type=int, default=8)
    parser.add_argument("--first-draw", type=int, default=0, help="skip this many draws (seeds 100 + it, ...)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--members", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path(".bench/embeddings"))
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    variants = [parse_variant(v) for v in args.variant]

    dataset = load_movielens(args.data)
    train = split_main(dataset).train  # the protocol's test period is never read
    catalog = train.catalog
    encoder = SentenceTransformerEncoder()
    text, _ = EmbeddingCache(args.cache, encoder.fingerprint).embed(catalog.texts, encoder)
    inputs = catalog_features(dict(catalog.attributes), years_array(catalog.years))
    holdout = holdout_split(build_sequences(train.interactions, catalog.item_ids))
    draws = pseudo_new_draws(holdout.prefix, args.draws, args.first_draw)

    results: dict[str, Any] = {}
    for name, values in variants:
        config = dataclasses.replace(TwoTowerConfig(dim=args.dim, members=args.members, threads=1), **values)
        features = inputs if config.catalog_features else None
        per_draw = []
        for k, new in enumerate(draws):
            started = time.perf_counter()
            prefix = without_items(holdout.prefix, new)
            weights = train_two_tower(text, prefix, config, item_features=features)
            recall, ndcg, users = new_item_metrics(weights, holdout, new, prefix)
            per_draw.append({"recall@10": recall, "ndcg@10": ndcg, "users": users})
            print(f"{name} draw {k}: new items Recall@10 {recall:.4f} NDCG@10 {ndcg:.4f} ({users} users, "
                  f"{time.perf_counter() - started:.0f}s)", flush=True)
        whole = train_two_tower(text, holdout.prefix, config, item_features=features)
        results[name] = {"config": values, "draws": per_draw,
                         "new_items_recall@10": float(np.mean([d["recall@10"] for d in per_draw])),
                         "new_items_ndcg@10": float(np.mean([d["ndcg@10"] for d in per_draw])),
                         "warm_ndcg@10": warm_metrics(whole, holdout, None),
                         "warm_last3_ndcg@10": warm_metrics(whole, holdout, 3)}
        r = results[name]
        print(f"{name}: new items Recall@10 {r['new_items_recall@10']:.4f} NDCG@10 {r['new_items_ndcg@10']:.4f}; "
              f"warm NDCG@10 {r['warm_ndcg@10']:.4f}, last 3 {r['warm_last3_ndcg@10']:.4f}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"dim": args.dim, "members": args.members, "draws": args.draws,
                                         "first_draw": args.first_draw,
                                         "variants": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
