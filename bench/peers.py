"""Peers: tastebud against PostgreSQL + pgvector, the Chroma server and Milvus Lite on the same vectors.

    bash bench/peers/setup.sh                 # once: .venv-peers with the peers' clients and servers
    .venv/bin/python bench/peers.py           # 200,000 x 384, all four systems
    .venv/bin/python bench/peers.py --quick   # 20,000 x 384 smoke test

Data: ``bench/synthetic.clustered_vectors(n)`` (clustered unit vectors). Queries are catalog
items: tastebud's ``SimilarItems(item_id, k=10)`` is an inner-product kNN search with the
item's own vector that leaves the item out, so each peer is asked for the k+1 nearest
neighbours of that item's vector and the item itself is dropped. Ground truth is FAISS's
exact inner-product top-10 without the item. The tuning and test query ids are disjoint.

Each system is measured by its own worker (``bench/peers/run_<system>.py``) in the venv that
holds its client, with the same measurement code (``bench/peers/common.py``): its
search-time knob is raised until recall@10 on the tuning queries reaches the target, then the
test queries run sequentially and with N callers in flight, several repeats, interleaved.
Results: bench/results/peers.json and bench/results/peers.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.synthetic import clustered_vectors  # noqa: E402

SYSTEMS = ("tastebud", "pgvector", "chroma", "milvus")
PEERS = ("pgvector", "chroma", "milvus")
KNOBS = {
    "tastebud": [16, 32, 64, 128, 256, 512],
    "pgvector": [12, 16, 20, 24, 32, 40, 48, 64, 80, 100, 128, 160, 200, 256, 320, 400, 512, 640, 800, 1000],
    "chroma": [12, 16, 20, 24, 32, 40, 48, 64, 80, 100, 128, 160, 200, 256, 320, 400, 512, 640, 800, 1000],
    "milvus": [12, 16, 20, 24, 32, 40, 48, 64, 80, 100, 128, 160, 200, 256, 320, 400, 512, 640, 800, 1000],
}
KNOB_NAMES = {"tastebud": "efSearch (tastebud build --ef-search)", "pgvector": "hnsw.ef_search",
              "chroma": "hnsw ef_search", "milvus": "HNSW ef"}
LABELS = {"tastebud": "tastebud (gRPC)", "pgvector": "PostgreSQL + pgvector", "chroma": "Chroma server",
          "milvus": "Milvus Lite"}


def exact_truth(vectors: np.ndarray, ids: np.ndarray, k: int = 10) -> np.ndarray:
    """Exact inner-product top-k of each query item's vector, the item itself left out."""
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    _, found = index.search(vectors[ids], k + 5)
    out = np.empty((len(ids), k), dtype=np.int64)
    for row, (qid, got) in enumerate(zip(ids, found)):
        out[row] = [g for g in got.tolist() if g != qid][:k]
    return out


def prepare(args: argparse.Namespace) -> Path:
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    marker = work / "data.json"
    want = {"n": args.n, "dim": 384, "seed": 0, "tune": args.tune_queries, "test": args.test_queries}
    if marker.exists() and json.loads(marker.read_text()) == want:
        print(f"data: reusing {work}", flush=True)
        return work
    t0 = time.perf_counter()
    vectors, labels = clustered_vectors(args.n)
    np.save(work / "vectors.npy", vectors)
    np.save(work / "labels.npy", labels)
    rng = np.random.default_rng(7)
    picked = rng.choice(args.n, size=args.tune_queries + args.test_queries, replace=False)
    tune_ids, test_ids = picked[:args.tune_queries], picked[args.tune_queries:]
    np.save(work / "tune_ids.npy", tune_ids)
    np.save(work / "test_ids.npy", test_ids)
    np.save(work / "gt_tune.npy", exact_truth(vectors, tune_ids))
    np.save(work / "gt_test.npy", exact_truth(vectors, test_ids))
    marker.write_text(json.dumps(want))
    print(f"data: {args.n} x 384 clustered vectors, {len(tune_ids)} tuning + {len(test_ids)} test queries, "
          f"exact ground truth, in {time.perf_counter() - t0:.1f}s -> {work}", flush=True)
    return work


def run_system(name: str, work: Path, python: Path, timeout: float) -> dict:
    out = work / f"result-{name}.json"
    log = work / f"log-{name}.txt"
    if out.exists():  # kept for reference (and for a reused tastebud index's build time)
        out.replace(work / f"result-{name}.previous.json")
    cmd = [str(python), str(ROOT / "bench" / "peers" / f"run_{name}.py"), "--work", str(work), "--out", str(out)]
    print(f"\n== {name}: {' '.join(cmd)}", flush=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                f.write(line)
                f.flush()
                print(f"   {line}", end="", flush=True)
                if time.perf_counter() - t0 > timeout:
                    raise subprocess.TimeoutExpired(cmd, timeout)
            proc.wait(timeout=max(1.0, timeout - (time.perf_counter() - t0)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return {"system": name, "error": f"timed out after {timeout:.0f}s (log: {log})"}
    if proc.returncode != 0 or not out.exists():
        tail = log.read_text().strip().splitlines()[-5:]
        return {"system": name, "error": f"worker exited with {proc.returncode}: " + " | ".join(tail)}
    result = json.loads(out.read_text())
    result["worker_s"] = time.perf_counter() - t0
    # Other work on the machine shows here: the 1-minute load average as the worker started and ended.
    result["load_average_1m"] = {"start": load_before[0], "end": os.getloadavg()[0]}
    return result


def ratios(results: dict[str, dict]) -> dict:
    """tastebud / best peer per mode: q/s ratio over the peer with the most q/s; p99 against
    both that peer and the peer with the lowest p99."""
    tb = results.get("tastebud")
    ok = {p: r for p, r in results.items() if p in PEERS and "error" not in r}
    if not tb or "error" in tb or not ok:
        return {}
    out = {}
    for mode in ("sequential", "concurrent"):
        best = max(ok, key=lambda p: ok[p][mode]["median"]["qps"])
        lowest = min(ok, key=lambda p: ok[p][mode]["median"]["p99_ms"])
        t, b, lo = tb[mode]["median"], ok[best][mode]["median"], ok[lowest][mode]["median"]
        out[mode] = {"best_peer": best, "qps_ratio": t["qps"] / b["qps"], "tastebud_p99_ms": t["p99_ms"],
                     "best_peer_p99_ms": b["p99_ms"], "p99_lower_than_best_peer": t["p99_ms"] < b["p99_ms"],
                     "lowest_p99_peer": lowest, "lowest_peer_p99_ms": lo["p99_ms"],
                     "p99_lower_than_every_peer": t["p99_ms"] < lo["p99_ms"],
                     "target_met": t["qps"] >= 2 * b["qps"] and t["p99_ms"] < b["p99_ms"]}
    return out


def _num(x) -> str:
    return "-" if x is None else f"{x:.1f}"


def table(results: dict[str, dict], concurrency: int) -> str:
    head = (f"| system | knob | recall@10 | q/s seq | p50 seq ms | p99 seq ms | q/s @{concurrency} | p50 @{concurrency} ms "
            f"| p99 @{concurrency} ms | build s | server RSS MB | server PSS MB |\n" + "| --- " * 12 + "|")
    rows = [head]
    for name, r in results.items():
        if "error" in r:
            rows.append(f"| {LABELS[name]} | - | - | - | - | - | - | - | - | - | - | - | ({r['error'][:200]})")
            continue
        s, c = r["sequential"]["median"], r["concurrent"]["median"]
        flag = "" if r["tuning"]["reached"] else " (target not reached)"
        rows.append(f"| {LABELS[name]} | {r['knob']}={r['tuning']['value']}{flag} | {r['sequential']['recall']:.3f} "
                    f"| {s['qps']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {c['qps']:.0f} | {c['p50_ms']:.2f} "
                    f"| {c['p99_ms']:.2f} | {_num(r['build'].get('total_s'))} | {r['memory']['rss_mb']:.0f} "
                    f"| {r['memory']['pss_mb']:.0f} |")
    return "\n".join(rows)


def plot(results: dict[str, dict], concurrency: int, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [n for n in results if "error" not in results[n]]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    modes = (("sequential", "1 in flight"), ("concurrent", f"{concurrency} in flight"))
    width = 0.38
    x = np.arange(len(ok))
    colors = ["#1f77b4", "#ff7f0e"]
    for ax, key, label in ((axes[0], "qps", "queries/s (higher is better, log)"), (axes[1], "p99_ms", "p99 latency, ms (lower is better, log)")):
        for j, (mode, mlabel) in enumerate(modes):
            vals = [results[n][mode]["median"][key] for n in ok]
            bars = ax.bar(x + (j - 0.5) * width, vals, width, label=mlabel, color=colors[j])
            for b, v in zip(bars, vals):
                ax.annotate(f"{v:.0f}" if key == "qps" else f"{v:.1f}", (b.get_x() + b.get_width() / 2, v),
                            ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, [f"{LABELS[n]}\nrecall {results[n]['sequential']['recall']:.3f}" for n in ok], fontsize=8)
        ax.set_title(label)
        ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke test: 20,000 vectors, fewer queries, 3 repeats")
    p.add_argument("--n", type=int, help="vectors (default 200,000; 20,000 with --quick)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of " + ",".join(SYSTEMS))
    p.add_argument("--target-recall", type=float, default=0.95)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--repeats", type=int, help="repeats of each measurement (default 5; 3 with --quick)")
    p.add_argument("--tune-queries", type=int, help="tuning query count (default 300; 100 with --quick)")
    p.add_argument("--test-queries", type=int, help="test query count (default 2000; 300 with --quick)")
    p.add_argument("--max-seconds", type=float, default=30.0,
                   help="a measurement pass starts no new query after this long (slow systems run a prefix)")
    p.add_argument("--reuse-results", default="",
                   help="comma-separated systems whose result from an earlier run on the same --work data is "
                        "taken as it is instead of measured again (marked as reused in the JSON)")
    p.add_argument("--tastebud-index", type=Path,
                   help="serve this already built tastebud index (same --work data) instead of building one")
    p.add_argument("--timeout", type=float, default=3600.0, help="per system, seconds")
    p.add_argument("--work", type=Path, help="scratch folder (default .bench/peers[-quick], git-ignored)")
    p.add_argument("--peers-python", type=Path, default=ROOT / ".venv-peers" / "bin" / "python")
    p.add_argument("--tastebud-python", type=Path, default=ROOT / ".venv" / "bin" / "python")
    p.add_argument("--results", type=Path, default=ROOT / "bench" / "results",
                   help="where peers.json / peers.png go (with --quick: peers-quick.*)")
    args = p.parse_args(argv)
    args.n = args.n or (20_000 if args.quick else 200_000)
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.tune_queries = args.tune_queries or (100 if args.quick else 300)
    args.test_queries = args.test_queries or (300 if args.quick else 2000)
    args.work = (args.work or Path(".bench/peers-quick" if args.quick else ".bench/peers")).resolve()
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        p.error(f"unknown systems: {sorted(unknown)}")
    for py, who in ((args.peers_python, "peers"), (args.tastebud_python, "tastebud")):
        if (who == "peers" and set(systems) & set(PEERS) or who == "tastebud" and "tastebud" in systems) and not py.exists():
            p.error(f"{py} not found (peers: bash bench/peers/setup.sh; tastebud: make .venv)")

    started = time.time()
    work = prepare(args)
    config = {"n": args.n, "dim": 384, "target_recall": args.target_recall, "concurrency": args.concurrency,
              "repeats": args.repeats, "max_seconds": args.max_seconds, "warmup": 200,
              "knobs": KNOBS, "scratch": str(work / "scratch"), "k": 10,
              "tastebud_index": str(args.tastebud_index) if args.tastebud_index else None}
    (work / "config.json").write_text(json.dumps(config, indent=2))
    results: dict[str, dict] = {}
    reuse = [s.strip() for s in args.reuse_results.split(",") if s.strip()]
    for name in SYSTEMS:
        if name in reuse:
            path = work / f"result-{name}.json"
            if not path.exists():
                p.error(f"--reuse-results {name}: {path} not found")
            results[name] = json.loads(path.read_text())
            results[name]["reused_from_earlier_run"] = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                    time.gmtime(path.stat().st_mtime))
            print(f"== {name}: reusing {path} (written {results[name]['reused_from_earlier_run']})", flush=True)
    for name in systems:
        if name in reuse:
            continue
        python = args.tastebud_python if name == "tastebud" else args.peers_python
        results[name] = run_system(name, work, python, args.timeout)
        if "error" in results[name]:
            print(f"   !! {name}: {results[name]['error']}", flush=True)
    summary = ratios(results)
    import faiss

    report = {
        "benchmark": "peers", "command": " ".join([Path(sys.executable).name, "bench/peers.py", *(argv or sys.argv[1:])]),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": time.time() - started,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "data": {"generator": "bench.synthetic.clustered_vectors", "n": args.n, "dim": 384,
                 "tune_queries": args.tune_queries, "test_queries": args.test_queries,
                 "queries": "catalog items; k=10 neighbours excluding the item itself",
                 "ground_truth": f"exact inner product (faiss {faiss.__version__} IndexFlatIP)"},
        "config": {k: v for k, v in config.items() if k != "scratch"},
        "ratios_tastebud_over_best_peer": summary,
        "results": {n: results[n] for n in SYSTEMS if n in results},
    }
    args.results.mkdir(parents=True, exist_ok=True)
    stem = "peers-quick" if args.quick else "peers"
    (args.results / f"{stem}.json").write_text(json.dumps(report, indent=2))
    results = {n: results[n] for n in SYSTEMS if n in results}
    ok = {n: r for n, r in results.items() if "error" not in r}
    if ok:
        plot(ok, args.concurrency, args.results / f"{stem}.png",
             f"Same {args.n:,} x 384 vectors, k=10, each system tuned to recall@10 >= {args.target_recall} "
             f"(medians of {args.repeats} repeats, {os.cpu_count()} cores)")
    print("\n" + table(results, args.concurrency))
    for mode, s in summary.items():
        print(f"{mode}: tastebud / {s['best_peer']} = {s['qps_ratio']:.2f}x q/s; p99 {s['tastebud_p99_ms']:.2f} ms vs "
              f"{s['best_peer_p99_ms']:.2f} ms; target (>= 2x and lower p99) {'met' if s['target_met'] else 'NOT met'}")
    print(f"\nwrote {args.results / (stem + '.json')} and {args.results / (stem + '.png')}")
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
