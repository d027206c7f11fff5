"""ANN benchmark: recall@10 against queries/s for the index types tastebud offers.

    python bench/ann.py --dataset text                  # the demo catalog's real text embeddings
    python bench/ann.py --dataset synthetic --items 1000000
    python bench/ann.py --quick                         # both, small, a smoke test (results in --work)

Every index is built the way ``tastebud build`` builds one shard (``build_shard_indexes``: the
same factory strings, training sample, efConstruction) and searched with the parameters
``search_parameters`` makes from a ``SearchTuning``, so the numbers are tastebud's own:

- ``exact``       ``Flat`` (brute force; also the ground truth, exact inner product)
- ``hnsw``        ``HNSW32,Flat``, efSearch swept
- ``ivf``         ``IVF{nlist},Flat``, nprobe swept
- ``compressed``  ``COMPRESSED_FACTORY`` (IVF + 4-bit PQ fast-scan + 6-bit SQ refine), nprobe x k_factor
- ``compressed-sq8`` the same with an 8-bit SQ refine (more accurate, a little over 25% of float32)

Per index: build seconds, serialized bytes per item (``faiss.serialize_index``) and the
anonymous resident memory it added (RssAnon delta), and per parameter recall@10, batched q/s
(all queries in one call, all of FAISS's OpenMP threads) and sequential q/s (one query per call,
one FAISS thread, as ``tastebud serve`` runs FAISS: ``faiss_threads = 1``). Builds use all threads.
Timings are medians over --repeats rounds; each round visits every (index, parameter) in a
shuffled order, so the machine's noise spreads over all of them alike. Writes
``ann-<dataset>.json`` and ``.png`` into --out.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning. On a machine shared with other jobs a spinning
# thread steals the core its partner works on: PQ training took 179 s with spinning and 1.8 s
# without on this machine. Set before FAISS loads libgomp; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import clustered_vectors, queries_near  # noqa: E402

from tastebud.index.faiss_index import (  # noqa: E402
    COMPRESSED_FACTORY, EXACT_FACTORY, HNSW_EF_CONSTRUCTION, HNSW_FACTORY, SearchTuning, build_shard_indexes,
    ivf_nlist, resolve_factory, search_parameters,
)

K = 10
RESULTS = Path(__file__).resolve().parent / "results"


def rss_anon() -> int:
    """Anonymous resident bytes of this process (file-backed pages, e.g. memory-mapped vectors, excluded)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


# ---------------------------------------------------------------------------------------- data

def text_dataset(catalog: str, work: Path, n_queries: int, seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], dict]:
    """Item vectors of a real catalog, embedded with tastebud's encoder (cached), and queries that
    look like a content user's taste: the normalised mean of 1-5 random items' vectors."""
    from tastebud.embed.cache import EmbeddingCache
    from tastebud.embed.encoder import SentenceTransformerEncoder

    if catalog == "demo":
        from tastebud.ingest.config import DatasetConfig
        from tastebud.ingest.demo import write_demo_data
        from tastebud.ingest.readers import read_catalog

        files = write_demo_data(work / "demo-data")
        texts = read_catalog(files.items, DatasetConfig.from_toml(files.config)).texts
        source = "tastebud demo catalog (ingest/demo.py, seed 0, 3,000 items)"
    else:
        from tastebud.ingest.movielens import load_movielens

        folder = Path(catalog)
        texts = load_movielens(folder).catalog.texts
        source = f"MovieLens titles from {folder}"
    encoder = SentenceTransformerEncoder()
    started = time.perf_counter()
    vectors, new = EmbeddingCache(work / "embeddings", encoder.fingerprint).embed(list(texts), encoder)
    info = {"source": source, "encoder": encoder.name, "embedded_now": new,
            "embed_seconds": round(time.perf_counter() - started, 2),
            "queries": "normalised mean of 1-5 random catalog items' vectors (a content user's taste)"}
    rng = np.random.default_rng(seed)
    queries = np.empty((n_queries, vectors.shape[1]), dtype=np.float32)
    for i in range(n_queries):
        picked = rng.choice(len(vectors), size=rng.integers(1, 6), replace=False)
        queries[i] = vectors[picked].mean(axis=0)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors, dtype=np.float32), queries, info


def synthetic_dataset(n: int, work: Path, n_queries: int, seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], dict]:
    """bench/synthetic.py's clustered set (cached as .npy, memory-mapped) and queries near its points."""
    path = work / f"synthetic-{n}x384-seed{seed}.npy"
    if not path.exists():
        started = time.perf_counter()
        vectors, _ = clustered_vectors(n, 384, seed=seed)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, vectors)
        tmp.rename(path)
        print(f"generated {n} x 384 in {time.perf_counter() - started:.0f}s -> {path}", flush=True)
        del vectors
    vectors = np.load(path, mmap_mode="r")
    queries = queries_near(vectors, n_queries, seed=seed + 1)
    info = {"source": f"bench/synthetic.py clustered_vectors(n={n}, dim=384, seed={seed}): "
                      f"{max(8, n // 250)} Gaussian components of Zipf-like sizes",
            "queries": f"queries_near(vectors, {n_queries}, seed={seed + 1}, noise=0.3)"}
    return vectors, queries, info


# ---------------------------------------------------------------------------------------- indexes

def index_plan(n: int, d: int, quick: bool) -> list[dict]:
    """(name, factory, list of SearchTuning) per index type."""
    nlist = ivf_nlist(n)
    large = n >= 500_000  # a coarser grid where every cell costs minutes on this machine
    probes = [p for p in ((4, 8, 16, 32, 64, 128) if large else (1, 2, 4, 8, 16, 32, 64, 128)) if p <= nlist]
    cprobes = [p for p in ((8, 16, 32, 64) if large else (4, 8, 16, 32, 64)) if p <= nlist]
    efs = (16, 32, 64, 128, 256) if quick or large else (16, 32, 64, 128, 256, 512)
    kfs = (8, 16, 32) if large else (4, 8, 16, 32)
    compressed = resolve_factory(COMPRESSED_FACTORY, d, n)
    return [
        {"name": "exact", "factory": EXACT_FACTORY, "tunings": [SearchTuning()]},
        {"name": "hnsw", "factory": HNSW_FACTORY, "tunings": [SearchTuning(ef_search=e) for e in efs]},
        {"name": "ivf", "factory": f"IVF{nlist},Flat", "tunings": [SearchTuning(nprobe=p) for p in probes]},
        {"name": "compressed", "factory": compressed,
         "tunings": [SearchTuning(nprobe=p, k_factor=k) for p in cprobes for k in kfs]},
        {"name": "compressed-sq8", "factory": compressed.replace("Refine(SQ6)", "Refine(SQ8)"),
         "tunings": [SearchTuning(nprobe=p, k_factor=k) for p in cprobes for k in kfs]},
    ]


def tuning_label(name: str, t: SearchTuning) -> dict:
    if name == "hnsw":
        return {"ef_search": t.ef_search}
    if name == "ivf":
        return {"nprobe": t.nprobe}
    if name.startswith("compressed"):
        return {"nprobe": t.nprobe, "k_factor": t.k_factor}
    return {}


def build(vectors: npt.NDArray[np.float32], factory: str) -> tuple[object, dict]:
    import faiss

    gc.collect()
    before = rss_anon()
    started = time.perf_counter()
    (index,) = build_shard_indexes(vectors, [np.arange(len(vectors), dtype=np.int64)], factory)
    seconds = time.perf_counter() - started
    gc.collect()
    delta = rss_anon() - before
    size = int(faiss.serialize_index(index).size)
    n, d = vectors.shape
    return index, {"build_seconds": round(seconds, 2), "serialized_bytes": size,
                   "bytes_per_item": round(size / n, 1), "ratio_vs_float32": round(size / (n * d * 4), 4),
                   "rss_anon_delta_bytes": int(delta), "rss_anon_delta_per_item": round(delta / n, 1)}


def recall_at_k(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64]) -> float:
    hits = sum(len(np.intersect1d(f[f >= 0], t)) for f, t in zip(found, truth))
    return hits / truth.size


def time_batched(index, queries, params) -> float:
    started = time.perf_counter()
    index.search(queries, K, params=params)
    return len(queries) / (time.perf_counter() - started)


def time_sequential(index, queries, params, budget_s: float, min_queries: int = 20) -> tuple[float, int]:
    """q/s of one-query calls over the queries in order, stopping after ``budget_s`` (>= min_queries)."""
    done = 0
    started = time.perf_counter()
    for i in range(len(queries)):
        index.search(queries[i:i + 1], K, params=params)
        done += 1
        if done >= min_queries and time.perf_counter() - started > budget_s:
            break
    return done / (time.perf_counter() - started), done


# ---------------------------------------------------------------------------------------- run

def run(name: str, vectors, queries, info: dict, args) -> dict:
    import faiss

    n, d = vectors.shape
    load_start = os.getloadavg()
    plan = index_plan(n, d, args.quick)
    if args.only:
        plan = [p for p in plan if p["name"] in args.only]
    entries = []
    print(f"[{name}] {n} x {d}, {len(queries)} queries, OpenMP threads {faiss.omp_get_max_threads()}", flush=True)
    truth = None
    for p in plan:
        index, stats = build(vectors, p["factory"])
        print(f"[{name}] built {p['name']} ({p['factory']}) in {stats['build_seconds']}s, "
              f"{stats['bytes_per_item']} B/item ({stats['ratio_vs_float32']:.3f} of float32)", flush=True)
        if p["name"] == "exact":
            started = time.perf_counter()
            _, truth = index.search(queries, K)
            info["ground_truth_seconds"] = round(time.perf_counter() - started, 2)
        runs = []
        for t in p["tunings"]:
            params = search_parameters(index, t)
            _, found = index.search(queries, K, params=params)
            runs.append({"params": tuning_label(p["name"], t), "tuning": t, "found": found,
                         "batched_qps": [], "sequential_qps": [], "sequential_queries": []})
        entries.append({"name": p["name"], "factory": p["factory"], "index": index, **stats, "runs": runs})
    assert truth is not None, "the exact index gives the ground truth"
    for e in entries:
        for r in e["runs"]:
            r["recall_at_10"] = round(recall_at_k(r.pop("found"), truth), 4)
    partial = [{k: v for k, v in e.items() if k not in ("index", "runs")} |
               {"recall_at_10": {json.dumps(r["params"]): r["recall_at_10"] for r in e["runs"]}} for e in entries]
    (args.work / f"ann-{name}.builds.json").write_text(json.dumps(partial, indent=2) + "\n")
    rng = np.random.default_rng(args.seed)
    seq_queries = queries[:args.seq_queries]
    threads = faiss.omp_get_max_threads()
    cells = [(e, r) for e in entries for r in e["runs"]]
    for rep in range(args.repeats):
        started = time.perf_counter()
        for j in rng.permutation(len(cells)):
            e, r = cells[j]
            params = search_parameters(e["index"], r["tuning"])
            r["batched_qps"].append(round(time_batched(e["index"], queries, params), 1))
            faiss.omp_set_num_threads(args.seq_threads)
            qps, done = time_sequential(e["index"], seq_queries, params, args.seq_seconds)
            faiss.omp_set_num_threads(threads)
            r["sequential_qps"].append(round(qps, 1))
            r["sequential_queries"].append(done)
        print(f"[{name}] timing round {rep + 1}/{args.repeats} took {time.perf_counter() - started:.0f}s", flush=True)
    for e in entries:
        del e["index"]
        for r in e["runs"]:
            del r["tuning"]
            r["batched_qps_median"] = float(np.median(r["batched_qps"]))
            r["sequential_qps_median"] = float(np.median(r["sequential_qps"]))
    exact = entries[0]["runs"][0] if entries[0]["name"] == "exact" else None
    summary = []
    for e in entries:
        row = {"name": e["name"], "factory": e["factory"], "build_seconds": e["build_seconds"],
               "bytes_per_item": e["bytes_per_item"], "ratio_vs_float32": e["ratio_vs_float32"]}
        for mode in ("batched", "sequential"):
            good = [r for r in e["runs"] if r["recall_at_10"] >= args.target_recall]
            if good:
                best = max(good, key=lambda r: r[f"{mode}_qps_median"])
                row[f"{mode}_at_target"] = {"params": best["params"], "recall_at_10": best["recall_at_10"],
                                            "qps": best[f"{mode}_qps_median"]}
                if exact:
                    row[f"{mode}_at_target"]["x_exact"] = round(best[f"{mode}_qps_median"] / exact[f"{mode}_qps_median"], 2)
            else:
                row[f"{mode}_at_target"] = None
        row["max_recall_at_10"] = max(r["recall_at_10"] for r in e["runs"])
        summary.append(row)
    return {
        "benchmark": "ann", "dataset": name, "n_items": n, "dimension": d, "n_queries": len(queries),
        "sequential_queries_max": len(seq_queries), "k": K, "repeats": args.repeats,
        "target_recall_at_10": args.target_recall, "data": info,
        "hnsw_ef_construction": HNSW_EF_CONSTRUCTION, "ivf_nlist": ivf_nlist(n),
        "machine": {"cpus": os.cpu_count(), "omp_max_threads": faiss.omp_get_max_threads(),
                    "threads": {"build": threads, "batched": threads, "sequential": args.seq_threads},
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                    "loadavg_start": [round(x, 2) for x in load_start],
                    "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                    "faiss": faiss.__version__, "numpy": np.__version__, "python": platform.python_version(),
                    "note": "shared machine: other jobs were running; quote medians and ratios"},
        "command": " ".join(["python", "bench/ann.py", *sys.argv[1:]]),
        "summary": summary, "indexes": entries,
    }


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), sharey=False)
    for ax, mode in zip(axes, ("batched", "sequential")):
        for e in result["indexes"]:
            runs = e["runs"]
            if e["name"].startswith("compressed"):
                # the Pareto front over nprobe x k_factor
                pts = sorted(((r["recall_at_10"], r[f"{mode}_qps_median"]) for r in runs), key=lambda p: -p[1])
                front, best = [], -1.0
                for rec, qps in pts:
                    if rec > best:
                        front.append((rec, qps))
                        best = rec
                xs, ys = zip(*sorted(front))
            else:
                xs = [r["recall_at_10"] for r in runs]
                ys = [r[f"{mode}_qps_median"] for r in runs]
            label = f"{e['name']} ({e['factory']}, {e['bytes_per_item']:.0f} B/item)"
            ax.plot(xs, ys, marker="o", ms=4, label=label)
        ax.axvline(result["target_recall_at_10"], color="grey", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("recall@10 vs exact inner product")
        ax.set_ylabel("queries/s (median)")
        threads = result["machine"]["threads"][mode]
        ax.set_title(f"{mode}: " + ("all queries in one call" if mode == "batched" else "one query per call")
                     + f", {threads} FAISS thread{'s' if threads > 1 else ''}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"tastebud ANN, {result['dataset']}: {result['n_items']:,} x {result['dimension']}, "
                 f"{result['machine']['omp_max_threads']} threads, medians of {result['repeats']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(result: dict) -> str:
    """Tables for bench/ann.md from a result file: per index its Pareto front (sequential q/s
    against recall@10), then the fastest setting at the target recall with its ratio to exact."""
    lines = [f"{result['dataset']}: {result['n_items']:,} x {result['dimension']}, {result['n_queries']} queries, "
             f"medians of {result['repeats']}; threads: {result['machine']['threads']}",
             "", "| index | factory | params | recall@10 | batched q/s | sequential q/s | build s | bytes/item | x float32 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for e in result["indexes"]:
        front, best = [], -1.0
        for r in sorted(e["runs"], key=lambda r: -r["sequential_qps_median"]):
            if r["recall_at_10"] > best:
                front.append(r)
                best = r["recall_at_10"]
        for r in sorted(front, key=lambda r: r["recall_at_10"]):
            params = ", ".join(f"{k}={v:g}" for k, v in r["params"].items()) or "-"
            lines.append(f"| {e['name']} | `{e['factory']}` | {params} | {r['recall_at_10']:.3f} | "
                         f"{r['batched_qps_median']:,.0f} | {r['sequential_qps_median']:,.0f} | {e['build_seconds']:.1f} | "
                         f"{e['bytes_per_item']:,.0f} | {e['ratio_vs_float32']:.3f} |")
    lines += ["", f"fastest at recall@10 >= {result['target_recall_at_10']} (x exact's q/s in the same run):", ""]
    for row in result["summary"]:
        parts = []
        for mode in ("batched", "sequential"):
            b = row[f"{mode}_at_target"]
            parts.append(f"{mode} {b['qps']:,.0f} q/s ({b.get('x_exact', '-')}x, recall {b['recall_at_10']:.3f}, "
                         f"{', '.join(f'{k}={v:g}' for k, v in b['params'].items()) or '-'})" if b else
                         f"{mode}: not reached (max recall {row['max_recall_at_10']:.3f})")
        lines.append(f"- {row['name']}: " + "; ".join(parts))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=("text", "synthetic", "all"), default="all")
    p.add_argument("--catalog", default="demo", help="text data: 'demo' or a MovieLens folder")
    p.add_argument("--items", type=int, default=1_000_000, help="synthetic set size")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--seq-queries", type=int, default=500, help="at most this many one-query calls per cell")
    p.add_argument("--seq-seconds", type=float, default=2.0, help="and for at most about this long")
    p.add_argument("--seq-threads", type=int, default=1, help="FAISS threads for one-query calls (the server's)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--target-recall", type=float, default=0.95)
    p.add_argument("--only", nargs="*", help="index names to run (exact is needed for the ground truth)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=Path(".bench/ann"), help="cached vectors")
    p.add_argument("--out", type=Path, help="result folder (default bench/results, or --work with --quick)")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    p.add_argument("--markdown", type=Path, nargs="+", help="print the tables of result files and exit")
    args = p.parse_args(argv)
    if args.markdown:
        for path in args.markdown:
            print(markdown(json.loads(path.read_text())) + "\n")
        return 0
    if args.quick:
        args.items = min(args.items, 20_000)
        args.queries = min(args.queries, 200)
        args.seq_queries = min(args.seq_queries, 100)
        args.seq_seconds = min(args.seq_seconds, 0.5)
    if args.only and "exact" not in args.only:
        args.only.append("exact")
    out = args.out or (args.work if args.quick else RESULTS)
    args.work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    datasets = ["text", "synthetic"] if args.dataset == "all" else [args.dataset]
    for which in datasets:
        if which == "text":
            vectors, queries, info = text_dataset(args.catalog, args.work, args.queries, args.seed)
            name = "text-demo" if args.catalog == "demo" else "text-" + Path(args.catalog).name
        else:
            vectors, queries, info = synthetic_dataset(args.items, args.work, args.queries, args.seed)
            name = f"synthetic-{args.items // 1000}k" if args.items < 1_000_000 else f"synthetic-{args.items // 1_000_000}m"
        result = run(name, vectors, queries, info, args)
        stem = out / (f"ann-{name}" + ("-quick" if args.quick else ""))
        stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        plot(result, stem.with_suffix(".png"))
        print(f"wrote {stem}.json and .png", flush=True)
        for row in result["summary"]:
            b, s = row["batched_at_target"], row["sequential_at_target"]
            print(f"  {row['name']:15s} {row['factory']:32s} {row['bytes_per_item']:8.1f} B/item "
                  f"build {row['build_seconds']:7.1f}s  max recall {row['max_recall_at_10']:.3f}  "
                  f"@{args.target_recall}: batched {b and b['qps']} q/s {b and b['params']}, "
                  f"sequential {s and s['qps']} q/s {s and s['params']}", flush=True)
        del vectors, queries
        gc.collect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
