"""Milvus Lite (``milvus-lite server``), queried through pymilvus' ``MilvusClient``.

Runs in .venv-peers. milvus-lite 3.x is a Python engine behind a gRPC server. Given a ``.db``
path, ``MilvusClient`` would start that server as a thread inside the calling process, where
it would share one interpreter (and its GIL) with the load generator; here it runs as its own
process (``milvus-lite server --data-dir ... --port ...``, the package's own command) on a
loopback port, so like the other peers it is a separate server, and MilvusClient connects to
it by URI. Each caller thread has its own MilvusClient. Index: HNSW, metric IP, Milvus Lite's
defaults (M=16, efConstruction=200); search param ``ef``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402

NAME = "bench"
M, EF_CONSTRUCTION = 16, 200


def main() -> int:
    args = common.worker_args()
    work = common.load_work(args.work)
    folder = Path(work.config["scratch"]) / "milvus"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    port = common.free_port()
    exe = Path(sys.executable).parent / "milvus-lite"
    t0 = time.perf_counter()
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen([str(exe), "server", "--data-dir", str(folder / "bench.db"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        from pymilvus import MilvusClient

        def up() -> bool:
            MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=2).list_collections()
            return True

        common.wait_until(up, 120, "milvus-lite", proc)
        start_s = time.perf_counter() - t0
        common.log(f"milvus-lite server up (pid {proc.pid}, port {port}) in {start_s:.1f}s")
        return measure_server(args, work, port, proc.pid, start_s)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def measure_server(args, work, port: int, pid: int, start_s: float) -> int:
    from importlib.metadata import version

    from pymilvus import DataType, MilvusClient

    cfg = work.config
    uri = f"http://127.0.0.1:{port}"
    client = MilvusClient(uri=uri)
    dim = work.vectors.shape[1]
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    client.create_collection(NAME, schema=schema)
    n = len(work.vectors)
    t0 = time.perf_counter()
    for start in range(0, n, 5000):
        block = np.asarray(work.vectors[start:start + 5000], dtype=np.float32)
        client.insert(NAME, [{"id": start + j, "vec": row} for j, row in enumerate(block)])
    client.flush(NAME)
    insert_s = time.perf_counter() - t0
    common.log(f"inserted and flushed {n} rows in {insert_s:.1f}s")
    index_params = client.prepare_index_params()
    index_params.add_index(field_name="vec", index_type="HNSW", metric_type="IP",
                           params={"M": M, "efConstruction": EF_CONSTRUCTION})
    t1 = time.perf_counter()
    try:
        client.create_index(NAME, index_params, timeout=7200)
    except Exception as exc:  # noqa: BLE001
        # The build is one long RPC; the server's gRPC keepalive policy answers the client's
        # pings with GOAWAY (too_many_pings) and pymilvus retries the call, which then finds
        # the index its first attempt built. Only that case is accepted.
        if "index already exists" not in str(exc):
            raise
        common.log(f"create_index retried by pymilvus after a dropped connection: {exc}")
    while client.describe_index(NAME, "vec").get("pending_index_rows", 0):
        time.sleep(1)
    client.load_collection(NAME, timeout=7200)
    client.search(NAME, data=[work.vector(0).tolist()], limit=11, search_params={"metric_type": "IP", "params": {"ef": 64}})
    index_s = time.perf_counter() - t1
    described = client.describe_index(NAME, "vec")
    common.log(f"inserted {n} rows in {insert_s:.1f}s, index + load in {index_s:.1f}s: {described}")

    ef = {"value": 64}

    def make_client():
        return MilvusClient(uri=uri)

    def set_knob(value: int) -> None:
        ef["value"] = value

    def search(c, qid: int, vector: np.ndarray) -> list:
        hits = c.search(NAME, data=[vector.tolist()], limit=11,
                        search_params={"metric_type": "IP", "params": {"ef": ef["value"]}})[0]
        return [h["id"] for h in hits]

    tuned = common.tune(set_knob, cfg["knobs"]["milvus"], make_client, search, work, cfg["target_recall"])
    common.log(f"ef = {tuned['value']}")
    measured = common.measure(make_client, search, work)
    memory = common.tree_memory(pid)
    common.write_result(args.out, {
        "system": "milvus", "knob": "ef", "tuning": tuned, **measured,
        "build": {"insert_s": insert_s, "index_s": index_s, "total_s": insert_s + index_s, "server_start_s": start_s},
        "memory": memory,
        "config": {"index": f"HNSW IP M={M} efConstruction={EF_CONSTRUCTION}", "describe_index": str(described),
                   "transport": "gRPC on 127.0.0.1 (milvus-lite server as its own process)"},
        "versions": {"pymilvus": version("pymilvus"), "milvus-lite": version("milvus-lite"),
                     "faiss-cpu (inside milvus-lite)": version("faiss-cpu")},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
