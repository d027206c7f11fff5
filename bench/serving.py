"""Serving benchmarks: what the Recommend path costs over its floors, and how it scales.

    python bench/serving.py floor    --index indexes/                 # Recommend vs grpc.health Check
    python bench/serving.py overhead --index .bench/synth-1000000/idx        # vs raw FAISS, stages
    python bench/serving.py scaling  --index A --index B --index C   # p50/p99 as the catalog grows
    python bench/serving.py ab --index DIR --b-args="--no-batching"  # one server flag, side by side

Every mode starts a real ``tastebud serve`` process on a free port and drives it with the load
generator of ``tastebud loadtest`` (closed loop = N callers back to back). Figures are ratios of
runs measured side by side, interleaved, medians over ``--repeats``. Each writes JSON + PNG
under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tastebud.index.manifest import read_manifest
from tastebud.index.publish import resolve_version_dir
from tastebud.loadtest.mix import TrafficMix
from tastebud.loadtest.report import stats_to_result, summarise
from tastebud.loadtest.runner import RunOptions, run_load
from tastebud.loadtest.traffic import Population, make_requests

MIXES = Path(__file__).resolve().parent.parent / "loadtest" / "mixes"
RESULTS = Path(__file__).resolve().parent / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    """``tastebud serve`` as a child process, SERVING once constructed."""

    process: subprocess.Popen
    target: str

    @classmethod
    def start(cls, index: Path, extra: list[str] | None = None) -> "ServerProcess":
        port = free_port()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        cmd = [sys.executable, "-m", "tastebud.cli.main", "serve", "--index", str(index), "--port", str(port),
               "--store", str(Path(tempfile.gettempdir()) / f"tastebud-bench-{port}.sqlite"), *(extra or [])]
        process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        server = cls(process, f"127.0.0.1:{port}")
        try:
            asyncio.run(_wait_serving(server.target))
        except BaseException:
            server.stop()
            raise
        return server

    def rss_mib(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def _wait_serving(target: str) -> None:
    import grpc

    from tastebud.loadtest.runner import wait_until_serving

    async with grpc.aio.insecure_channel(target) as channel:
        await wait_until_serving(channel, target, timeout=900.0)


@functools.lru_cache(maxsize=8)
def population(index: Path) -> Population:
    """The index's user and item ids, read once per index (a 1M-item store takes seconds)."""
    return Population.from_index(index)


def load(target: str, index: Path, mix_name: str, concurrency: int, duration: float, warmup: float, seed: int = 0,
         mode: str = "closed", rate: float = 0.0) -> dict:
    """One load-generator run; the summary row of all RPCs plus the raw result."""
    mix = TrafficMix.from_toml(MIXES / f"{mix_name}.toml")
    requests = make_requests(mix, population(index), 20_000, seed=seed)
    options = RunOptions(target=target, mode=mode, concurrency=concurrency, rate=rate or 1.0, duration=duration,
                         warmup=warmup, deadline=5.0, seed=seed, progress=False)
    result = stats_to_result(asyncio.run(run_load(options, requests)), options, mix.shares())
    row = summarise(result)["all"]
    return {"calls_per_s": row["rate_per_s"], "p50_ms": row["p50_ms"], "p99_ms": row["p99_ms"],
            "p99.9_ms": row["p99.9_ms"], "errors": row["errors"], "count": row["count"]}


def _median(rows: list[dict], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


def run_floor(args: argparse.Namespace) -> dict:
    """Recommend (default request, k=10) vs the same server's health Check, at 1 and 8 in flight."""
    server = ServerProcess.start(args.index)
    out: dict = {"index": str(args.index), "repeats": args.repeats, "duration_s": args.duration, "levels": {}}
    try:
        for concurrency in args.concurrency:
            runs: dict[str, list[dict]] = {"health": [], "recommend": []}
            for repeat in range(args.repeats):
                for mix in ("health", "recommend"):  # interleaved, so drift hits both
                    runs[mix].append(load(server.target, args.index, mix, concurrency, args.duration, args.warmup,
                                          seed=repeat))
                    print(f"floor c={concurrency} #{repeat} {mix}: {runs[mix][-1]}", file=sys.stderr)
            level = {mix: {"runs": rows, "median_calls_per_s": _median(rows, "calls_per_s"),
                           "median_p50_ms": _median(rows, "p50_ms"), "median_p99_ms": _median(rows, "p99_ms")}
                     for mix, rows in runs.items()}
            level["ratio_recommend_to_health"] = round(
                level["recommend"]["median_calls_per_s"] / level["health"]["median_calls_per_s"], 3)
            out["levels"][str(concurrency)] = level
        out["server_rss_mib"] = round(server.rss_mib(), 1)
    finally:
        server.stop()
    return out


def _raw_faiss_qps(indexes: list, queries: np.ndarray, k: int, tuning, threads: int, seconds: float) -> float:
    """Queries/s of plain FAISS: each query searched in every shard (one call per shard), ``threads``
    callers at once, no Python service around it; the server's own search parameters."""
    from tastebud.index.faiss_index import search_parameters

    params = [search_parameters(index, tuning) for index in indexes]
    done = [0] * threads

    def worker(w: int) -> None:
        end = time.perf_counter() + seconds
        i = w
        while time.perf_counter() < end:
            q = queries[i % len(queries)][None, :]
            for index, p in zip(indexes, params):
                index.search(q, k, params=p)
            done[w] += 1
            i += threads

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    return sum(done) / seconds


def run_overhead(args: argparse.Namespace) -> dict:
    """Closed-loop Recommend throughput vs raw in-process FAISS over the same shard indexes, the
    served index's recall@10 vs exact, per-stage latency, and an open loop at half the throughput."""
    import faiss

    faiss.omp_set_num_threads(1)
    version = resolve_version_dir(args.index)
    manifest = read_manifest(version)
    indexes = [faiss.read_index(str(version / e.files["item_index"])) for e in manifest.shards]
    from tastebud.index.faiss_index import SearchTuning

    tuning = SearchTuning(**manifest.build.get("tuning", {}))
    stages = stage_breakdown(args.index, args.users, seed=0)
    queries = stages.pop("_queries")
    k = stages["n_candidates"]
    out: dict = {"index": str(args.index), "items": manifest.n_items, "shards": len(manifest.shards),
                 "factory": manifest.factory, "tuning": dataclasses.asdict(tuning), "k_per_shard": k, "stages": stages,
                 "levels": {}}
    server = ServerProcess.start(args.index)
    try:
        for concurrency in args.concurrency:
            raw, served = [], []
            for repeat in range(args.repeats):
                raw.append(_raw_faiss_qps(indexes, queries, k, tuning, concurrency, args.duration))
                served.append(load(server.target, args.index, "recommend", concurrency, args.duration, args.warmup,
                                   seed=repeat))
                print(f"overhead c={concurrency} #{repeat}: raw {raw[-1]:.0f}/s served {served[-1]}", file=sys.stderr)
            out["levels"][str(concurrency)] = {
                "raw_faiss_qps": [round(x, 1) for x in raw], "served": served,
                "median_raw_qps": round(statistics.median(raw), 1),
                "median_served_qps": _median(served, "calls_per_s"),
                "ratio_served_to_raw": round(_median(served, "calls_per_s") / statistics.median(raw), 3)}
        top = max(args.concurrency)
        rate = out["levels"][str(top)]["median_served_qps"] / 2
        out["open_loop_at_half"] = {"rate": rate, **load(server.target, args.index, "recommend", 0,
                                                         args.duration * 2, args.warmup, mode="open", rate=rate)}
        out["server_rss_mib"] = round(server.rss_mib(), 1)
    finally:
        server.stop()
    return out


def stage_breakdown(index: Path, n_users: int, seed: int = 0) -> dict:
    """Per-stage latency of Recommend in process (median and p99 in ms over ``n_users`` calls), and
    the served retrieval's recall@10 against exact search with the same exclusions."""
    from tastebud.embed.encoder import SentenceTransformerEncoder
    from tastebud.index.merge import take_positions, topk_positions
    from tastebud.index.shards import ShardQuery
    from tastebud.server.app import open_recommender
    from tastebud.server.convert import recommend_response
    from tastebud.server.domain import RecommendQuery

    encoder = SentenceTransformerEncoder()
    executor = ThreadPoolExecutor(4)
    rec = open_recommender(index, encoder, executor, store=None)
    users = population(index).user_ids
    rng = np.random.default_rng(seed)
    picks = [users[i] for i in rng.integers(0, len(users), n_users)]
    times: dict[str, list[float]] = {s: [] for s in ("user_vector", "exclusions", "shard_search", "merge",
                                                       "rerank", "serialise", "total_in_process")}
    per_shard: list[list[float]] = [[] for _ in rec.index.shards]
    recalls, queries = [], []
    item_vectors = None

    async def one(user: str) -> None:
        nonlocal item_vectors
        query = RecommendQuery(user_id=user, k=10)
        t0 = time.perf_counter()
        vector, history, _ = await rec.user_query(query)
        t1 = time.perf_counter()
        drop = rec.excluded(query, history)
        t2 = time.perf_counter()
        shard_query = ShardQuery(rec._n_candidates(10), None, drop, None, with_vectors=True)
        hits = []
        for s, shard in enumerate(rec.index.shards):
            a = time.perf_counter()
            hits.append(shard.search_sync(vector[None, :], shard_query))
            per_shard[s].append(time.perf_counter() - a)
        t3 = time.perf_counter()
        scores = np.concatenate([h.scores for h in hits], axis=1)
        ids = np.concatenate([h.ids for h in hits], axis=1)
        positions = topk_positions(scores, ids, shard_query.k)
        merged = take_positions(ids, positions, -1)[0]
        t4 = time.perf_counter()
        result = await rec.recommend(query)  # the whole core path once more, for rerank time by difference
        t5 = time.perf_counter()
        blob = recommend_response(result).SerializeToString()
        t6 = time.perf_counter()
        times["user_vector"].append(t1 - t0)
        times["exclusions"].append(t2 - t1)
        times["shard_search"].append(t3 - t2)
        times["merge"].append(t4 - t3)
        times["total_in_process"].append(t5 - t4)
        times["serialise"].append(t6 - t5)
        queries.append(vector)
        del blob
        # recall@10 of the served candidates vs exact search over every item, same exclusions
        if item_vectors is None:
            gids = np.concatenate([s.global_ids for s in rec.index.shards])
            item_vectors = (np.concatenate([s.vectors_sync(s.global_ids, "item") for s in rec.index.shards]), gids)
        vecs, gids = item_vectors
        scores = vecs @ vector  # exact scores of every item, then the same exclusions
        scores[np.isin(gids, drop)] = -np.inf
        top = np.argpartition(-scores, 10)[:10]
        exact_ids = set(gids[top].tolist())
        recalls.append(len(exact_ids & set(merged[:10].tolist())) / 10)

    async def run_all() -> None:
        for user in picks[:20]:  # warm-up
            await rec.recommend(RecommendQuery(user_id=user, k=10))
        for user in picks:
            await one(user)

    asyncio.run(run_all())
    executor.shutdown()
    total = np.array(times["total_in_process"])
    accounted = np.array(times["user_vector"]) + np.array(times["exclusions"]) + np.array(times["shard_search"]) \
        + np.array(times["merge"])
    times["rerank"] = list(np.maximum(total - accounted, 0.0))

    def ms(values) -> dict:
        a = np.array(values) * 1000
        return {"median_ms": round(float(np.median(a)), 4), "p99_ms": round(float(np.percentile(a, 99)), 4)}

    return {"users": n_users, "n_candidates": rec._n_candidates(10),
            "recall_at_10_vs_exact": round(float(np.mean(recalls)), 4),
            **{name: ms(v) for name, v in times.items()},
            "per_shard_search": [ms(v) for v in per_shard], "_queries": np.stack(queries)}


def run_scaling(args: argparse.Namespace) -> dict:
    """Recommend p50/p99 with one call in flight, and calls/s with 8, for each index."""
    out: dict = {"points": []}
    for index in args.index:
        manifest = read_manifest(resolve_version_dir(index))
        server = ServerProcess.start(index)
        try:
            seq = [load(server.target, index, "recommend", 1, args.duration, args.warmup, seed=r)
                   for r in range(args.repeats)]
            par = [load(server.target, index, "recommend", 8, args.duration, args.warmup, seed=r)
                   for r in range(args.repeats)]
            point = {"index": str(index), "items": manifest.n_items, "factory": manifest.factory,
                     "p50_ms": _median(seq, "p50_ms"), "p99_ms": _median(seq, "p99_ms"),
                     "calls_per_s_at_8": _median(par, "calls_per_s"), "p99_ms_at_8": _median(par, "p99_ms"),
                     "server_rss_mib": round(server.rss_mib(), 1), "runs": {"1": seq, "8": par}}
            out["points"].append(point)
            print(f"scaling {manifest.n_items}: {point['p50_ms']} / {point['p99_ms']} ms", file=sys.stderr)
        finally:
            server.stop()
    return out


def run_ab(args: argparse.Namespace) -> dict:
    """Two servers on one index, differing only by flags, loaded in turn (interleaved)."""
    variants = {"a": args.a_args.split(), "b": args.b_args.split()}
    servers = {name: ServerProcess.start(args.index, flags) for name, flags in variants.items()}
    out: dict = {"index": str(args.index), "a_args": args.a_args, "b_args": args.b_args, "mix": args.mix,
                 "levels": {}}
    try:
        for concurrency in args.concurrency:
            runs: dict[str, list[dict]] = {"a": [], "b": []}
            for repeat in range(args.repeats):
                for name, server in servers.items():
                    runs[name].append(load(server.target, args.index, args.mix, concurrency, args.duration,
                                           args.warmup, seed=repeat))
                    print(f"ab c={concurrency} #{repeat} {name}: {runs[name][-1]}", file=sys.stderr)
            out["levels"][str(concurrency)] = {
                **{name: {"runs": rows, "median_calls_per_s": _median(rows, "calls_per_s"),
                          "median_p99_ms": _median(rows, "p99_ms")} for name, rows in runs.items()},
                "ratio_b_to_a": round(_median(runs["b"], "calls_per_s") / _median(runs["a"], "calls_per_s"), 3)}
    finally:
        for server in servers.values():
            server.stop()
    return out


def plot(mode: str, result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    if mode in ("floor", "ab"):
        levels = sorted(result["levels"], key=int)
        width = 0.35
        names = ("health", "recommend") if mode == "floor" else ("a", "b")
        for i, mix in enumerate(names):
            ax.bar([j + i * width for j in range(len(levels))],
                   [result["levels"][c][mix]["median_calls_per_s"] for c in levels], width,
                   label=mix if mode == "floor" else f"{mix}: serve {result[mix + '_args'] or '(defaults)'}")
        ax.set_xticks([j + width / 2 for j in range(len(levels))], [f"{c} in flight" for c in levels])
        ax.set(ylabel="calls/s (median)", title="Recommend vs grpc.health Check, same server" if mode == "floor"
               else f"{result['mix']} calls, two servers side by side")
    elif mode == "overhead":
        levels = sorted(result["levels"], key=int)
        width = 0.35
        for i, key in enumerate(("median_raw_qps", "median_served_qps")):
            ax.bar([j + i * width for j in range(len(levels))], [result["levels"][c][key] for c in levels], width,
                   label={"median_raw_qps": "raw FAISS, in process", "median_served_qps": "tastebud Recommend, gRPC"}[key])
        ax.set_xticks([j + width / 2 for j in range(len(levels))], [f"{c} in flight" for c in levels])
        ax.set(ylabel="queries/s (median)", title=f"{result['items']:,} items, {result['shards']} shards, {result['factory']}")
    else:
        items = [p["items"] for p in result["points"]]
        ax.plot(items, [p["p50_ms"] for p in result["points"]], "o-", label="p50, 1 in flight")
        ax.plot(items, [p["p99_ms"] for p in result["points"]], "s--", label="p99, 1 in flight")
        ax.set(xscale="log", xlabel="items", ylabel="ms", title="Recommend latency as the catalog grows")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("floor", "overhead", "scaling", "ab"))
    p.add_argument("--index", type=Path, action="append", required=True, help="index root (repeat for scaling)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--users", type=int, default=300, help="overhead: users for the stage breakdown")
    p.add_argument("--name", help="result file stem (default: the mode)")
    p.add_argument("--a-args", default="", help="ab: flags of server a")
    p.add_argument("--b-args", default="", help="ab: flags of server b")
    p.add_argument("--mix", default="recommend", help="ab: traffic mix name in loadtest/mixes")
    args = p.parse_args(argv)
    if args.mode != "scaling":
        args.index = args.index[0]
    started = time.time()
    result = {"floor": run_floor, "overhead": run_overhead, "scaling": run_scaling, "ab": run_ab}[args.mode](args)
    result.update({"command": " ".join(["python", "bench/serving.py", *(argv or sys.argv[1:])]),
                   "cores": os.cpu_count(), "seconds": round(time.time() - started, 1)})
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = args.name or args.mode
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    plot(args.mode, result, RESULTS / f"{stem}.png")
    print(json.dumps({k: v for k, v in result.items() if k not in ("levels", "points", "stages")}, indent=1))
    print(f"wrote {RESULTS / (stem + '.json')} and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
