"""Embedding benchmark: tastebud's encoder backends against a plain sentence-transformers encode.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python bench/embedding.py           # full
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python bench/embedding.py --quick   # smoke

The baseline is exactly ``SentenceTransformer(path).encode(texts, batch_size=32)`` on the bundled
all-MiniLM-L6-v2. Each tastebud variant is ``SentenceTransformerEncoder(backend=...)
.encode_documents(texts)`` on the same texts: real catalogue texts, a seeded sample of the demo
catalogue (``write_demo_data``) and of MovieLens 100K (when ``--movielens`` exists). Every repeat
runs all variants one after the other (the order rotates per repeat), so they share the
machine's load; items/s are medians over the repeats, and the ratio to plain is the median of
the per-repeat ratios (each measured side by side). Cosine agreement is per item against the
float32 reference (the plain encode, L2-normalised): min, 1st percentile, mean.

Writes ``<out>/embedding.json`` and ``<out>/embedding.png`` (``embedding-quick.*`` with --quick).
ONNX files are exported (once, offline) into the encoder's cache folder before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MOVIELENS = ROOT.parent / "shared" / "data" / "ml-100k"
VARIANTS = ("tastebud-torch", "tastebud-onnx", "tastebud-onnx-int8")


def catalogue_texts(n: int, movielens: Path | None, seed: int) -> tuple[list[str], dict[str, int]]:
    """A seeded sample of ``n`` texts from the demo catalogue and MovieLens 100K item texts."""
    from tastebud.ingest.config import DatasetConfig
    from tastebud.ingest.demo import write_demo_data
    from tastebud.ingest.readers import load_dataset

    pools: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = write_demo_data(tmp, n_items=3000, n_users=20, seed=seed)
        pools["demo"] = load_dataset(files.items, files.interactions, DatasetConfig.from_toml(files.config)).catalog.texts
    if movielens is not None and (movielens / "u.item").is_file():
        from tastebud.ingest.movielens import load_movielens

        pools["movielens-100k"] = load_movielens(movielens).catalog.texts
    tagged = [(source, t) for source, texts in pools.items() for t in texts]
    rng = np.random.default_rng(seed)
    picked = [tagged[i] for i in rng.choice(len(tagged), size=min(n, len(tagged)), replace=False)]
    counts = {source: sum(1 for s, _ in picked if s == source) for source in pools}
    return [t for _, t in picked], counts


def cosine_stats(vectors: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    c = (vectors * reference).sum(axis=1)
    return {"min": float(c.min()), "p1": float(np.quantile(c, 0.01)), "mean": float(c.mean())}


def normalised(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--texts", type=int, default=2000, help="how many catalogue texts (default 2000)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats (default 3)")
    p.add_argument("--quick", action="store_true", help="smoke test: 120 texts, 3 short repeats, -quick files")
    p.add_argument("--movielens", type=Path, default=DEFAULT_MOVIELENS, help="MovieLens 100K folder (optional)")
    p.add_argument("--batch-size", type=int, default=64, help="tastebud variants' batch size (default 64)")
    p.add_argument("--cache-dir", type=Path, default=None, help="ONNX cache folder (default: the encoder's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    if args.quick:
        args.texts = min(args.texts, 120)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")

    import torch
    from sentence_transformers import SentenceTransformer

    from tastebud.embed.encoder import SentenceTransformerEncoder, resolve_model_path

    texts, sources = catalogue_texts(args.texts, args.movielens, args.seed)
    print(f"{len(texts)} texts ({sources}); loading models and exporting ONNX (once) ...", flush=True)
    path = resolve_model_path("all-MiniLM-L6-v2")
    plain = SentenceTransformer(path, device="cpu")
    encoders = {
        "tastebud-torch": SentenceTransformerEncoder(backend="torch", batch_size=args.batch_size),
        "tastebud-onnx": SentenceTransformerEncoder(backend="onnx", batch_size=args.batch_size,
                                                    cache_dir=args.cache_dir),
        "tastebud-onnx-int8": SentenceTransformerEncoder(backend="onnx-int8", batch_size=args.batch_size,
                                                         cache_dir=args.cache_dir),
    }
    runners = {"plain": lambda: plain.encode(texts, batch_size=32, show_progress_bar=False)}
    runners.update({name: (lambda e=e: e.encode_documents(texts)) for name, e in encoders.items()})
    tokens = [len(x) for x in plain.tokenizer(texts, truncation=True, max_length=plain.max_seq_length)["input_ids"]]

    warm = texts[:32]
    plain.encode(warm, batch_size=32, show_progress_bar=False)
    for e in encoders.values():
        e.encode_documents(warm)

    names = list(runners)
    seconds: dict[str, list[float]] = {n: [] for n in names}
    vectors: dict[str, np.ndarray] = {}
    load_before = os.getloadavg()
    started = time.perf_counter()
    for rep in range(args.repeats):
        order = names[rep % len(names):] + names[:rep % len(names)]  # rotate: no variant always goes first
        for name in order:
            t0 = time.perf_counter()
            out = runners[name]()
            seconds[name].append(time.perf_counter() - t0)
            vectors.setdefault(name, normalised(out))
            print(f"  repeat {rep + 1}/{args.repeats}  {name:20s} {len(texts) / seconds[name][-1]:8.1f} items/s",
                  flush=True)
    wall = time.perf_counter() - started
    load_after = os.getloadavg()

    reference = vectors["plain"]
    results = {}
    for name in names:
        rates = [len(texts) / s for s in seconds[name]]
        paired = [seconds["plain"][r] / seconds[name][r] for r in range(args.repeats)]
        results[name] = {
            "items_per_s": rates,
            "median_items_per_s": float(np.median(rates)),
            "ratio_vs_plain_per_repeat": paired,
            "ratio_vs_plain": float(np.median(paired)),
            "cosine_vs_float32": cosine_stats(vectors[name], reference),
            "fingerprint": encoders[name].fingerprint if name in encoders else None,
        }
    import onnxruntime
    import sentence_transformers

    report = {
        "benchmark": "embedding",
        "command": " ".join([Path(sys.executable).name, "bench/embedding.py", *(argv if argv is not None else sys.argv[1:])]),
        "quick": args.quick,
        "texts": {"n": len(texts), "sources": sources, "seed": args.seed,
                  "tokens_mean": float(np.mean(tokens)), "tokens_max": int(np.max(tokens))},
        "baseline": "SentenceTransformer(path).encode(texts, batch_size=32)",
        "tastebud_batch_size": args.batch_size,
        "repeats": args.repeats,
        "wall_s": wall,
        "machine": {"cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
                    "processor": platform.processor() or platform.machine(),
                    "loadavg_before": load_before, "loadavg_after": load_after,
                    "torch_threads": torch.get_num_threads()},
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                     "sentence_transformers": sentence_transformers.__version__},
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "embedding-quick" if args.quick else "embedding"
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot(report, args.out / f"{stem}.png")

    print(f"\n{len(texts)} texts, {args.repeats} interleaved repeats, load average {load_before[0]:.1f} -> "
          f"{load_after[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'variant':20s} {'items/s':>9s} {'x plain':>8s} {'cos min':>8s} {'cos mean':>9s}")
    for name, r in results.items():
        c = r["cosine_vs_float32"]
        print(f"{name:20s} {r['median_items_per_s']:9.1f} {r['ratio_vs_plain']:8.2f} {c['min']:8.5f} {c['mean']:9.5f}")
    print(f"wrote {args.out / (stem + '.json')} and {args.out / (stem + '.png')}")
    return 0


def plot(report: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    names = list(results)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    rates = [results[n]["median_items_per_s"] for n in names]
    colours = ["#888888"] + ["#2b6cb0"] * (len(names) - 1)
    bars = ax1.bar(names, rates, color=colours)
    for bar, n in zip(bars, names):
        runs = results[n]["items_per_s"]
        ax1.plot([bar.get_x() + bar.get_width() / 2] * len(runs), runs, "k.", ms=4)
        ax1.annotate(f"{results[n]['ratio_vs_plain']:.2f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                     ha="center", va="bottom", fontsize=9)
    ax1.axhline(2 * results["plain"]["median_items_per_s"], color="#c53030", ls="--", lw=1, label="2x plain (target)")
    ax1.set_ylabel("items/s (median; dots: repeats)")
    ax1.set_title(f"{report['texts']['n']} catalogue texts, {report['repeats']} interleaved repeats")
    ax1.legend(loc="upper left", fontsize=8)
    ax1.tick_params(axis="x", labelrotation=15, labelsize=8)
    others = names[1:]
    x = np.arange(len(others))
    mins = [results[n]["cosine_vs_float32"]["min"] for n in others]
    means = [results[n]["cosine_vs_float32"]["mean"] for n in others]
    ax2.bar(x - 0.2, mins, 0.4, label="min", color="#dd6b20")
    ax2.bar(x + 0.2, means, 0.4, label="mean", color="#38a169")
    ax2.axhline(0.99, color="#c53030", ls="--", lw=1, label="0.99 (target)")
    ax2.set_xticks(x, others, rotation=15, fontsize=8)
    ax2.set_ylim(0.97, 1.002)
    ax2.set_ylabel("cosine to float32 reference, per item")
    ax2.set_title("agreement with plain encode")
    ax2.legend(loc="lower left", fontsize=8)
    load = report["machine"]["loadavg_before"][0]
    fig.suptitle(f"Embedding: tastebud vs plain SentenceTransformer.encode(batch_size=32) "
                 f"({report['machine']['cpus']} CPUs, load avg {load:.1f} at start)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
