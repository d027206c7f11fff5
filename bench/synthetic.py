"""Synthetic but realistic benchmark data: clustered unit vectors and a catalog around them.

Uniform random vectors make every ANN index look bad (no structure) and every cache look good;
real embeddings are clustered. ``clustered_vectors`` draws a Gaussian mixture with thousands of
components of uneven size and spread on the unit sphere, so HNSW/IVF behave as they do on text
embeddings. ``write_vector_catalog`` writes a catalog + interactions + ``vectors.npz`` that
``tastebud build --vectors`` takes, with users whose histories stay inside a few clusters.

    python bench/synthetic.py --items 1000000 --out .bench/synth-1000000
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt


def clustered_vectors(n: int, dim: int = 384, components: int | None = None, seed: int = 0,
                      chunk: int = 100_000) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """(unit vectors float32[n, dim], component of each row). Components default to n/250
    (4,000 for 1M), sized by a Zipf-like law, each with its own spread."""
    rng = np.random.default_rng(seed)
    k = components or max(8, n // 250)
    centres = rng.standard_normal((k, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sizes = 1.0 / np.arange(1, k + 1) ** 0.5
    label = rng.choice(k, size=n, p=sizes / sizes.sum())
    spread = rng.uniform(0.6, 1.4, size=k).astype(np.float32) / np.sqrt(dim)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        rows = label[start:start + chunk]
        noise = rng.standard_normal((len(rows), dim), dtype=np.float32) * spread[rows, None]
        block = centres[rows] + noise
        out[start:start + len(rows)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out, label.astype(np.int64)


def queries_near(vectors: npt.NDArray[np.float32], n: int, seed: int = 1, noise: float = 0.3
                 ) -> npt.NDArray[np.float32]:
    """Query vectors drawn near random data points (as a user's taste is near what they watch)."""
    rng = np.random.default_rng(seed)
    base = vectors[rng.integers(0, len(vectors), n)]
    q = base + rng.standard_normal(base.shape, dtype=np.float32) * (noise / np.sqrt(vectors.shape[1]))
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def synthetic_events(labels: npt.NDArray[np.int64], n_users: int, per_user: int = 20, seed: int = 2
                     ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(user, item row, timestamp) arrays: each user watches items from 1-3 of the clusters."""
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(labels.max() + 2))
    users, items, times = [], [], []
    for u in range(n_users):
        clusters = rng.choice(len(starts) - 1, size=rng.integers(1, 4))
        pool = np.concatenate([order[starts[c]:starts[c + 1]] for c in clusters])
        if len(pool) == 0:
            continue
        picked = rng.choice(pool, size=min(per_user, len(pool)), replace=False)
        users.append(np.full(len(picked), u))
        items.append(picked)
        times.append(1_600_000_000 + np.sort(rng.integers(0, 10_000_000, len(picked))))
    return np.concatenate(users), np.concatenate(items), np.concatenate(times)


def write_vector_catalog(out: Path, vectors: npt.NDArray[np.float32], labels: npt.NDArray[np.int64],
                         n_users: int = 10_000, seed: int = 0) -> dict[str, Path]:
    """items.csv, interactions.csv and vectors.npz for ``tastebud build --vectors``."""
    out.mkdir(parents=True, exist_ok=True)
    ids = np.array([f"i{r}" for r in range(len(vectors))])
    paths = {"items": out / "items.csv", "interactions": out / "interactions.csv", "vectors": out / "vectors.npz"}
    genres = ["Drama", "Comedy", "Action", "Jazz", "Rock", "Documentary", "Horror", "Pop"]
    with open(paths["items"], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["item_id", "title", "genres", "year"])
        for r in range(len(vectors)):
            c = int(labels[r])
            w.writerow([ids[r], f"Item {r} of cluster {c}", genres[c % len(genres)], 1950 + c % 75])
    users, rows, times = synthetic_events(labels, n_users, seed=seed + 2)
    with open(paths["interactions"], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "timestamp"])
        w.writerows(zip((f"u{u}" for u in users.tolist()), ids[rows].tolist(), times.tolist()))
    np.savez(paths["vectors"], ids=ids, vectors=vectors)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    started = time.perf_counter()
    vectors, labels = clustered_vectors(args.items, args.dim, seed=args.seed)
    paths = write_vector_catalog(args.out, vectors, labels, args.users, args.seed)
    print(f"wrote {', '.join(str(v) for v in paths.values())} in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
