"""tastebud: ``tastebud build --vectors`` then ``tastebud serve``, queried through the public gRPC API.

Runs in tastebud's .venv. The catalog is the benchmark's vectors written by
``bench.synthetic.write_vector_catalog``; its interactions are replaced by exactly one event
per item, all at the same time, because the build needs interactions and the content model's
prior b_j = 0.05 * log-popularity is then the same for every item: the served scores
[t_i, 1] . [t_j, b_j] are the inner products t_i . t_j plus one constant, so ``SimilarItems``
(the item's own vector as the query, the item itself left out) is exactly the inner-product
kNN search the peers run. Build: 4 shards, ``HNSW32,Flat``, built once. Each tuning step
restarts ``tastebud serve --ef-search N`` on that index (a tastebud whose serve has no
``--ef-search`` gets one build per step, ``build --ef-search N``, instead). Each caller
thread has its own gRPC channel.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))

import common  # noqa: E402
import numpy as np  # noqa: E402

SHARDS = 4
FACTORY = "HNSW32,Flat"
N_USERS = 1000


def write_catalog(work: common.Work, folder: Path) -> dict[str, Path]:
    from bench.synthetic import write_vector_catalog

    marker = folder / "done"
    paths = {"items": folder / "items.csv", "interactions": folder / "interactions.csv", "vectors": folder / "vectors.npz"}
    if marker.exists() and marker.read_text() == str(len(work.vectors)):
        return paths
    labels = np.load(work.folder / "labels.npy")
    write_vector_catalog(folder, np.asarray(work.vectors), labels, n_users=1)
    with open(paths["interactions"], "w") as f:  # one event per item, same time: a constant prior
        f.write("user_id,item_id,timestamp\n")
        f.writelines(f"u{r % N_USERS},i{r},1600000000\n" for r in range(len(work.vectors)))
    marker.write_text(str(len(work.vectors)))
    return paths


def tastebud_exe() -> str:
    return str(Path(sys.executable).parent / "tastebud")


def build(paths: dict[str, Path], out: Path, ef: int, log) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [tastebud_exe(), "build", "--items", str(paths["items"]), "--interactions", str(paths["interactions"]),
           "--vectors", str(paths["vectors"]), "--retrieval", "content", "--shards", str(SHARDS),
           "--factory", FACTORY, "--ef-search", str(ef), "--out", str(out), "--no-progress"]
    common.log("$ " + " ".join(cmd))
    t0 = time.perf_counter()
    done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"tastebud build failed ({done.returncode}); see {log.name}")
    import json

    manifest = json.loads((out / "current" / "manifest.json").read_text())
    common.log(f"built in {seconds:.1f}s; steps {manifest['build']['seconds']}")
    return {"total_s": seconds, "steps_s": manifest["build"]["seconds"], "version": manifest["version"],
            "tuning": manifest["build"]["tuning"], "factory": manifest["factory"], "command": " ".join(cmd)}


def serve_takes_ef_search() -> bool:
    done = subprocess.run([tastebud_exe(), "serve", "--help"], capture_output=True, text=True)
    return "--ef-search" in done.stdout


def reused(index: Path, work: common.Work) -> dict:
    """Build facts of an index built by an earlier run (``--tastebud-index``): its manifest, and
    the build's wall time when that run's result (in the work folder) built this folder."""
    import json

    manifest = json.loads((index / "current" / "manifest.json").read_text())
    out = {"reused_index": str(index), "steps_s": manifest["build"]["seconds"], "version": manifest["version"],
           "tuning": manifest["build"]["tuning"], "factory": manifest["factory"], "total_s": None}
    earlier = work.folder / "result-tastebud.previous.json"
    if earlier.exists():
        b = json.loads(earlier.read_text()).get("build", {})
        if b.get("version") == manifest["version"] and b.get("total_s"):
            out.update(total_s=b["total_s"], command=b.get("command"),
                       total_s_from=f"the run that built {manifest['version']} ({earlier.name})")
    common.log(f"reusing the index {index} ({manifest['version']}), built in {out['total_s']} s")
    return out


class Server:
    def __init__(self, index: Path, log, ef_search: int | None = None) -> None:
        self.index, self.log, self.ef_search = index, log, ef_search
        self.port = common.free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        import grpc
        from tastebud.v1 import recommender_pb2 as pb
        from tastebud.v1 import recommender_pb2_grpc as pbg

        t0 = time.perf_counter()
        cmd = [tastebud_exe(), "serve", "--index", str(self.index), "--port", str(self.port)]
        if self.ef_search is not None:
            cmd += ["--ef-search", str(self.ef_search)]
        self.command = " ".join(cmd)
        common.log("$ " + " ".join(cmd))
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "HF_HUB_OFFLINE": "1"})

        def up() -> bool:
            with grpc.insecure_channel(f"127.0.0.1:{self.port}") as ch:
                pbg.RecommenderStub(ch).GetIndexInfo(pb.GetIndexInfoRequest(), timeout=2)
            return True

        common.wait_until(up, 300, "tastebud serve", self.proc)
        return time.perf_counter() - t0

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()  # graceful: SIGTERM
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def git_commit() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %cI"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return done.stdout.strip() + (" (work tree has uncommitted changes)" if dirty else "")


def main() -> int:
    args = common.worker_args()
    work = common.load_work(args.work)
    cfg = work.config
    commit_at_start = git_commit()
    import grpc
    from tastebud.v1 import recommender_pb2 as pb
    from tastebud.v1 import recommender_pb2_grpc as pbg

    folder = Path(cfg["scratch"]) / "tastebud"
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    paths = write_catalog(work, folder / "catalog")
    common.log(f"catalog files ready in {time.perf_counter() - t0:.1f}s")
    log = open(folder / "tastebud.log", "w")
    degraded = {"count": 0}
    server: Server | None = None
    built: dict = {}
    start_s = 0.0

    def make_client():
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}", options=[("grpc.use_local_subchannel_pool", 1)])
        return pbg.RecommenderStub(channel)

    def search(stub, qid: int, vector: np.ndarray) -> list:
        resp = stub.SimilarItems(pb.SimilarItemsRequest(item_id=f"i{qid}", k=10), timeout=30)
        if resp.degraded:
            degraded["count"] += 1
        return [int(it.item_id[1:]) for it in resp.items]

    at_serve = serve_takes_ef_search()
    common.log("efSearch set by " + ("tastebud serve --ef-search (one build)" if at_serve else
                                     "tastebud build --ef-search (one build per step)"))

    def set_knob(value: int) -> None:
        nonlocal server, built, start_s
        if server is not None:
            server.stop()
        if at_serve:
            index = Path(cfg["tastebud_index"]) if cfg.get("tastebud_index") else folder / "index"
            if not built:
                built = reused(index, work) if cfg.get("tastebud_index") else build(paths, index, value, log)
            server = Server(index, log, ef_search=value)
        else:
            index = folder / f"index-ef{value}"
            built = build(paths, index, value, log)
            server = Server(index, log)
        start_s = server.start()
        common.log(f"tastebud serve up (pid {server.proc.pid}, port {server.port}) in {start_s:.1f}s")

    try:
        tuned = common.tune(set_knob, cfg["knobs"]["tastebud"], make_client, search, work, cfg["target_recall"],
                            fresh_client=True)
        common.log(f"efSearch = {tuned['value']}")
        measured = common.measure(make_client, search, work)
        memory = common.tree_memory(server.proc.pid)
        server_command = server.command
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            info = pbg.RecommenderStub(ch).GetIndexInfo(pb.GetIndexInfoRequest(), timeout=5)
    finally:
        if server is not None:
            server.stop()
        log.close()
    from importlib.metadata import version

    common.write_result(args.out, {
        "system": "tastebud", "knob": "efSearch", "tuning": tuned, **measured,
        "build": {**built, "server_start_s": start_s, "serve_command": server_command},
        "memory": memory, "degraded_responses": degraded["count"],
        "config": {"index": f"{SHARDS} shards, {FACTORY} (efConstruction 80), content retrieval",
                   "index_info": re.sub(r"\s+", " ", str(info)).strip(),
                   "transport": "gRPC on 127.0.0.1 (SimilarItems, k=10)",
                   "ef_search_set_by": "tastebud serve --ef-search" if at_serve else "tastebud build --ef-search",
                   "note": "FAISS searches each shard with ef = max(efSearch, candidates per shard); how many "
                           "candidates the server asks each shard for is its own choice (server/recommender.py)"},
        "versions": {"tastebud": version("tastebud"), "tastebud_commit": commit_at_start,
                     "tastebud_commit_at_end": git_commit(), "grpcio": version("grpcio"),
                     "faiss-cpu": version("faiss-cpu")},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
