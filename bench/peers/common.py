"""Shared measurement code for the peers benchmark (numpy and the standard library only).

Every system's worker (``run_<system>.py``, each in the venv holding that system's client)
imports this module, so all of them are timed by the same code on the same query ids:

* ``load_work`` reads what the driver (``bench/peers.py``) wrote into the work folder: the
  vectors, the tuning and test query ids (catalog rows), the exact top-10 of each query
  excluding the query item itself, and the run configuration.
* ``tune`` walks a system's search-time knob upwards and keeps the first value whose recall@10
  on the tuning queries reaches the target.
* ``measure`` runs the test queries sequentially (one in flight) and closed-loop with N threads
  (N in flight), several repeats, and reports q/s and latency percentiles per repeat and
  their medians.
* ``tree_memory`` sums RSS and PSS over a server's process tree from ``/proc``.

A system is given as ``make_client() -> client`` (one per thread) and
``search(client, qid, vector) -> list[int]`` (up to k+1 catalog rows, best first); ``clean``
drops the query item itself and keeps 10, exactly as the ground truth was made.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

K = 10
Search = Callable[[Any, int, np.ndarray], list]


def log(*parts: object) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


# -- inputs ---------------------------------------------------------------------------------

class Work:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.config: dict[str, Any] = json.loads((self.folder / "config.json").read_text())
        self.vectors: np.ndarray = np.load(self.folder / "vectors.npy", mmap_mode="r")
        self.tune_ids: np.ndarray = np.load(self.folder / "tune_ids.npy")
        self.test_ids: np.ndarray = np.load(self.folder / "test_ids.npy")
        self.gt_tune: np.ndarray = np.load(self.folder / "gt_tune.npy")
        self.gt_test: np.ndarray = np.load(self.folder / "gt_test.npy")

    def vector(self, qid: int) -> np.ndarray:
        return np.asarray(self.vectors[qid], dtype=np.float32)


def load_work(folder: str | Path) -> Work:
    return Work(Path(folder))


def clean(ids: list, qid: int, k: int = K) -> list[int]:
    """The first k results that are not the query item itself."""
    out = [int(i) for i in ids if int(i) != qid]
    return out[:k]


def recall(results: list[list[int]], truth: np.ndarray) -> float:
    """Mean recall@k of result lists against the exact top-k rows of ``truth``."""
    hits = [len(set(r[:truth.shape[1]]) & set(t.tolist())) for r, t in zip(results, truth)]
    return float(np.sum(hits) / (truth.shape[1] * len(results)))


# -- timing ---------------------------------------------------------------------------------

def run_pass(make_client: Callable[[], Any], search: Search, work: Work, qids: np.ndarray,
             concurrency: int, max_seconds: float | None = None, min_queries: int = 50,
             clients: list | None = None) -> dict[str, Any]:
    """Closed loop over ``qids`` with ``concurrency`` threads (1 = sequential, in this thread).

    Each caller takes the next query id, sends it, waits for the answer, takes the next.
    With ``max_seconds`` no new query is started after that many seconds (once at least
    ``min_queries`` were sent), so slow systems are measured on a prefix of the same order.
    Returns latencies (s, in query order), the results (cleaned), wall time and count.
    """
    n = len(qids)
    latencies = np.full(n, np.nan)
    results: list[list[int] | None] = [None] * n
    vectors = [work.vector(int(q)) for q in qids]
    lock = threading.Lock()
    state = {"next": 0}
    errors: list[BaseException] = []
    start_evt = threading.Event()
    t_start = [0.0]

    def take() -> int:
        with lock:
            i = state["next"]
            if i >= n:
                return -1
            if max_seconds is not None and i >= min_queries and time.perf_counter() - t_start[0] > max_seconds:
                return -1
            state["next"] = i + 1
            return i

    def caller(client: Any) -> None:
        start_evt.wait()
        try:
            while (i := take()) >= 0:
                qid = int(qids[i])
                t0 = time.perf_counter()
                ids = search(client, qid, vectors[i])
                latencies[i] = time.perf_counter() - t0
                results[i] = clean(ids, qid)
        except BaseException as exc:  # noqa: BLE001 - reported to the driver
            errors.append(exc)

    pool = clients if clients is not None else [make_client() for _ in range(concurrency)]
    if concurrency == 1:
        t_start[0] = time.perf_counter()
        start_evt.set()
        caller(pool[0])
        wall = time.perf_counter() - t_start[0]
    else:
        threads = [threading.Thread(target=caller, args=(pool[j],), daemon=True) for j in range(concurrency)]
        for t in threads:
            t.start()
        time.sleep(0.05)
        t_start[0] = time.perf_counter()
        start_evt.set()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t_start[0]
    if errors:
        raise RuntimeError(f"{len(errors)} calls failed; first: {errors[0]!r}") from errors[0]
    done = state["next"]
    return {"latencies": latencies[:done], "results": results[:done], "wall": wall, "count": done}


def summary(p: dict[str, Any]) -> dict[str, float]:
    lat = p["latencies"] * 1000.0
    return {"qps": p["count"] / p["wall"], "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "mean_ms": float(lat.mean()), "queries": int(p["count"])}


def tune(set_knob: Callable[[int], None], values: list[int], make_client: Callable[[], Any], search: Search,
         work: Work, target: float, fresh_client: bool = False) -> dict[str, Any]:
    """Smallest knob value with recall@10 >= target on the tuning queries (sequential passes).

    ``fresh_client``: make a new client after each knob change (a server restarted by it)."""
    sweep = []
    client = None if fresh_client else [make_client()]
    chosen = None
    for v in values:
        set_knob(v)
        if fresh_client:
            client = [make_client()]
        p = run_pass(make_client, search, work, work.tune_ids, 1, clients=client)
        r = recall(p["results"], work.gt_tune[:p["count"]])
        s = summary(p)
        sweep.append({"value": v, "recall": r, "qps": s["qps"], "p50_ms": s["p50_ms"]})
        log(f"  knob={v}: recall@10={r:.4f} {s['qps']:.0f} q/s")
        if r >= target:
            chosen = v
            break
    reached = chosen is not None
    if chosen is None:
        chosen = values[-1]
        set_knob(chosen)
    return {"value": chosen, "reached": reached, "sweep": sweep}


def measure(make_client: Callable[[], Any], search: Search, work: Work) -> dict[str, Any]:
    """Sequential and N-in-flight passes over the test queries, ``repeats`` times, interleaved."""
    cfg = work.config
    conc = int(cfg["concurrency"])
    repeats = int(cfg["repeats"])
    max_s = cfg.get("max_seconds")
    seq_clients = [make_client()]
    conc_clients = [make_client() for _ in range(conc)]
    warm = work.test_ids[: min(len(work.test_ids), int(cfg.get("warmup", 200)))]
    run_pass(make_client, search, work, warm, 1, max_seconds=max_s, clients=seq_clients)
    run_pass(make_client, search, work, warm, conc, max_seconds=max_s, clients=conc_clients)
    out: dict[str, Any] = {"sequential": [], "concurrent": [], "concurrency": conc}
    recalls = {"sequential": [], "concurrent": []}
    for r in range(repeats):
        for mode, c, clients in (("sequential", 1, seq_clients), ("concurrent", conc, conc_clients)):
            p = run_pass(make_client, search, work, work.test_ids, c, max_seconds=max_s, clients=clients)
            s = summary(p)
            recalls[mode].append(recall(p["results"], work.gt_test[:p["count"]]))
            out[mode].append(s)
            log(f"  repeat {r + 1}/{repeats} {mode:10s}: {s['qps']:8.1f} q/s  p50 {s['p50_ms']:.2f} ms  "
                f"p99 {s['p99_ms']:.2f} ms  ({s['queries']} queries)")
    for mode in ("sequential", "concurrent"):
        runs = out[mode]
        out[mode] = {"median": {key: float(np.median([x[key] for x in runs])) for key in runs[0]},
                     "repeats": runs}
        out[mode]["recall"] = float(np.median(recalls[mode]))
    return out


# -- servers --------------------------------------------------------------------------------

def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(name))
    return kids


def _status_kb(path: str, field: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory(pid: int) -> dict[str, Any]:
    """RSS and PSS (MB) summed over ``pid`` and all its descendants.

    PSS splits shared pages between the processes that map them, so it does not count
    PostgreSQL's shared buffers once per backend as an RSS sum does."""
    kids = _children()
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(kids.get(p, []))
    rss = sum(_status_kb(f"/proc/{p}/status", "VmRSS") for p in seen)
    pss = sum(_status_kb(f"/proc/{p}/smaps_rollup", "Pss") for p in seen)
    return {"rss_mb": rss / 1024.0, "pss_mb": pss / 1024.0, "processes": len(seen)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, what: str, proc: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: server exited with code {proc.returncode}")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f}s")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def write_result(path: str | Path, result: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(result, indent=2))


def worker_args(argv: list[str] | None = None):
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--work", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    return p.parse_args(argv)
