"""What training one two-tower member costs as the catalog and the interaction log grow, and
what that projects to for a whole ``tastebud build``.

Each step takes a batch of 1,024 next-item examples, runs the item tower over the whole
catalog (twice: with and without id embeddings, for the text-only loss) and a full softmax
over it (sampled above ``TwoTowerConfig.full_softmax_max`` items), so a step costs about
catalog size x batch, and an epoch has examples / 1,024 steps. This measures seconds per step
on synthetic sequences (Zipf popularity, 40 items a user; cost does not depend on content) for
each ``--items``, one epoch of one member with the shipped dimension, and projects a build:
10 epochs x 3 members x about 2.44 trainings (the validation model on 80% of each history, its
retraining without the re-ranker's pseudo-new items, 20% of them, the published model on all
of it). A member's time includes making its examples and exporting its vectors, as in a build.

    python bench/training_cost.py --items 1682 --items 3700 --items 17000 --examples 40000

Synthetic inputs: 384 text columns + 40 catalog columns of noise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from tastebud.train.ranker import RankerConfig
from tastebud.train.sequences import Sequences
from tastebud.train.two_tower import TwoTowerConfig, train_two_tower

# The validation model (80% of each history), its retraining without the pseudo-new items, the
# published model: the share of the log each trains on.
TRAININGS = 0.8 + 0.8 * (1 - RankerConfig().cold_fraction) + 1.0
PER_USER = 40


def synthetic_sequences(n_items: int, n_examples: int, seed: int = 0) -> Sequences:
    """About ``n_examples`` next-item examples: users of ``PER_USER`` distinct Zipf-drawn items."""
    rng = np.random.default_rng(seed)
    n_users = max(1, n_examples // (PER_USER - 1))
    pool = rng.zipf(1.3, n_items * 8) % n_items
    histories = []
    for _ in range(n_users):
        drawn = np.unique(pool[rng.integers(0, len(pool), PER_USER * 3)])[:PER_USER]
        rng.shuffle(drawn)
        histories.append(drawn)
    offsets = np.concatenate([[0], np.cumsum([len(h) for h in histories])]).astype(np.int64)
    return Sequences([f"u{u:07d}" for u in range(n_users)], offsets, np.concatenate(histories).astype(np.int64),
                     n_items)


def measure(n_items: int, n_examples: int, config: TwoTowerConfig) -> dict[str, float]:
    seqs = synthetic_sequences(n_items, n_examples)
    noise = np.random.default_rng(1).standard_normal((n_items, 384 + 40)).astype(np.float32)
    started = time.perf_counter()
    train_two_tower(noise[:, :384], seqs, config, item_features=noise[:, 384:])
    seconds = time.perf_counter() - started
    examples = len(seqs.items) - len(seqs)
    steps = -(-examples // config.batch_size)
    return {"items": n_items, "examples": examples, "steps": steps, "seconds": round(seconds, 2),
            "ms_per_step": round(1000 * seconds / steps, 1)}


def projected_build_hours(ms_per_step: float, log_examples: int, config: TwoTowerConfig) -> float:
    steps = -(-log_examples // config.batch_size) * config.epochs * config.members * TRAININGS
    return ms_per_step * steps / 3.6e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, action="append", required=True, help="catalog size (repeatable)")
    parser.add_argument("--examples", type=int, default=40_000, help="examples measured per size (one epoch)")
    parser.add_argument("--log", type=int, action="append", default=[],
                        help="interaction-log size to project a build for (repeatable; default 100k and 1M)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    config = TwoTowerConfig(epochs=1, members=1)
    shipped = TwoTowerConfig()
    logs = args.log or [100_000, 1_000_000]
    measure(200, 2_000, config)  # warm-up: torch's import and thread pool are not a step's cost
    rows = []
    for n_items in args.items:
        row = measure(n_items, args.examples, config)
        row["projected_build_training_hours"] = {str(n): round(projected_build_hours(row["ms_per_step"], n, shipped), 2)
                                                 for n in logs}
        rows.append(row)
        projection = ", ".join(f"{n:,} events {h} h" for n, h in
                               zip(logs, row["projected_build_training_hours"].values()))
        print(f"{n_items:>7,} items: {row['ms_per_step']:7.1f} ms/step ({row['steps']} steps, {row['seconds']} s); "
              f"build training, projected: {projection}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "config": {"dim": shipped.dim, "members": shipped.members,
                                                                   "epochs": shipped.epochs}}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
