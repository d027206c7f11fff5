"""Cluster benchmark: the cost of the router hop, and who holds the memory.

    python bench/cluster.py --data ../shared/data/ml-100k            # everything (~15 min + builds)
    python bench/cluster.py --data ../shared/data/ml-100k --quick    # smoke run (small, short)
    python bench/cluster.py --skip memory                            # only the hop
    python bench/cluster.py --skip hop                               # only the memory at 1M items

1. **Hop.** MovieLens 100K is built with ``tastebud build --shards N`` for N in ``--shards``
   (default 1 2 4; the first build's model cache is copied into the others, so every index holds
   the same two-tower model and ranker: only the sharding differs). Then, all at once and idle
   between runs: ``tastebud serve --index`` (in process) on the ``--inproc-shards`` indexes, and
   for every N a cluster from the launcher of ``tastebud cluster up`` (``LauncherThread``:
   N ``tastebud serve-shard`` processes, replicas 1, and ``tastebud serve --cluster``). Each is
   driven with the project's load generator (``tastebud.loadtest``, closed loop, the
   ``recommend`` mix: default Recommend k=10, users drawn from the same seeded Zipf law over the
   same user ids for every system) at each ``--concurrency``; systems are interleaved within each
   repeat, and the medians over ``--repeats`` are reported. Every run also reads the CPU time
   (``/proc/<pid>/stat`` utime+stime) each process spent, per call: that is what the
   extrapolation to N hosts is made of.
2. **Memory.** A synthetic clustered catalog of ``--mem-items`` (default 1,000,000) from
   ``bench/synthetic.py`` is built with ``--retrieval content --shards 4 --factory
   'IVF2048,Flat'``. The in-process server and then the cluster (4 shard processes + router) are
   started on it one after the other (both at once would not fit beside other work), warmed up
   with a closed-loop run, and ``VmRSS`` (plus ``VmHWM``, ``RssAnon``, ``RssFile``) is read from
   ``/proc/<pid>/status`` of the server, the router and each shard.
3. **Extrapolation** to N hosts from the measured CPU per call (see ``extrapolate``), written
   into the JSON and ``bench/cluster.md``.

Results: ``bench/results/cluster.json`` and ``cluster.png`` (``--name`` changes the stem).
Scratch indexes live in ``--work`` (default ``.bench/`` of the checkout, git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import serving as sv  # noqa: E402  (bench/serving.py: ServerProcess, load, medians)

from tastebud.cluster.launcher import LaunchOptions, LauncherThread  # noqa: E402
from tastebud.index.manifest import read_manifest  # noqa: E402
from tastebud.index.publish import resolve_version_dir  # noqa: E402

RESULTS = REPO / "bench" / "results"
TICK = os.sysconf("SC_CLK_TCK")
MIX = "recommend"


# -- processes ---------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def memory(pid: int) -> dict:
    """VmRSS, VmHWM (peak), RssAnon, RssFile of a process, MiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = round(int(line.split()[1]) / 1024, 1)
    return out


@dataclass
class System:
    """One served variant: its gRPC target and the pids of its processes by role."""

    name: str
    kind: str  # "inproc" or "router"
    shards: int
    target: str
    pids: dict[str, int]  # "server" | "router" | "shard-0".. -> pid
    stop: object = field(repr=False)

    def cpu(self) -> dict[str, float]:
        return {role: cpu_seconds(pid) for role, pid in self.pids.items()}

    def memory(self) -> dict[str, dict]:
        return {role: memory(pid) for role, pid in self.pids.items()}


def start_inproc(index: Path, name: str, workdir: Path, timeout: float = 900.0) -> System:
    """``tastebud serve --index`` as bench/serving.py starts it, but with its output in a log file
    and start-up given up as soon as the process exits (a dead server is an error, not a wait)."""
    import asyncio

    from grpc_health.v1 import health_pb2

    from tastebud.cluster.launcher import health_status

    workdir.mkdir(parents=True, exist_ok=True)
    port = sv.free_port()
    log = workdir / f"serve-{port}.log"
    cmd = [sys.executable, "-m", "tastebud.cli.main", "serve", "--index", str(index), "--port", str(port),
           "--store", str(workdir / f"store-{port}.sqlite")]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = sv.ServerProcess(process, f"127.0.0.1:{port}")
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-15:]
            raise RuntimeError(f"{name}: tastebud serve exited with {process.returncode} during start-up "
                               f"(log {log}):\n" + "\n".join(tail))
        if asyncio.run(health_status(server.target, "")) == health_pb2.HealthCheckResponse.SERVING:
            break
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name}: not SERVING within {timeout:g} s (log {log})")
        time.sleep(0.5)
    return System(name, "inproc", len(read_manifest(resolve_version_dir(index)).shards), server.target,
                  {"server": process.pid}, server.stop)


def start_cluster(index: Path, name: str, workdir: Path) -> System:
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = LauncherThread(LaunchOptions(index=index, replicas=1, port=0, workdir=workdir, start_timeout=900.0))
    ep = cluster.start()
    pids = {"router": ep.router_pid, **{f"shard-{s[0].shard}": s[0].pid for s in ep.shards}}
    return System(name, "router", len(ep.shards), ep.router, pids, cluster.stop)


def measured_load(system: System, index: Path, concurrency: int, duration: float, warmup: float,
                  seed: int) -> dict:
    """One closed-loop run and the CPU each process (and this generator) spent on it, per call.

    The CPU window includes the warm-up, so it is divided by every call sent in the window,
    estimated as the recorded rate x (warm-up + duration)."""
    before = system.cpu()
    gen0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    row = sv.load(system.target, index, MIX, concurrency, duration, warmup, seed=seed)
    wall = time.perf_counter() - t0
    gen1 = resource.getrusage(resource.RUSAGE_SELF)
    after = system.cpu()
    calls = max(1.0, row["calls_per_s"] * wall)
    row["cpu_ms_per_call"] = {role: round((after[role] - before[role]) * 1000 / calls, 3) for role in before}
    row["cpu_ms_per_call"]["generator"] = round(
        ((gen1.ru_utime + gen1.ru_stime) - (gen0.ru_utime + gen0.ru_stime)) * 1000 / calls, 3)
    row["cpu_ms_per_call"]["all"] = round(sum(row["cpu_ms_per_call"].values()), 3)
    return row


# -- data --------------------------------------------------------------------------------------
def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def tastebud(*args: str) -> list[str]:
    return [sys.executable, "-m", "tastebud.cli.main", *args]


def ml_indexes(data: Path, work: Path, counts: list[int]) -> dict[int, Path]:
    """MovieLens 100K with 1, 2, 4 ... shards, built once (the model trained once, then reused)."""
    roots = {n: work / f"ml100k-s{n}" for n in counts}
    first = None
    for n, root in sorted(roots.items(), key=lambda kv: -kv[0]):
        if not (root / "current").exists():
            if first is not None and (first / ".cache").is_dir() and not (root / ".cache").exists():
                root.mkdir(parents=True, exist_ok=True)
                shutil.copytree(first / ".cache", root / ".cache")
            run(tastebud("build", "--format", "movielens", "--data", str(data), "--shards", str(n),
                         "--out", str(root), "--no-progress"))
        first = first or root
    return roots


def synthetic_index(work: Path, items: int, factory: str) -> Path:
    folder = work / f"synth-{items}"
    if not (folder / "vectors.npz").is_file():
        run([sys.executable, "bench/synthetic.py", "--items", str(items), "--users", "20000", "--out", str(folder)])
    root = folder / "idx"
    if (root / "current").exists() and read_manifest(resolve_version_dir(root)).factory != factory:
        # e.g. `make bench-serving` built idx with the default factory: build ours beside it
        root = folder / ("idx-" + "".join(ch if ch.isalnum() else "-" for ch in factory.lower()))
    if not (root / "current").exists():
        run(tastebud("build", "--items", str(folder / "items.csv"), "--interactions", str(folder / "interactions.csv"),
                     "--vectors", str(folder / "vectors.npz"), "--retrieval", "content", "--shards", "4",
                     "--factory", factory, "--out", str(root), "--no-progress"))
    return root


def index_facts(root: Path) -> dict:
    m = read_manifest(resolve_version_dir(root))
    shard_files = {name for e in m.shards for name in e.files.values()}
    faiss_bytes = sum(meta["bytes"] for name, meta in m.files.items() if name in shard_files)
    other = {name: meta["bytes"] for name, meta in m.files.items() if name not in shard_files}
    return {"items": m.n_items, "users": m.n_users, "events": m.n_events, "shards": len(m.shards),
            "factory": m.factory, "retrieval": m.retrieval.get("model", m.retrieval.get("kind", "")),
            "items_per_shard": [e.count for e in m.shards],
            "shard_index_mib": round(faiss_bytes / 2**20, 1),
            "router_side_files_mib": round(sum(other.values()) / 2**20, 1)}


# -- the measurements --------------------------------------------------------------------------
def summarise_runs(rows: list[dict]) -> dict:
    med = lambda key: round(float(statistics.median(r[key] for r in rows)), 3)  # noqa: E731
    roles = rows[0]["cpu_ms_per_call"].keys()
    return {"calls_per_s": med("calls_per_s"), "p50_ms": med("p50_ms"), "p99_ms": med("p99_ms"),
            "errors": sum(sum(r["errors"].values()) if isinstance(r["errors"], dict) else r["errors"] for r in rows),
            "cpu_ms_per_call": {role: round(float(statistics.median(r["cpu_ms_per_call"][role] for r in rows)), 3)
                                for role in roles},
            "runs": rows}


def run_hop(args: argparse.Namespace) -> dict:
    counts = sorted(set(args.shards) | set(args.inproc_shards))
    roots = ml_indexes(args.data, args.work, counts)
    index = roots[max(counts)]  # whose ids the requests are made of (the same in every build)
    systems: list[System] = []
    out: dict = {"data": "MovieLens 100K", "indexes": {str(n): index_facts(roots[n]) for n in counts},
                 "mix": MIX, "concurrency": args.concurrency, "repeats": args.repeats, "duration_s": args.duration,
                 "warmup_s": args.warmup, "variants": {}}
    try:
        for n in args.inproc_shards:
            systems.append(start_inproc(roots[n], f"in-process, {n} shard{'s' * (n > 1)}", args.work / "servers"))
            print(f"started {systems[-1]}", file=sys.stderr)
        for n in args.shards:
            systems.append(start_cluster(roots[n], f"router + {n} shard process{'es' * (n > 1)}",
                                         args.work / "clusters" / f"ml100k-s{n}"))
            print(f"started {systems[-1]}", file=sys.stderr)
        runs: dict[str, dict[str, list[dict]]] = {s.name: {str(c): [] for c in args.concurrency} for s in systems}
        for s in systems:  # a first short run of each, not recorded: caches, lazy imports, connections
            sv.load(s.target, index, MIX, 2, min(2.0, args.duration), 0.5, seed=99)
        for repeat in range(args.repeats):
            for c in args.concurrency:
                order = systems if repeat % 2 == 0 else systems[::-1]  # drift hits every system alike
                for s in order:
                    row = measured_load(s, index, c, args.duration, args.warmup, seed=repeat)
                    runs[s.name][str(c)].append(row)
                    print(f"hop #{repeat} c={c} {s.name}: {row['calls_per_s']:.1f}/s p50 {row['p50_ms']:.2f} "
                          f"p99 {row['p99_ms']:.2f} ms errors {row['errors']} cpu {row['cpu_ms_per_call']}",
                          file=sys.stderr, flush=True)
        for s in systems:
            out["variants"][s.name] = {"kind": s.kind, "shards": s.shards, "memory_mib": s.memory(),
                                       "levels": {c: summarise_runs(rows) for c, rows in runs[s.name].items()}}
    finally:
        for s in systems:
            s.stop()
    base = out["variants"].get(f"in-process, {max(args.inproc_shards)} shard{'s' * (max(args.inproc_shards) > 1)}")
    if base:
        for v in out["variants"].values():
            v["vs_inprocess"] = {c: {"throughput": round(lv["calls_per_s"] / base["levels"][c]["calls_per_s"], 3),
                                     "p50": round(lv["p50_ms"] / base["levels"][c]["p50_ms"], 3),
                                     "p99": round(lv["p99_ms"] / base["levels"][c]["p99_ms"], 3)}
                                 for c, lv in v["levels"].items()}
        out["baseline"] = next(k for k, v in out["variants"].items() if v is base)
    return out


def run_memory(args: argparse.Namespace) -> dict:
    root = synthetic_index(args.work, args.mem_items, args.mem_factory)
    out: dict = {"index": index_facts(root), "warmup_runs": {}, "systems": {}}
    c = max(args.concurrency)
    for kind in ("inproc", "router"):
        t0 = time.perf_counter()
        system = start_inproc(root, "in-process, 4 shards", args.work / "servers") if kind == "inproc" else \
            start_cluster(root, "router + 4 shard processes", args.work / "clusters" / f"synth-{args.mem_items}")
        started = round(time.perf_counter() - t0, 1)
        try:
            loaded = system.memory()
            rows = [measured_load(system, root, level, args.mem_duration, args.warmup, seed=0)
                    for level in (1, c)]
            out["systems"][system.name] = {"kind": kind, "start_s": started, "memory_mib_loaded": loaded,
                                           "memory_mib": system.memory(),
                                           "warmup_runs": {str(level): row for level, row in zip((1, c), rows)}}
            print(f"memory {system.name}: {out['systems'][system.name]['memory_mib']}", file=sys.stderr, flush=True)
        finally:
            system.stop()
    return out


# -- what it means at N hosts ------------------------------------------------------------------
def _fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares a + b x."""
    if len(xs) < 2:
        return ys[0], 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / max(1e-12, sum((x - mx) ** 2 for x in xs))
    return my - b * mx, b


def extrapolate(result: dict, level: str) -> dict:
    """A cost model from the measured CPU per call, and what it predicts for N hosts.

    router(N) = r0 + r1 N          ms of router CPU per Recommend over N shards (fit over 1/2/4)
    shard(n)  = s0 + s1 n          ms of one shard's CPU per call with n items in it: s0 from the
                                   MovieLens shards (a few hundred items: the fixed per-call cost
                                   of gRPC, protobuf and Python), s1 from the 1M shards
    At the memory catalog (1M items, 4 shards, content retrieval: no LightGBM) the router's cost
    is taken as measured there, plus r1 for each shard more (or less) than 4.
    One process runs one Python event loop, so a router or shard process is good for at most
    ~1000 / (its CPU ms per call) calls/s; more cores take more processes (router replicas,
    shard replicas)."""
    hop = result.get("hop", {}).get("variants", {})
    routers = sorted((v["shards"], v) for v in hop.values() if v["kind"] == "router")
    model: dict = {"level": level, "notes": []}
    if routers:
        ns = [float(n) for n, _ in routers]
        r_cpu = [v["levels"][level]["cpu_ms_per_call"]["router"] for _, v in routers]
        r0, r1 = _fit(ns, r_cpu)
        model["router_ms"] = {"r0": round(r0, 3), "r1_per_shard": round(r1, 3),
                              "measured": {str(int(n)): y for n, y in zip(ns, r_cpu)}}
        shard_cpu = {str(n): [v["levels"][level]["cpu_ms_per_call"][k] for k in v["levels"][level]["cpu_ms_per_call"]
                              if k.startswith("shard-")] for n, v in routers}
        model["shard_ms_ml100k"] = {n: round(statistics.fmean(vals), 3) for n, vals in shard_cpu.items()}
        s0 = min(model["shard_ms_ml100k"].values())
        ml_items = result["hop"]["indexes"][str(routers[0][0])]["items"]
        model["s0"] = round(s0, 3)
        inproc = [v for v in hop.values() if v["kind"] == "inproc"]
        if inproc:
            model["inprocess_ms_ml100k"] = {str(v["shards"]): v["levels"][level]["cpu_ms_per_call"]["server"]
                                            for v in inproc}
    mem = result.get("memory", {}).get("systems", {})
    cluster_1m = next((v for v in mem.values() if v["kind"] == "router"), None)
    if routers and cluster_1m:
        run = cluster_1m["warmup_runs"].get(level) or next(iter(cluster_1m["warmup_runs"].values()))
        per_shard = [run["cpu_ms_per_call"][k] for k in run["cpu_ms_per_call"] if k.startswith("shard-")]
        n_items = result["memory"]["index"]["items"]
        shard_items = n_items / len(per_shard)
        s1 = max(0.0, (statistics.fmean(per_shard) - s0) / (shard_items - ml_items / len(per_shard)))
        model["s1_per_item"] = s1
        model["shard_ms_1m"] = round(statistics.fmean(per_shard), 3)
        model["router_ms_1m"] = run["cpu_ms_per_call"]["router"]
        model["catalog_items"] = n_items
        # what one request costs, and what a fleet of N shard hosts + routers could carry
        rows = []
        for n in (1, 2, 4, 8, 16, 32):
            shard_ms = s0 + s1 * n_items / n
            # the router's cost measured at this catalog and shard count, plus r1 per shard more or less
            router_ms = max(0.1, model["router_ms_1m"] + r1 * (n - len(per_shard)))
            rows.append({"shard_hosts": n, "items_per_shard": int(n_items / n),
                         "shard_cpu_ms_per_call": round(shard_ms, 3),
                         "router_cpu_ms_per_call": round(router_ms, 3),
                         "calls_per_s_per_shard_process": round(1000 / shard_ms, 1),
                         "calls_per_s_per_router_process": round(1000 / router_ms, 1),
                         "first_bottleneck": "router" if router_ms > shard_ms else "shard"})
        model["projection_1m"] = rows
    model["notes"] = [
        "All processes of a variant share this machine's 2 cores (and the load generator), so a "
        "multi-process variant's throughput here is bounded by its total CPU per call: 2000 / all_ms "
        "calls/s at best. On N hosts each shard has its own cores: the multi-process numbers measured "
        "here are a lower bound.",
        "Per-shard search cost has a fixed part (gRPC, protobuf, Python: s0) and a part proportional to "
        "the items per shard (s1 x items/N): with N shard hosts the latter falls ~1/N.",
        "The router's CPU per Recommend is roughly constant (user vector, merge, LightGBM re-rank, reasons, "
        "protobuf) plus a per-shard fan-out cost (one RPC, its protobuf, its part of the merge: r1 per shard), "
        "so it grows with N and does not shrink with items.",
        "The router saturates first: it is one Python event loop doing the per-request work, while every "
        "shard's share shrinks with N. Routers are stateless except the interaction store (SQLite, local to "
        "each router process): scaling routers out needs that store shared or partitioned by user first.",
    ]
    return model


# -- the figure --------------------------------------------------------------------------------
def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hop = result.get("hop")
    mem = result.get("memory")
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    if hop:
        names = list(hop["variants"])
        short = [n.replace("in-process, ", "in-proc ").replace("router + ", "router+").replace(" shard processes", "sh")
                 .replace(" shard process", "sh").replace(" shards", "sh").replace(" shard", "sh") for n in names]
        levels = [str(c) for c in hop["concurrency"]]
        for ax, c in zip(axes[0], levels[:2] if len(levels) >= 2 else levels * 2):
            x = range(len(names))
            p50 = [hop["variants"][n]["levels"][c]["p50_ms"] for n in names]
            p99 = [hop["variants"][n]["levels"][c]["p99_ms"] for n in names]
            ax.bar([i - 0.2 for i in x], p50, 0.4, label="p50")
            ax.bar([i + 0.2 for i in x], p99, 0.4, label="p99")
            for i, (a, b) in enumerate(zip(p50, p99)):
                ax.text(i - 0.2, a, f"{a:.1f}", ha="center", va="bottom", fontsize=8)
                ax.text(i + 0.2, b, f"{b:.1f}", ha="center", va="bottom", fontsize=8)
            ax.set_xticks(list(x), short, fontsize=9)
            ax.set(ylabel="ms (median of repeats)", title=f"Recommend latency, {c} in flight (MovieLens 100K)")
            ax.legend()
            ax.grid(alpha=0.3, axis="y")
        ax = axes[1][0]
        width = 0.8 / len(levels)
        for j, c in enumerate(levels):
            vals = [hop["variants"][n]["levels"][c]["calls_per_s"] for n in names]
            xs = [i - 0.4 + width * (j + 0.5) for i in range(len(names))]
            ax.bar(xs, vals, width, label=f"{c} in flight")
            for xx, v in zip(xs, vals):
                ax.text(xx, v, f"{v:.0f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(list(range(len(names))), short, fontsize=9)
        ax.set(ylabel="calls/s (median, closed loop)", title="Recommend throughput (2 shared cores)")
        ax.legend()
        ax.grid(alpha=0.3, axis="y")
    ax = axes[1][1]
    if mem:
        labels, anon, other = [], [], []
        for name, s in mem["systems"].items():
            for role, m in s["memory_mib"].items():
                labels.append("in-process\nserver" if role == "server" else
                              "router" if role == "router" else role.replace("shard-", "shard "))
                anon.append(m.get("RssAnon", m["VmRSS"]) / 1024)
                other.append((m["VmRSS"] - m.get("RssAnon", m["VmRSS"])) / 1024)
        xs = range(len(labels))
        ax.bar(xs, anon, 0.6, label="RssAnon (heap, FAISS)")
        ax.bar(xs, other, 0.6, bottom=anon, label="RssFile + RssShmem (libraries, mmaps)")
        for i, (a, o) in enumerate(zip(anon, other)):
            ax.text(i, a + o, f"{a + o:.2f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(list(xs), labels, fontsize=9)
        idx = mem["index"]
        ax.set(ylabel="GiB resident (VmRSS after warm-up)",
               title=f"memory at {idx['items']:,} items, {idx['factory']}, shard indexes {idx['shard_index_mib'] / 1024:.2f} GiB")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    else:
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/ml-100k"), help="MovieLens 100K folder")
    p.add_argument("--work", type=Path, default=REPO / ".bench", help="scratch folder for indexes and cluster logs")
    p.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4], help="shard processes behind the router")
    p.add_argument("--inproc-shards", type=int, nargs="+", default=[1, 4],
                   help="in-process servers on these shard counts (the largest is the baseline of the ratios)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    p.add_argument("--duration", type=float, default=8.0, help="seconds measured per run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds sent before each run is measured")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--mem-items", type=int, default=1_000_000, help="catalog size of the memory measurement")
    p.add_argument("--mem-factory", default="IVF2048,Flat")
    p.add_argument("--mem-duration", type=float, default=8.0, help="seconds of each warm-up run at --mem-items")
    p.add_argument("--skip", nargs="+", choices=("hop", "memory"), default=[])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 repeat of 2 s, a 20,000-item memory catalog (IVF64), into --name cluster-quick")
    p.add_argument("--name", help="result file stem (default cluster, or cluster-quick with --quick)")
    args = p.parse_args(argv)
    given = set(a.split("=")[0] for a in (argv if argv is not None else sys.argv[1:]))
    if args.quick:
        args.duration, args.warmup, args.repeats = 2.0, 0.5, 1
        args.mem_duration = 2.0
        if "--mem-items" not in given:
            args.mem_items = 20_000
        if "--mem-factory" not in given:
            args.mem_factory = "IVF64,Flat"
    args.data, args.work = args.data.resolve(), args.work.resolve()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    stem = args.name or ("cluster-quick" if args.quick else "cluster")
    started = time.time()
    result: dict = {"command": " ".join(["python", "bench/cluster.py", *(argv if argv is not None else sys.argv[1:])]),
                    "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d", time.gmtime()),
                    "load_average_at_start": list(os.getloadavg())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    partial = args.work / f"{stem}.partial.json"  # each part as soon as it is measured
    if "hop" not in args.skip:
        result["hop"] = run_hop(args)
        partial.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    if "memory" not in args.skip:
        result["memory"] = run_memory(args)
    result["extrapolation"] = {c: extrapolate(result, c) for c in map(str, args.concurrency)
                               if "hop" in result}
    result["load_average_at_end"] = list(os.getloadavg())
    result["seconds"] = round(time.time() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    plot(result, RESULTS / f"{stem}.png")
    print(table(result))
    print(f"wrote bench/results/{stem}.json and .png in {result['seconds']:.0f} s")
    return 0


def table(result: dict) -> str:
    """The results as Markdown tables (pasted into bench/cluster.md)."""
    lines = []
    hop = result.get("hop")
    if hop:
        levels = [str(c) for c in hop["concurrency"]]
        head = "| variant | " + " | ".join(f"{c} in flight: calls/s | p50 ms | p99 ms | CPU ms/call (router; each shard; all)"
                                             for c in levels) + " |"
        lines += [head, "|" + " --- |" * (1 + 4 * len(levels))]
        for name, v in hop["variants"].items():
            cells = []
            for c in levels:
                lv = v["levels"][c]
                cpu = lv["cpu_ms_per_call"]
                shards = [cpu[k] for k in cpu if k.startswith("shard-")]
                main_cpu = cpu.get("router", cpu.get("server"))
                ratio = v.get("vs_inprocess", {}).get(c, {}).get("throughput")
                cells += [f"{lv['calls_per_s']:.1f}" + (f" ({ratio:.2f}x)" if ratio is not None else ""),
                          f"{lv['p50_ms']:.2f}", f"{lv['p99_ms']:.2f}",
                          f"{main_cpu:.2f}; " + (", ".join(f"{s:.2f}" for s in shards) if shards else "-")
                          + f"; {cpu['all']:.2f}"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    mem = result.get("memory")
    if mem:
        lines += ["", "| process | VmRSS MiB | RssAnon MiB | VmHWM MiB | started in s |", "| --- | --- | --- | --- | --- |"]
        for name, s in mem["systems"].items():
            for role, m in s["memory_mib"].items():
                lines.append(f"| {name}: {role} | {m['VmRSS']:.0f} | {m.get('RssAnon', 0):.0f} | {m.get('VmHWM', 0):.0f} "
                             f"| {s['start_s']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
